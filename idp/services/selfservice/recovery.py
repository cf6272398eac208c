"""Access recovery by phone, e-mail, SNILS or patent number with the surname (the mos.ru way).

    (start) ──limits──▶ queued ──the outbox: a code, a link, or nothing──▶ sent ──code or link──▶ verified
                          ▲                                                  │                      │
                          └──────────────────── resend ──────────────────────┤             new password
                                                                             ▼                      ▼
                                                              failed (expires_at, attempts)       done

One function per transition of ``RecoveryFlow``: ``start`` ((start) → queued), ``Delivery`` (the outbox's
handler: queued → sent), ``resend`` (sent → queued), ``verify_code`` and ``check_link`` (→ verified),
``complete`` (verified → done). A flow found past its time or over its attempts becomes ``failed``. The
functions flush; the caller commits, whatever the outcome: a counted attempt and a failed flow are state
too.

Nothing is sent inside a request (issue 10: the time a match took to send was an oracle of accounts, and
the wait held a worker). ``start`` and ``resend`` write the same rows whatever matched — the day's counts
of the address and the identifier (``start``), the browser's code flow, one message of the durable outbox
(``KIND``) — and answer at once. ``Delivery`` then, outside any request, takes the SMS allowance (phone and
budget), makes the code or the link token, stores its digest, commits and sends (``sending.send_made``,
as the SMS reset does): no code or token ever waits in the outbox or anywhere in clear. A timeout keeps
what it carried valid and every count taken; a definite refusal undoes it and gives the identifier's,
the phone's and the budget's counts back (the address's stays). A failed message changes nothing on the
account.

Instructions go only to contacts already on file, never to an address typed in the form. The channel
follows what was typed: an e-mail gets e-mail, a phone gets SMS, a SNILS or patent number gets e-mail
where the account has one, else SMS. An identifier that matches no account, or more than one with that
surname, or an account to be texted at a phone the sender cannot reach ([sms] allowed_country_codes: a
row from before the CLI and console refused such phones), gets a decoy flow: the same pages, nothing
sent, nothing verifiable. The limits are the reset's (``limits``): a patent number counts against one
daily limit whichever form it was typed into.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import email_validator
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ...config import Settings
from ...crypto import digest
from ...crypto import new_secret
from ...errors import CodeMismatchError
from ...errors import FlowExpiredError
from ...errors import RecoveryInputError
from ...errors import ResendLimitError
from ...events import EventBus
from ...models import Account
from ...models import RecoveryFlow
from ...models.account import fold_name
from ...models.base import affected_rows
from ...models.recovery import DONE
from ...models.recovery import FAILED
from ...models.recovery import LIVE
from ...models.recovery import QUEUED
from ...models.recovery import SENT
from ...models.recovery import VERIFIED
from .. import audit
from .. import outbox
from .. import sms
from ..accounts import normalize_login
from ..accounts import normalize_phone
from ..accounts import normalize_snils
from ..mail import Mail
from ..mail import MailSender
from ..sms import SmsSender
from . import limits
from . import password
from . import sending

log = logging.getLogger(__name__)

EMAIL, PHONE, SNILS, LOGIN = "email", "phone", "snils", "login"
# The outbox kind of the recovery's messages (services.outbox; registered in create_app).
KIND = "recovery"
_SNILS_LOOK = re.compile(r"^\d{3}-\d{3}-\d{3}[ -]\d{2}$")


def identify(raw: str) -> tuple[str, str]:
    """Detect and normalise the identifier. SNILS formatting (XXX-XXX-XXX YY) wins; otherwise a valid
    phone number (with +, ten digits from 9, or eleven from 7 or 8) is a phone, other eleven digits a
    SNILS (checksum checked), and the rest a patent number."""
    value = (raw or "").strip()
    if not value or len(value) > 254:
        raise RecoveryInputError("identifier", "empty")
    if "@" in value:
        return EMAIL, _email(value)
    if _SNILS_LOOK.match(value):
        snils = normalize_snils(value)
        if not snils:
            raise RecoveryInputError("identifier", "snils_checksum")
        return SNILS, snils
    digits = re.sub(r"[\s\-()]", "", value)
    # The reset page's mask teaches "+7 (9XX) …", but people also type the ten digits alone.
    russian_mobile = digits.isdigit() and len(digits) == 10 and digits[0] == "9"
    if (
        value.startswith("+")
        or russian_mobile
        or (digits.isdigit() and len(digits) == 11 and digits[0] in "78")
    ):
        phone = normalize_phone(value)
        if phone:
            return PHONE, phone
    if digits.isdigit() and len(digits) == 11:
        snils = normalize_snils(digits)
        if not snils:
            raise RecoveryInputError("identifier", "snils_checksum")
        return SNILS, snils
    login = normalize_login(value)
    if not login:
        raise RecoveryInputError("identifier", "unknown_kind")
    return LOGIN, login


def _email(value: str) -> str:
    try:
        return email_validator.validate_email(value, check_deliverability=False).normalized.lower()
    except email_validator.EmailNotValidError as exc:
        raise RecoveryInputError("identifier", "email") from exc


def find_account(db: Session, kind: str, value: str, surname: str) -> Account | None:
    """The one active account with this identifier and surname; None for none or several."""
    column = {EMAIL: Account.email, PHONE: Account.phone, SNILS: Account.snils, LOGIN: Account.login}[kind]
    # Case, ё/е and spaces do not matter: «  Рахимов » and «РАХИМОВ» are one surname.
    wanted = fold_name(surname)
    matches = [
        a for a in db.scalars(select(Account).where(column == value)) if fold_name(a.surname) == wanted
    ]
    matches = [a for a in matches if a.is_active]
    if len(matches) > 1:
        # why: a phone or e-mail shared by relatives; whichever account we chose could be the wrong person's.
        log.info("recovery: identifier of kind %s matches %d accounts; nothing sent", kind, len(matches))
        return None
    return matches[0] if matches else None


def _code_hash(key: bytes, flow_id: str, code: str) -> str:
    return hmac.new(key, f"{flow_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def start(
    db: Session, *, kind: str, value: str, surname: str, ip: str, now: int, settings: Settings
) -> RecoveryFlow:
    """(start) → queued: count the request and queue what the outbox sends for this identifier and
    surname (instructions if exactly one account matches, else nothing); return the browser's code flow.
    Raises LimitError when a daily limit is reached (the counts taken stay: the caller commits them)."""
    tally = limits.day_tally(db, now, settings)
    limits.take_request(tally, ip=ip, kind=kind, value=value, settings=settings)
    account = find_account(db, kind, value, surname)
    by_email = account is not None and (kind == EMAIL or (kind in (SNILS, LOGIN) and bool(account.email)))
    if (
        account is not None
        and not by_email
        and not sms.reachable(account.phone, settings.sms.allowed_country_codes)
    ):
        # To be texted at a phone no SMS can reach, the account is a miss, as on the reset page: the
        # refusal would give the identifier's count back (and write the account's history), so its
        # identifier would never reach the daily limit that a miss reaches (issue 10: an oracle). Its
        # e-mail, where that is the channel, still works.
        account = None
    # why: the browser always gets a code flow and one outbox message, whatever matched — a real flow
    # when the account is texted, else a decoy that no code verifies (an e-mail adds a flow of its own,
    # made by the outbox) — so the rows written, the answer and its time, and the pages after it
    # (expiry and attempt counts included) never depend on what matched or on the channel.
    flow = RecoveryFlow(
        id=new_secret(24),
        account_id=account.id if account is not None and not by_email else None,
        channel="sms",
        state=QUEUED,
        created_at=now,
        expires_at=now + settings.recovery.code_ttl,
        attempts=0,
        codes_sent=1,
    )
    db.add(flow)
    payload: dict[str, object] = {"flow": flow.id, "n": 1}
    if account is not None:
        # What the outbox needs besides the flow: the kind of identifier whose request a refusal gives
        # back (its value is the account's), when and from where it was asked (the account's history),
        # and for an e-mail whom to write to. No code, token or contact: those are read or made then.
        payload.update(asked=kind, at=now, ip=ip)
        if by_email:
            # The link's flow is written by the outbox, with this id: one letter even if it tries twice.
            payload.update(mail=account.id, link=new_secret(24))
    outbox.enqueue(db, KIND, payload, now=now)
    db.flush()
    return flow


@dataclass(frozen=True)
class Delivery:
    """The outbox handler of ``KIND``: queued → sent, making and sending the code or the link (if any)."""

    sms: SmsSender
    mailer: MailSender
    settings: Settings
    clock: Callable[[], int]
    # (code, account) -> the SMS text; (link token, account) -> the e-mail; in the account's language.
    code_text: Callable[[str, Account], str]
    link_mail: Callable[[str, Account], Mail]

    def __call__(self, db: Session, payload: dict) -> None:
        now = self.clock()
        flow_id = payload.get("flow")
        flow = db.get(RecoveryFlow, flow_id) if isinstance(flow_id, str) else None
        # Not queued for this code any more: sent by a lost attempt, superseded by a newer code (whose
        # message sends it), verified or failed meanwhile; past its expiry its code would be of no use.
        due = (
            flow is not None
            and flow.state == QUEUED
            and flow.codes_sent == payload.get("n")
            and flow.expires_at > now
        )
        account = db.get(Account, flow.account_id) if due and flow is not None and flow.account_id else None
        if flow is not None and account is not None and account.is_active:
            self._text(db, flow, account, payload, now)
            return
        if due and flow is not None:
            self._queued_to_sent(db, flow)  # a decoy's: nothing to text
        db.commit()
        if payload.get("mail"):
            # Whatever became of the browser's decoy flow meanwhile (a re-send, wrong codes): the letter
            # does not depend on it.
            self._mail(db, payload, now)

    def _queued_to_sent(self, db: Session, flow: RecoveryFlow, code_hash: str | None = None) -> bool:
        """queued → sent unless a newer code was asked for meanwhile (or the flow moved on)."""
        values: dict[str, object] = {"state": SENT}
        if code_hash is not None:
            values["code_hash"] = code_hash
        return bool(
            affected_rows(
                db,
                update(RecoveryFlow)
                .where(
                    RecoveryFlow.id == flow.id,
                    RecoveryFlow.state == QUEUED,
                    RecoveryFlow.codes_sent == flow.codes_sent,
                )
                .values(**values),
            )
        )

    def _text(self, db: Session, flow: RecoveryFlow, account: Account, payload: dict, now: int) -> None:
        if not limits.take_sms(db, account.phone, now=now, settings=self.settings):
            self._queued_to_sent(db, flow)  # over the phone's limit or the budget: as for no match
            db.commit()
            return
        code, previous = _new_code(), flow.code_hash
        made = _code_hash(self.settings.server.key, flow.id, code)
        if not self._queued_to_sent(db, flow, made):
            db.rollback()  # a newer code was asked for: its message sends it (and takes the allowance)
            return
        self._asked(db, account, payload, "account.recovery_texted")
        flow_id, phone, text = flow.id, account.phone, self.code_text(code, account)
        asked = self._asked_request(account, payload)

        def refused() -> None:
            # The code it carried is void; the one before it (after a re-send) works again.
            db.execute(
                update(RecoveryFlow)
                .where(RecoveryFlow.id == flow_id, RecoveryFlow.code_hash == made)
                .values(code_hash=previous)
            )
            self._give_back_request(db, asked, payload)

        sending.send_sms(
            db,
            self.sms,
            phone,
            text,
            taken_at=now,
            settings=self.settings,
            refused=refused,
            what="recovery SMS",
        )

    def _mail(self, db: Session, payload: dict, now: int) -> None:
        link_id = payload.get("link")
        account = db.get(Account, payload.get("mail"))
        if not isinstance(link_id, str) or db.get(RecoveryFlow, link_id) is not None:
            return  # written (and sent) by a lost attempt: its primary key makes the letter single
        if account is None or not account.is_active or not account.email:
            return
        if now >= int(payload["at"]) + self.settings.recovery.link_ttl:
            return  # the outbox was held up past the link's lifetime: too late to be of use
        token = new_secret(32)
        link = RecoveryFlow(
            id=link_id,
            account_id=account.id,
            channel="email",
            state=SENT,
            created_at=now,
            expires_at=now + self.settings.recovery.link_ttl,
            attempts=0,
            codes_sent=0,
            link_token_hash=digest(token),
        )
        db.add(link)
        self._asked(db, account, payload, "account.recovery_mailed")
        mail, asked = self.link_mail(token, account), self._asked_request(account, payload)

        def refused() -> None:
            refused_link = db.get(RecoveryFlow, link_id)
            if refused_link is not None and refused_link.state == SENT:
                refused_link.state = FAILED
            self._give_back_request(db, asked, payload)

        sending.send_made(db, lambda: self.mailer.send(mail), refused=refused, what="recovery e-mail")

    @staticmethod
    def _asked(db: Session, account: Account, payload: dict, event: str) -> None:
        """The account's history: instructions were sent (not for a re-sent code)."""
        if "asked" in payload:
            context = audit.Context(audit.ANONYMOUS, str(payload.get("ip") or ""), int(payload["at"]))
            audit.record(db, context, event, account_id=account.id)

    @staticmethod
    def _asked_request(account: Account, payload: dict) -> tuple[str, str] | None:
        """The identifier whose request a refusal gives back: its kind as typed, its value the account's."""
        kind = payload.get("asked")
        column = {EMAIL: "email", PHONE: "phone", SNILS: "snils", LOGIN: "login"}.get(str(kind))
        value = getattr(account, column) if column else None
        return (str(kind), value) if value else None

    def _give_back_request(self, db: Session, asked: tuple[str, str] | None, payload: dict) -> None:
        if asked is not None:
            limits.give_back_request(db, *asked, asked_at=int(payload["at"]), settings=self.settings)


def _live_flow(db: Session, flow_id: object, now: int, states: tuple[str, ...]) -> RecoveryFlow:
    flow = db.get(RecoveryFlow, flow_id) if isinstance(flow_id, str) else None
    if flow is None or flow.state not in states:
        raise FlowExpiredError()
    if flow.expires_at <= now:
        flow.state = FAILED
        db.flush()
        raise FlowExpiredError()
    return flow


def verify_code(db: Session, flow_id: object, code: str, *, now: int, settings: Settings) -> RecoveryFlow:
    """sent (or queued again for a new code) → verified on the right code. Each try counts first,
    atomically, against the flow's cap."""
    flow = _live_flow(db, flow_id, now, LIVE)
    if flow.channel != "sms":
        raise FlowExpiredError()
    cap = settings.recovery.code_attempts
    counted = affected_rows(
        db,
        update(RecoveryFlow)
        .where(RecoveryFlow.id == flow.id, RecoveryFlow.state.in_(LIVE), RecoveryFlow.attempts < cap)
        .values(attempts=RecoveryFlow.attempts + 1),
    )
    db.refresh(flow)
    if not counted:
        flow.state = FAILED
        db.flush()
        raise FlowExpiredError()
    given = re.sub(r"\D", "", code or "")[:6]
    expected = _code_hash(settings.server.key, flow.id, given)
    if not flow.code_hash or not hmac.compare_digest(expected, flow.code_hash):
        left = cap - flow.attempts
        if left <= 0:
            flow.state = FAILED
        db.flush()
        raise CodeMismatchError(left)
    flow.state, flow.verified_at, flow.expires_at = VERIFIED, now, now + settings.recovery.verified_ttl
    db.flush()
    return flow


def resend(db: Session, flow_id: object, *, now: int, settings: Settings) -> RecoveryFlow:
    """sent (or still queued) → queued: a new SMS code for the same flow, made and sent by the outbox;
    the count of wrong tries stays (it is the flow's, not the code's), and so does the current code until
    the new one is made. A decoy is queued the same, and its message sends nothing."""
    flow = _live_flow(db, flow_id, now, LIVE)
    if flow.channel != "sms":
        raise FlowExpiredError()
    if flow.codes_sent >= settings.recovery.codes_per_flow:
        raise ResendLimitError()
    flow.codes_sent += 1
    flow.expires_at = now + settings.recovery.code_ttl
    flow.state = QUEUED
    outbox.enqueue(db, KIND, {"flow": flow.id, "n": flow.codes_sent}, now=now)
    db.flush()
    return flow


def check_link(db: Session, token: object, *, now: int) -> RecoveryFlow:
    """The flow an e-mailed link belongs to, if it can still be used. Opening the link does not use
    it up (mail scanners open links too); setting the password does."""
    if not isinstance(token, str) or not 20 <= len(token) <= 128:
        raise FlowExpiredError()
    flow = db.scalar(select(RecoveryFlow).filter_by(link_token_hash=digest(token)))
    if flow is None:
        raise FlowExpiredError()
    return _live_flow(db, flow.id, now, (SENT,))


def verified_flow(db: Session, flow_id: object, *, now: int) -> RecoveryFlow:
    return _live_flow(db, flow_id, now, (VERIFIED,))


def complete(
    db: Session,
    flow: RecoveryFlow,
    new: str,
    repeat: str,
    *,
    ip: str | None,
    now: int,
    settings: Settings,
    events: EventBus,
) -> Account:
    """verified (or a live link) → done: the new password replaces the old one everywhere."""
    account = db.get(Account, flow.account_id) if flow.account_id else None
    if account is None:
        # A decoy flow never reaches here (no code verifies it); an account deleted meanwhile ends it.
        raise FlowExpiredError()
    password.check_without_old(account, new, repeat, settings.passwords)
    finished = affected_rows(
        db,
        update(RecoveryFlow)
        .where(RecoveryFlow.id == flow.id, RecoveryFlow.state == flow.state)
        .values(state=DONE, done_at=now),
    )
    if not finished:
        raise FlowExpiredError()
    password.complete(
        db,
        account,
        new,
        ip=ip,
        now=now,
        settings=settings.passwords,
        keep_sid=None,
        events=events,
        event="account.recovered",
    )
    return account
