"""Access recovery by phone, e-mail, SNILS or patent number with the surname (the mos.ru way).

One function per transition of ``RecoveryFlow`` (see its module for the diagram):
``start_recovery`` (started → sent), ``resend_code`` (sent → sent), ``verify_code`` and
``check_link`` (sent → verified), ``complete`` (verified → done).

Instructions go only to contacts already on file, never to an address typed in the form. The
channel follows what was typed: an e-mail gets e-mail, a phone gets SMS, a SNILS or patent number
gets e-mail where the account has one, else SMS. An identifier that matches no account, or more
than one with that surname, gets a decoy flow: the same pages, nothing sent, nothing verifiable.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import email_validator
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..errors import IdpError
from ..models import Account
from ..models import RecoveryFlow
from ..models.recovery import DONE
from ..models.recovery import FAILED
from ..models.recovery import SENT
from ..models.recovery import VERIFIED
from . import audit
from . import counters
from . import passwords
from .accounts import normalize_login
from .accounts import normalize_phone
from .accounts import normalize_snils
from .mail import Mail
from .mail import MailDeliveryError
from .mail import MailSender
from .password_change import PasswordPolicyError
from .password_change import PolicySettings
from .password_change import change_password
from .password_change import check_new_password
from .reset import ResetLimitError
from .reset import take_sms_allowance
from .sms import SmsDeliveryError
from .sms import SmsSender
from .tokens import digest
from .tokens import new_secret

log = logging.getLogger(__name__)

EMAIL, PHONE, SNILS, LOGIN = "email", "phone", "snils", "login"
_SNILS_LOOK = re.compile(r"^\d{3}-\d{3}-\d{3}[ -]\d{2}$")


class RecoveryInputError(IdpError):
    """What was typed is no identifier; ``field`` names the form field."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field, self.reason = field, reason


class FlowExpiredError(IdpError):
    """The flow is unknown, used, failed or past its time; the user starts again."""


class CodeMismatchError(IdpError):
    def __init__(self, attempts_left: int):
        super().__init__(f"{attempts_left} attempts left")
        self.attempts_left = attempts_left


class ResendLimitError(IdpError):
    """This flow has sent all the codes it may."""


@dataclass(frozen=True)
class RecoverySettings:
    link_ttl: int
    code_ttl: int
    code_attempts: int
    codes_per_flow: int
    verified_ttl: int
    timezone: str
    daily_limit: int
    ip_daily_limit: int
    phone_daily_limit: int
    sms_daily_budget: int


@dataclass(frozen=True)
class Delivery:
    """How to reach people: the senders and the texts, which the caller composes in the user's language."""

    sms: SmsSender
    mailer: MailSender
    sms_text: Callable[[str, Account], str]
    link_mail: Callable[[str, Account], Mail]
    code_key: bytes


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
    if value.startswith("+") or russian_mobile or (digits.isdigit() and len(digits) == 11 and digits[0] in "78"):
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


def fold_surname(surname: str) -> str:
    """Case, ё/е and spaces do not matter: «  Рахимов » and «РАХИМОВ» are one surname."""
    folded = unicodedata.normalize("NFC", surname or "").casefold().replace("ё", "е")
    return " ".join(folded.split())


def find_account(db: Session, kind: str, value: str, surname: str) -> Account | None:
    """The one active account with this identifier and surname; None for none or several."""
    column = {EMAIL: Account.email, PHONE: Account.phone, SNILS: Account.snils, LOGIN: Account.login}[kind]
    wanted = fold_surname(surname)
    matches = [a for a in db.scalars(select(Account).where(column == value)) if fold_surname(a.surname) == wanted]
    matches = [a for a in matches if a.is_active]
    if len(matches) > 1:
        # why: a phone or e-mail shared by relatives; whichever account we chose could be the wrong person's.
        log.info("recovery: identifier of kind %s matches %d accounts; nothing sent", kind, len(matches))
        return None
    return matches[0] if matches else None


def _code_hash(key: bytes, flow_id: str, code: str) -> str:
    return hmac.new(key, f"{flow_id}:{code}".encode(), hashlib.sha256).hexdigest()


def start_recovery(
    db: Session,
    *,
    kind: str,
    value: str,
    surname: str,
    ip: str,
    now: int,
    settings: RecoverySettings,
    delivery: Delivery,
    link_for: Callable[[str], str],
) -> RecoveryFlow:
    """Open a flow and send instructions if exactly one account matches. Raises ResetLimitError
    (daily limits), SmsDeliveryError or MailDeliveryError (then nothing is stored)."""
    tally = counters.Tally(db, counters.local_day(now, settings.timezone))
    # The same per-IP and per-day limits as the SMS reset (README: "Access recovery").
    # why: a patent number is the SMS reset's login; both paths count against one daily limit for it.
    identifier_key = f"reset-login:{value}" if kind == LOGIN else f"recovery-{kind}:{value}"
    within_limits = tally.take(f"reset-ip:{ip}", settings.ip_daily_limit) and tally.take(
        identifier_key, settings.daily_limit
    )
    if not within_limits:
        db.commit()
        raise ResetLimitError()
    account = find_account(db, kind, value, surname)
    by_email = account is not None and (kind == EMAIL or (kind in (SNILS, LOGIN) and bool(account.email)))
    if account is not None and not by_email and not _take_sms(tally, account, settings):
        account = None  # over a limit: behave as for no match
    # The browser always gets a code flow: a real one when an SMS goes out, else a decoy that no code
    # verifies. An e-mail adds a separate flow reached only through its link. So the pages a browser
    # sees, expiry and attempt counts included, never depend on what matched or on the channel.
    code_flow = RecoveryFlow(
        id=new_secret(24), channel="sms", state=SENT, created_at=now, expires_at=now + settings.code_ttl, codes_sent=1
    )
    link_flow = None
    db.commit()
    try:
        if by_email:
            token = new_secret(32)
            link_flow = RecoveryFlow(
                id=new_secret(24), account_id=account.id, channel="email", state=SENT, created_at=now,
                expires_at=now + settings.link_ttl, link_token_hash=digest(token),
            )
            delivery.mailer.send(delivery.link_mail(link_for(token), account))
        elif account is not None:
            code = f"{secrets.randbelow(10**6):06d}"
            code_flow.account_id = account.id
            code_flow.code_hash = _code_hash(delivery.code_key, code_flow.id, code)
            delivery.sms.send(account.phone, delivery.sms_text(code, account))
    except (SmsDeliveryError, MailDeliveryError):
        tally.give_back()
        db.commit()
        raise
    db.add_all([f for f in (code_flow, link_flow) if f is not None])
    if account is not None:
        event = "account.recovery_mailed" if by_email else "account.recovery_texted"
        audit.record(db, audit.Context(audit.ANONYMOUS, ip, now), event, account_id=account.id)
    db.commit()
    return code_flow


def _take_sms(tally: counters.Tally, account: Account, settings: RecoverySettings) -> bool:
    return take_sms_allowance(
        tally, account.phone, phone_limit=settings.phone_daily_limit, budget=settings.sms_daily_budget
    )


def _live_flow(db: Session, flow_id, now: int, state: str) -> RecoveryFlow:
    flow = db.get(RecoveryFlow, flow_id) if isinstance(flow_id, str) else None
    if flow is None or flow.state != state:
        raise FlowExpiredError()
    if flow.expires_at <= now:
        flow.state = FAILED
        db.commit()
        raise FlowExpiredError()
    return flow


def verify_code(db: Session, flow_id, code: str, *, now: int, settings: RecoverySettings, code_key: bytes) -> RecoveryFlow:
    """sent → verified on the right code. Each try counts first, atomically, against the flow's cap."""
    flow = _live_flow(db, flow_id, now, SENT)
    if flow.channel != "sms":
        raise FlowExpiredError()
    counted = db.execute(
        update(RecoveryFlow)
        .where(RecoveryFlow.id == flow.id, RecoveryFlow.state == SENT, RecoveryFlow.attempts < settings.code_attempts)
        .values(attempts=RecoveryFlow.attempts + 1)
    ).rowcount
    db.commit()
    db.refresh(flow)
    if not counted:
        flow.state = FAILED
        db.commit()
        raise FlowExpiredError()
    given = re.sub(r"\D", "", code or "")[:6]
    if not flow.code_hash or not hmac.compare_digest(_code_hash(code_key, flow.id, given), flow.code_hash):
        left = settings.code_attempts - flow.attempts
        if left <= 0:
            flow.state = FAILED
            db.commit()
        raise CodeMismatchError(left)
    flow.state, flow.verified_at, flow.expires_at = VERIFIED, now, now + settings.verified_ttl
    db.commit()
    return flow


def resend_code(
    db: Session, flow_id, *, now: int, settings: RecoverySettings, delivery: Delivery
) -> RecoveryFlow:
    """A new SMS code for the same flow; the count of wrong tries stays (it is the flow's, not the code's).
    A decoy answers the same and sends nothing."""
    flow = _live_flow(db, flow_id, now, SENT)
    if flow.channel != "sms":
        raise FlowExpiredError()
    if flow.codes_sent >= settings.codes_per_flow:
        raise ResendLimitError()
    tally = counters.Tally(db, counters.local_day(now, settings.timezone))
    account = db.get(Account, flow.account_id) if flow.account_id else None
    flow.codes_sent += 1
    flow.expires_at = now + settings.code_ttl
    if account is None or not _take_sms(tally, account, settings):
        tally.give_back()
        db.commit()
        return flow
    db.commit()
    code = f"{secrets.randbelow(10**6):06d}"
    try:
        delivery.sms.send(account.phone, delivery.sms_text(code, account))
    except SmsDeliveryError:
        tally.give_back()
        flow.codes_sent -= 1
        db.commit()
        raise
    flow.code_hash = _code_hash(delivery.code_key, flow.id, code)
    db.commit()
    return flow


def check_link(db: Session, token, *, now: int) -> RecoveryFlow:
    """The flow an e-mailed link belongs to, if it can still be used. Opening the link does not use
    it up (mail scanners open links too); setting the password does."""
    if not isinstance(token, str) or not 20 <= len(token) <= 128:
        raise FlowExpiredError()
    flow = db.scalar(select(RecoveryFlow).filter_by(link_token_hash=digest(token)))
    if flow is None:
        raise FlowExpiredError()
    return _live_flow(db, flow.id, now, SENT)


def complete(
    db: Session,
    flow: RecoveryFlow,
    new: str,
    repeat: str,
    *,
    ip: str | None,
    now: int,
    policy: PolicySettings,
    rounds: int,
) -> Account:
    """verified (or a live link) → done: the new password replaces the old one everywhere."""
    account = db.get(Account, flow.account_id)
    if new != repeat:
        raise PasswordPolicyError("mismatch")
    check_new_password(account, new, policy)
    # The same policy as the forced change: the new password differs from the old one.
    if passwords.verify_password(new, account.password_hash):
        raise PasswordPolicyError("same_as_old")
    finished = db.execute(
        update(RecoveryFlow)
        .where(RecoveryFlow.id == flow.id, RecoveryFlow.state == flow.state)
        .values(state=DONE, done_at=now)
    ).rowcount
    if not finished:
        db.rollback()
        raise FlowExpiredError()
    change_password(db, account, new, ip=ip, now=now, rounds=rounds, keep_sid=None, event="account.recovered")
    db.commit()
    return account


def verified_flow(db: Session, flow_id, *, now: int) -> RecoveryFlow:
    return _live_flow(db, flow_id, now, VERIFIED)
