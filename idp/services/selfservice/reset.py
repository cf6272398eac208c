"""Password reset by SMS (seed: «Сброс пароля к личному кабинету иностранного гражданина»).

    (request) ──limits──▶ queued ──the outbox makes and texts a password──▶ sent ──redeem──▶ used
                            │          └──a newer reset, the old password, a change──▶ void ◀──┘
                            └──a decoy (no match), the SMS limit or budget spent at sending──▶ void

The captcha is checked by the caller before anything here runs. Then ``request``, in order:

1. the per-IP and per-login daily limits (``limits``): every attempt counts, whether or not the login
   exists, so the limit message says nothing about accounts;
2. the account lookup: login, phone and status must match, and the phone be one SMS can reach;
3. a ``queued`` row and a message of the durable outbox (``KIND``, payload: the row's id and the
   address) — for the account on a match, else a decoy row of no account.

The page answers at once and the same for every case, and the request writes the same rows whatever
matched (issue 10: the reset page must be no oracle of login and phone, by its answer or by the time
its writes take, and no request may wait — let alone ``sleep`` — to look alike): the day's two counts,
one flow row, one outbox message. Nobody waits for the SMS gateway. ``SmsDelivery``, the outbox's
handler, then voids a decoy (nothing is sent: its row belongs to no account, so no password can ever
be redeemed through it), and for a match takes the SMS allowance (the phone's daily limit and the day's
budget, ``limits.take_sms``; spent: the flow is void and nothing is sent), makes the temporary password
(so no password ever waits in the outbox), stores its keyed digest, voids older pending resets, writes
the account's ``account.reset_sent`` event (the account's history, so it is written when there is an
account to write it for: outside the request), commits, and sends (``sending.send_sms``, which the
access recovery shares):

* sent, or **no definite answer** (a timeout: the SMS may well arrive): the password stays valid and
  every count stays taken — unknown is not failed;
* a **definite refusal**: the row is void, and the login's, the phone's and the budget's counts are
  given back (the address's stays).

The password waits beside the current one until it is used: ``Pending.redeem`` is how sign-in
(``accounts.authenticate``) tries it when the current password does not match, and a used one becomes a
temporary password to change at once (seed step 4, then step 3).

Why a keyed digest and not bcrypt: the password is machine-made (58 bits), so a slow hash adds nothing
against guessing online, while a bcrypt check of it made every wrong password cost two bcrypt runs
whenever a reset was pending — a timing oracle for "a reset is pending" (issue 10: 714 ms against 310 ms).
The key ([server] secret_key) is not in the database, so a copy of the database alone does not let anyone
search the 58 bits offline. Rotating secret_key voids pending resets (they no longer match). Rows written
before this change hold a bcrypt hash and are still checked with bcrypt.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement
from sqlalchemy import exists
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...config import Settings
from ...models import Account
from ...models import ResetFlow
from ...models.reset import QUEUED
from ...models.reset import SENT
from ...models.reset import USED
from ...models.reset import VOID
from .. import audit
from .. import notices
from .. import outbox
from .. import passwords
from .. import sms
from ..sms import SmsSender
from . import limits
from . import sending

KIND = "reset_sms"


def request(db: Session, *, login: str, phone: str, ip: str, now: int, settings: Settings) -> ResetFlow:
    """Count the request and queue a reset: for the account if ``login`` and ``phone`` (both normalised)
    match an active one, else a decoy (``account_id`` None). The same rows either way (see above).
    Raises LimitError when a daily limit is reached (the counts taken stay: the caller commits them)."""
    tally = limits.day_tally(db, now, settings)
    limits.take_request(tally, ip=ip, kind="login", value=login, settings=settings)
    account = db.scalar(select(Account).filter_by(login=login))
    # An account whose phone no SMS can reach (a row from before the CLI and console refused such
    # phones) is a miss: sending would be refused and give the login's count back, so its login and
    # phone would never reach the daily limit that a miss reaches (issue 10: an oracle of both).
    matched = (
        account is not None
        and account.is_active
        and account.phone == phone
        and sms.reachable(phone, settings.sms.allowed_country_codes)
    )
    flow = ResetFlow(
        account_id=account.id if matched and account is not None else None,
        state=QUEUED,
        password_hash="",
        created_at=now,
        expires_at=now + settings.passwords.temporary_ttl,
        attempts=0,
    )
    db.add(flow)
    db.flush()
    # The address goes along for the account's history (written when the SMS is made); a decoy's
    # message has the same shape.
    outbox.enqueue(db, KIND, {"flow": flow.id, "ip": ip}, now=now)
    return flow


@dataclass(frozen=True)
class SmsDelivery:
    """The outbox handler of ``KIND``: take the SMS allowance, make the password, store its digest,
    send it (see above); a decoy's message only voids its flow."""

    sender: SmsSender
    settings: Settings
    clock: Callable[[], int]
    # (temporary password, account) -> the SMS text, in the account's language.
    text: Callable[[str, Account], str]

    def __call__(self, db: Session, payload: dict) -> None:
        flow = db.get(ResetFlow, payload.get("flow"))
        if flow is None or flow.state != QUEUED:
            return  # void meanwhile (a newer reset, a password change), or already sent by a lost attempt
        account = db.get(Account, flow.account_id) if flow.account_id is not None else None
        now = self.clock()
        if (
            account is None
            or not account.is_active
            or flow.expires_at <= now
            or not limits.take_sms(db, account.phone, now=now, settings=self.settings)
        ):
            # A decoy, an account gone meanwhile, a message held up past the password's lifetime, or the
            # phone's limit or the budget spent: nothing to send (the page said the same as always).
            flow.state, flow.done_at = VOID, now
            db.commit()
            return
        temporary = passwords.generate_temporary_password()
        for older in db.scalars(select(ResetFlow).filter_by(account_id=account.id, state=SENT)):
            older.state, older.done_at = VOID, now
        flow.password_hash = password_digest(self.settings.server.secret_key, temporary)
        flow.state = SENT
        account.updated_at = now
        # Whoever asked knew the login and phone; the account's history shows that a reset was sent.
        context = audit.Context(audit.ANONYMOUS, str(payload.get("ip") or ""), flow.created_at)
        audit.record(db, context, "account.reset_sent", account_id=account.id)
        flow_id, phone, login, asked_at = flow.id, account.phone, account.login, flow.created_at
        text = self.text(temporary, account)

        def refused() -> None:
            row = db.get(ResetFlow, flow_id)
            if row is not None and row.state == SENT:
                row.state, row.done_at = VOID, self.clock()
            limits.give_back_request(db, "login", login, asked_at=asked_at, settings=self.settings)

        sending.send_sms(
            db,
            self.sender,
            phone,
            text,
            taken_at=now,
            settings=self.settings,
            refused=refused,
            what=f"reset SMS of flow {flow_id}",
        )


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

    def waiting(self) -> ColumnElement[bool]:
        return _WAITING


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


# Whether the account of the enclosing query has a reset ``void`` would void (read with it at sign-in).
_WAITING = (
    exists()
    .where(ResetFlow.account_id == Account.id, ResetFlow.state.in_((QUEUED, SENT)))
    .correlate(Account)
    .label("reset_waiting")
)


def void(db: Session, account: Account, *, now: int) -> None:
    """queued or sent → void: the owner signed in with the current password, or the password was
    replaced."""
    query = select(ResetFlow).where(ResetFlow.account_id == account.id, ResetFlow.state.in_((QUEUED, SENT)))
    for flow in db.scalars(query):
        flow.state, flow.done_at = VOID, now
