"""Changing a password: the policy checks and what a change does to sessions and tokens."""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

from zxcvbn.frequency_lists import FREQUENCY_LISTS

from sqlalchemy.orm import Session

from ..errors import IdpError
from ..models import Account
from ..models import Token
from . import audit
from . import passwords
from .accounts import normalize_login
from .sessions import end_account_sessions
from .sessions import revoke_tokens


# A password typed in the Russian layout while meaning Latin keys ("йцукен" is "qwerty") is as common.
_LAYOUT = str.maketrans("йцукенгшщзхъфывапролджэячсмитьбю", "qwertyuiop[]asdfghjkl;'zxcvbnm,.")


@functools.lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    # zxcvbn's list of the 30,000 most common passwords from public breach corpora.
    return frozenset(FREQUENCY_LISTS["passwords"])


def is_common(password: str) -> bool:
    folded = unicodedata.normalize("NFKC", password).casefold()
    return folded in _common_passwords() or folded.translate(_LAYOUT) in _common_passwords()


class PasswordPolicyError(IdpError):
    """A new password is refused; ``reason`` is a key into the view's messages."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PolicySettings:
    min_length: int
    max_length: int = 256


def check_change(account: Account, old: str, new: str, repeat: str, settings: PolicySettings) -> None:
    """Refuse a change unless ``old`` is the current password and ``new`` passes the policy."""
    if not passwords.verify_password(old, account.password_hash):
        raise PasswordPolicyError("wrong_old")
    if new != repeat:
        raise PasswordPolicyError("mismatch")
    # why: the old password is proven above, so comparing normalised strings replaces a second bcrypt run.
    if unicodedata.normalize("NFKC", new) == unicodedata.normalize("NFKC", old):
        raise PasswordPolicyError("same_as_old")
    check_new_password(account, new, settings)


def check_new_password(account: Account, new: str, settings: PolicySettings) -> None:
    """NIST SP 800-63B §5.1.1.2: length, not composition; no password equal to the login or a name."""
    length = len(unicodedata.normalize("NFKC", new))
    if length < settings.min_length:
        raise PasswordPolicyError("too_short")
    if length > settings.max_length:
        raise PasswordPolicyError("too_long")
    if is_common(new):
        raise PasswordPolicyError("common")
    # The login is compared in its normalised form, so "77-0000001" counts as the login "770000001".
    if normalize_login(new) == account.login:
        raise PasswordPolicyError("personal")
    folded = new.casefold().replace(" ", "")
    names = (account.surname, account.given_name, account.middle_name)
    if any(name and folded == name.casefold().replace(" ", "") for name in names):
        raise PasswordPolicyError("personal")


def change_password(
    db: Session,
    account: Account,
    new: str,
    *,
    ip: str | None,
    now: int,
    rounds: int,
    keep_sid: str | None,
    event: str = "account.password_changed",
) -> None:
    """Set a permanent password; end the account's other sessions, revoke its refresh tokens and record
    ``event`` in the account's history."""
    account.password_hash = passwords.hash_password(new, rounds)
    account.password_changed_at = now
    account.must_change_password = False
    account.temporary_password_expires_at = None
    # A pending SMS-reset password dies with the old one.
    account.reset_password_hash = None
    account.reset_password_expires_at = None
    account.updated_at = now
    end_account_sessions(db, account.id, now=now, keep_sid=keep_sid)
    revoke_tokens(db, Token.account_id == account.id, now=now, access=False)
    audit.record(db, audit.Context(audit.Actor.account(account), ip, now), event, account_id=account.id)
