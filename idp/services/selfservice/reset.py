"""Password reset by SMS (seed: «Сброс пароля к личному кабинету иностранного гражданина»).

    (request) ──limits, a match, the SMS sent──▶ sent ──redeem: its password signs in──▶ used
                                                  └──void: the old password signs in, a newer reset,
                                                     a password change, an operator──▶ void

The captcha is checked by the caller before anything here runs. Then ``request``, in order:

1. the per-IP and per-login daily limits (``limits``): every attempt counts, whether or not the login
   exists, so the limit message says nothing about accounts;
2. the account lookup: login, phone and status must match;
3. the per-phone limit and the service's daily SMS budget;
4. a new temporary password and its keyed digest (HMAC-SHA-256 with [server] secret_key), made on every
   path, so a match costs no more time than a miss.

It returns what to send (or None); the caller commits the counts, sends the SMS, then calls ``sent``
(the row is stored, older pending resets are void, the account's history says so) or ``not_sent``
(every count is given back; nothing is stored). The password waits beside the current one until it is
used: ``Pending.redeem`` is how sign-in (``accounts.authenticate``) tries it when the current password
does not match, and a used one becomes a temporary password to change at once (seed step 4, then step 3).

Why a keyed digest and not bcrypt: the password is machine-made (58 bits), so a slow hash adds nothing
against guessing online, while a bcrypt check of it made every wrong password cost two bcrypt runs
whenever a reset was pending — a timing oracle for "a reset is pending" (issue 10: 714 ms against 310 ms).
The key is not in the database, so a copy of the database alone does not let anyone search the 58 bits
offline. Rotating secret_key voids pending resets (they no longer match). Rows written before this
change hold a bcrypt hash and are still checked with bcrypt.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...config import Settings
from ...models import Account
from ...models import ResetFlow
from ...models.reset import SENT
from ...models.reset import USED
from ...models.reset import VOID
from .. import audit
from .. import counters
from .. import notices
from .. import passwords
from . import limits


@dataclass
class ResetDelivery:
    """A reset waiting for its SMS: the account, the temporary password to text, and the counts taken."""

    account: Account
    temporary: str
    password_hash: str
    tally: counters.Tally


def request(
    db: Session, *, login: str, phone: str, ip: str, now: int, settings: Settings
) -> ResetDelivery | None:
    """What to send if ``login`` and ``phone`` (both normalised) match an active account within the
    limits; None otherwise, and the same answer either way. Raises LimitError when a daily limit is
    reached (the counts taken stay: the caller commits them)."""
    tally = limits.day_tally(db, now, settings)
    limits.take_request(tally, ip=ip, kind="login", value=login, settings=settings)
    account = db.scalar(select(Account).filter_by(login=login))
    temporary = passwords.generate_temporary_password()
    # why: on every path, so a match costs no more time than a miss.
    password_hash = password_digest(settings.server.secret_key, temporary)
    if account is None or not account.is_active or account.phone != phone:
        return None
    if not limits.take_sms(tally, phone, settings):
        return None
    return ResetDelivery(account=account, temporary=temporary, password_hash=password_hash, tally=tally)


def sent(db: Session, delivery: ResetDelivery, *, ip: str, now: int, settings: Settings) -> ResetFlow:
    """(request) → sent: the SMS left; its password waits beside the current one."""
    account = delivery.account
    void(db, account, now=now)
    flow = ResetFlow(
        account_id=account.id,
        state=SENT,
        password_hash=delivery.password_hash,
        created_at=now,
        expires_at=now + settings.passwords.temporary_ttl,
        attempts=0,
    )
    db.add(flow)
    account.updated_at = now
    # Whoever asked knew the login and phone; the account's history shows that a reset went out.
    audit.record(db, audit.Context(audit.ANONYMOUS, ip, now), "account.reset_sent", account_id=account.id)
    db.flush()
    return flow


def not_sent(db: Session, delivery: ResetDelivery) -> None:
    """The gateway refused: the attempt does not count, and nothing is stored."""
    delivery.tally.give_back()
    db.flush()


def _pending(db: Session, account: Account, now: int) -> ResetFlow | None:
    query = select(ResetFlow).where(
        ResetFlow.account_id == account.id, ResetFlow.state == SENT, ResetFlow.expires_at > now
    )
    return db.scalar(query.order_by(ResetFlow.id.desc()).limit(1))


DIGEST_PREFIX = "hmac-sha256$"


def password_digest(key: str, password: str) -> str:
    mac = hmac.new(key.encode("utf-8"), password.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return DIGEST_PREFIX + mac.hexdigest()


def _matches(key: str, password: str, stored: str) -> bool:
    if stored.startswith(DIGEST_PREFIX):
        return hmac.compare_digest(stored, password_digest(key, password))
    return passwords.verify_password(password, stored)  # a row from before the keyed digest


@dataclass(frozen=True)
class Pending:
    """The SMS reset as ``accounts.PendingPassword``: ``key`` is [server] secret_key."""

    key: str

    def redeem(self, db: Session, account: Account, password: str, now: int) -> int | None:
        return redeem(db, account, password, now, key=self.key)

    def void(self, db: Session, account: Account, *, now: int) -> None:
        void(db, account, now=now)


def redeem(db: Session, account: Account, password: str, now: int, *, key: str) -> int | None:
    """sent → used when ``password`` is the pending one (sign-in tried it after the current password
    failed). Returns until when it works as a temporary password, or None when it is not the pending
    one. The caller makes it the account's password (hashed with bcrypt then)."""
    flow = _pending(db, account, now)
    if flow is None:
        return None
    if not _matches(key, password, flow.password_hash):
        flow.attempts += 1
        return None
    account.password_changed_at = now
    account.updated_at = now
    flow.state, flow.done_at = USED, now
    # The SMS password became the account's: warn the person, in case the phone is no longer theirs.
    notices.notify(db, account, notices.PASSWORD_RESET, now=now)
    db.flush()
    return flow.expires_at


def void(db: Session, account: Account, *, now: int) -> None:
    """sent → void: the owner signed in with the current password, or the password was replaced."""
    for flow in db.scalars(select(ResetFlow).filter_by(account_id=account.id, state=SENT)):
        flow.state, flow.done_at = VOID, now
