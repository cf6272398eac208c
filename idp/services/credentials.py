"""One credentials core for the two kinds of people who sign in: migrants (``services.accounts``) and
staff (``services.staff``).

* **New passwords** (NIST SP 800-63B-4 §3.1.1.2: length, not composition; nothing common, breached or
  personal): ``check_new_password`` and its reasons, ``PASSWORD_REASONS``. What a password must not be
  — common, a pattern, personal, a word of the service — is decided by ``password_policy.check`` alone
  (the blocklist and the person's own words), for migrants and staff alike.
* **Failures and the lock** (OWASP ASVS 5.0 6.3.1, NIST SP 800-63B-4 §3.2.2): ``verify_password`` runs
  exactly one bcrypt check on every path, an unknown name included; ``count_failure`` locks after
  ``[login] max_failures`` (100) wrong tries in a row for ``[login] lockout`` seconds without telling the
  guesser; ``signed_in`` forgets the count. Guessing is slowed long before that by
  ``signin_throttle`` (captcha, then waits per address), which is what keeps an attacker from locking
  the owner out.
* **Server-side sessions**: the cookie holds a random token and only its SHA-256 is stored
  (``models.base.SessionMixin``), so a session ends on the server and a stolen database yields no live
  cookie: ``open_session``, ``find_by_token``, ``is_over``, ``touch``, ``end``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any
from typing import Protocol
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import LoginSettings
from ..crypto import digest
from ..crypto import new_secret
from ..errors import PasswordPolicyError
from ..models.base import SessionMixin
from . import password_policy
from . import passwords
from .password_policy import PolicyContext

# The reasons a new password is refused, in the order they are checked; views word them
# (``messages.PASSWORD_REASONS`` for migrants, ``messages.STAFF_PASSWORD_REASONS`` for staff).
PASSWORD_REASONS = (
    "wrong_old",
    "mismatch",
    "same_as_old",
    "too_short",
    "too_long",
    *password_policy.REASONS,
)
# Longer than anyone types; bounds the work of hashing (NIST SP 800-63B §5.1.1.2 allows a maximum).
MAX_PASSWORD_LENGTH = 256
# Staff can reach every migrant's account: their passwords are held to more than a migrant's minimum.
STAFF_MIN_PASSWORD_LENGTH = 12
# A cookie token is 43 characters; anything much longer is not one of ours.
MAX_TOKEN_LENGTH = 128
# Writing last_seen_at on every request would make each page view a write; a minute of slack in the
# idle timeout is harmless.
TOUCH_INTERVAL = 60


class PasswordHolder(Protocol):
    """An account or a staff member: someone with a password, a failure count and a lock."""

    password_hash: str
    failed_logins: int
    locked_until: int


class SessionTimeouts(Protocol):
    """[session] for migrants, [staff] for the console."""

    @property
    def idle_timeout(self) -> int: ...

    @property
    def absolute_timeout(self) -> int: ...


# -- new passwords --------------------------------------------------------------------------------------


def check_new_password(
    new: str,
    repeat: str,
    *,
    min_length: int,
    current_hash: str,
    old: str | None = None,
    context: PolicyContext,
) -> None:
    """Refuse a new password, raising PasswordPolicyError with the first reason that applies.

    With ``old`` (a change by someone signed in) the old password must be right; without it (a
    recovery) the new one still must not be the current one, which costs one more bcrypt check, so
    that check comes last."""
    if old is not None and not passwords.verify_password(old, current_hash):
        raise PasswordPolicyError("wrong_old")
    if new != repeat:
        raise PasswordPolicyError("mismatch")
    normal = unicodedata.normalize("NFKC", new)
    # why: with the old password proven, comparing normalised strings replaces a second bcrypt run.
    if old is not None and normal == unicodedata.normalize("NFKC", old):
        raise PasswordPolicyError("same_as_old")
    if len(normal) < min_length:
        raise PasswordPolicyError("too_short")
    if len(normal) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError("too_long")
    if reason := password_policy.check(new, context):
        raise PasswordPolicyError(reason)
    if old is None and passwords.verify_password(new, current_hash):
        raise PasswordPolicyError("same_as_old")


# -- failures and the lock ----------------------------------------------------------------------------


def verify_password(
    holder: PasswordHolder | None,
    password: str,
    rounds: int,
    *,
    on_cpu: Callable[[float], None] | None = None,
) -> bool:
    """Exactly one bcrypt check: against the holder's hash, or against a dummy hash when nobody has
    that name, so an unknown name costs what a wrong password costs. ``on_cpu``: as
    ``passwords.verify_password``."""
    stored = holder.password_hash if holder is not None else passwords.dummy_hash(rounds)
    return passwords.verify_password(password or "", stored, on_cpu=on_cpu)


def is_locked(holder: PasswordHolder, now: int) -> bool:
    return holder.locked_until > now


def count_failure(holder: PasswordHolder, now: int, login: LoginSettings, *, weight: int = 1) -> None:
    """Count a wrong try; ``weight`` > 1 for a try that got further (a staff code after the right
    password: ``code_failure_weight``)."""
    holder.failed_logins += weight
    if holder.failed_logins >= login.max_failures:
        # why: throttles online guessing per account (ASVS 2.2.1) without telling the guesser.
        holder.locked_until = now + login.lockout
        holder.failed_logins = 0


def code_failure_weight(login: LoginSettings) -> int:
    """How much a wrong authenticator code after the right password counts: enough that ``[login]
    totp_failures`` of them reach the lock. Whoever sends them knows the password, so a lock is the
    right answer, and six digits must not get ``max_failures`` guesses."""
    return -(-login.max_failures // login.totp_failures)


def clear_failures(holder: PasswordHolder) -> None:
    """Forget the failures counted and lift the lock (a sign-in, or staff acting)."""
    holder.failed_logins = 0
    holder.locked_until = 0


def signed_in(holder: PasswordHolder, password: str, rounds: int) -> None:
    """After a successful sign-in: forget the failures, and re-hash with the configured bcrypt cost."""
    clear_failures(holder)
    if passwords.needs_rehash(holder.password_hash, rounds):
        holder.password_hash = passwords.hash_password(password, rounds)


# -- server-side sessions -----------------------------------------------------------------------------

SessionRow = TypeVar("SessionRow", bound=SessionMixin)


def open_session(
    row: SessionMixin, *, now: int, timeouts: SessionTimeouts, ip: str | None, user_agent: str | None
) -> str:
    """Fill a new session's lifecycle and return its cookie token (only the digest is stored)."""
    token = new_secret()
    row.token_hash = digest(token)
    row.created_at = now
    row.last_seen_at = now
    row.expires_at = now + timeouts.absolute_timeout
    row.ip = (ip or "")[:45] or None
    row.user_agent = (user_agent or "")[:200] or None
    return token


def renew_token(row: SessionMixin, *, now: int, timeouts: SessionTimeouts) -> str:
    """The holder proved who they are again: a new cookie token and a new absolute deadline."""
    token = new_secret()
    row.token_hash = digest(token)
    row.last_seen_at = now
    row.expires_at = now + timeouts.absolute_timeout
    return token


def find_by_token(db: Session, model: type[SessionRow], token: object) -> SessionRow | None:
    """The session of ``model`` that ``token`` opens, unless it is unknown or already ended."""
    if not token or not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = db.scalar(select(model).filter_by(token_hash=digest(token)))
    return row if row is not None and row.ended_at is None else None


def is_over(row: Any, *, now: int, timeouts: SessionTimeouts) -> Any:
    """Past its absolute deadline, or idle longer than allowed: the one rule, for a session row (a bool)
    and for its model class (the SQL condition the sweep of timed-out sessions selects with)."""
    return (row.expires_at <= now) | (row.last_seen_at + timeouts.idle_timeout <= now)


def touch(row: SessionMixin, now: int) -> None:
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        row.last_seen_at = now


def end(row: SessionMixin, now: int) -> bool:
    """End a session; True if it was live until now."""
    if row.ended_at is not None:
        return False
    row.ended_at = now
    return True
