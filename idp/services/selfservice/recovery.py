"""Access recovery by phone, e-mail, SNILS or patent number with the surname (the mos.ru way).

    (start) ──limits, instructions sent──▶ sent ──the code or the link──▶ verified ──new password──▶ done
                                            └──(expires_at, attempts)──▶ failed

One function per transition of ``RecoveryFlow``: ``start`` then ``started`` or ``not_started`` (the
instructions were sent or not), ``resend`` then ``resent`` or ``not_resent`` (sent → sent),
``verify_code`` and ``check_link`` (sent → verified), ``complete`` (verified → done). A flow found past
its time or over its attempts becomes ``failed``. The functions flush; the caller commits, whatever the
outcome: a counted attempt and a failed flow are state too.

Instructions go only to contacts already on file, never to an address typed in the form. The channel
follows what was typed: an e-mail gets e-mail, a phone gets SMS, a SNILS or patent number gets e-mail
where the account has one, else SMS. An identifier that matches no account, or more than one with that
surname, gets a decoy flow: the same pages, nothing sent, nothing verifiable. The limits are the reset's
(``limits``): a patent number counts against one daily limit whichever form it was typed into.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from dataclasses import field

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
from ...models.recovery import SENT
from ...models.recovery import VERIFIED
from .. import audit
from .. import counters
from ..accounts import normalize_login
from ..accounts import normalize_phone
from ..accounts import normalize_snils
from . import limits
from . import password

log = logging.getLogger(__name__)

EMAIL, PHONE, SNILS, LOGIN = "email", "phone", "snils", "login"
_SNILS_LOOK = re.compile(r"^\d{3}-\d{3}-\d{3}[ -]\d{2}$")


@dataclass
class RecoveryStart:
    """A recovery waiting for its instructions: the flows to store once they are sent, whom to send
    what (``code`` by SMS or ``link_token`` by e-mail; neither for a decoy), and the counts taken."""

    code_flow: RecoveryFlow
    tally: counters.Tally
    account: Account | None = None
    code: str | None = None
    link_token: str | None = None
    flows: list[RecoveryFlow] = field(default_factory=list)

    @property
    def by_email(self) -> bool:
        return self.link_token is not None


@dataclass
class RecoveryResend:
    """A new code waiting for its SMS (``account`` and ``code`` are None for a decoy: nothing to send)."""

    flow: RecoveryFlow
    tally: counters.Tally
    account: Account | None = None
    code: str | None = None


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
) -> RecoveryStart:
    """What to send for this identifier and surname: instructions if exactly one account matches within
    the limits, else a decoy. Raises LimitError when a daily limit is reached (the counts taken stay:
    the caller commits them)."""
    tally = limits.day_tally(db, now, settings)
    limits.take_request(tally, ip=ip, kind=kind, value=value, settings=settings)
    account = find_account(db, kind, value, surname)
    by_email = account is not None and (kind == EMAIL or (kind in (SNILS, LOGIN) and bool(account.email)))
    if account is not None and not by_email and not limits.take_sms(tally, account.phone, settings):
        account = None  # over a limit: behave as for no match
    # The browser always gets a code flow: a real one when an SMS goes out, else a decoy that no code
    # verifies. An e-mail adds a separate flow reached only through its link. So the pages a browser
    # sees, expiry and attempt counts included, never depend on what matched or on the channel.
    code_flow = RecoveryFlow(
        id=new_secret(24),
        channel="sms",
        state=SENT,
        created_at=now,
        expires_at=now + settings.recovery.code_ttl,
        attempts=0,
        codes_sent=1,
    )
    plan = RecoveryStart(code_flow=code_flow, tally=tally, account=account, flows=[code_flow])
    if account is not None and by_email:
        plan.link_token = new_secret(32)
        plan.flows.append(
            RecoveryFlow(
                id=new_secret(24),
                account_id=account.id,
                channel="email",
                state=SENT,
                created_at=now,
                expires_at=now + settings.recovery.link_ttl,
                attempts=0,
                codes_sent=0,
                link_token_hash=digest(plan.link_token),
            )
        )
    elif account is not None:
        plan.code = _new_code()
        code_flow.account_id = account.id
        code_flow.code_hash = _code_hash(settings.server.key, code_flow.id, plan.code)
    return plan


def started(db: Session, plan: RecoveryStart, *, ip: str, now: int) -> RecoveryFlow:
    """(start) → sent: the instructions left (or there were none to send); return the browser's flow."""
    db.add_all(plan.flows)
    if plan.account is not None:
        event = "account.recovery_mailed" if plan.by_email else "account.recovery_texted"
        audit.record(db, audit.Context(audit.ANONYMOUS, ip, now), event, account_id=plan.account.id)
    db.flush()
    return plan.code_flow


def not_started(db: Session, plan: RecoveryStart) -> None:
    """The gateway refused: the request does not count, and nothing is stored."""
    plan.tally.give_back()
    db.flush()


def _live_flow(db: Session, flow_id: object, now: int, state: str) -> RecoveryFlow:
    flow = db.get(RecoveryFlow, flow_id) if isinstance(flow_id, str) else None
    if flow is None or flow.state != state:
        raise FlowExpiredError()
    if flow.expires_at <= now:
        flow.state = FAILED
        db.flush()
        raise FlowExpiredError()
    return flow


def verify_code(db: Session, flow_id: object, code: str, *, now: int, settings: Settings) -> RecoveryFlow:
    """sent → verified on the right code. Each try counts first, atomically, against the flow's cap."""
    flow = _live_flow(db, flow_id, now, SENT)
    if flow.channel != "sms":
        raise FlowExpiredError()
    cap = settings.recovery.code_attempts
    counted = affected_rows(
        db,
        update(RecoveryFlow)
        .where(RecoveryFlow.id == flow.id, RecoveryFlow.state == SENT, RecoveryFlow.attempts < cap)
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


def resend(db: Session, flow_id: object, *, now: int, settings: Settings) -> RecoveryResend:
    """sent → sent: a new SMS code for the same flow; the count of wrong tries stays (it is the flow's,
    not the code's). A decoy answers the same and sends nothing."""
    flow = _live_flow(db, flow_id, now, SENT)
    if flow.channel != "sms":
        raise FlowExpiredError()
    if flow.codes_sent >= settings.recovery.codes_per_flow:
        raise ResendLimitError()
    tally = limits.day_tally(db, now, settings)
    account = db.get(Account, flow.account_id) if flow.account_id else None
    flow.codes_sent += 1
    flow.expires_at = now + settings.recovery.code_ttl
    if account is None or not limits.take_sms(tally, account.phone, settings):
        tally.give_back()
        db.flush()
        return RecoveryResend(flow=flow, tally=tally)
    db.flush()
    return RecoveryResend(flow=flow, tally=tally, account=account, code=_new_code())


def resent(db: Session, plan: RecoveryResend, *, settings: Settings) -> None:
    """The new code left: it replaces the old one."""
    if plan.code is not None:
        plan.flow.code_hash = _code_hash(settings.server.key, plan.flow.id, plan.code)
    db.flush()


def not_resent(db: Session, plan: RecoveryResend) -> None:
    """The gateway refused: the SMS does not count against the flow or the day; the old code stays."""
    plan.tally.give_back()
    plan.flow.codes_sent -= 1
    db.flush()


def check_link(db: Session, token: object, *, now: int) -> RecoveryFlow:
    """The flow an e-mailed link belongs to, if it can still be used. Opening the link does not use
    it up (mail scanners open links too); setting the password does."""
    if not isinstance(token, str) or not 20 <= len(token) <= 128:
        raise FlowExpiredError()
    flow = db.scalar(select(RecoveryFlow).filter_by(link_token_hash=digest(token)))
    if flow is None:
        raise FlowExpiredError()
    return _live_flow(db, flow.id, now, SENT)


def verified_flow(db: Session, flow_id: object, *, now: int) -> RecoveryFlow:
    return _live_flow(db, flow_id, now, VERIFIED)


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
