"""Accounts: normalising identifiers, creating accounts, checking a sign-in.

Login normalisation: the patent application number is typed from paper, sometimes with spaces or
dashes, in either case. It is stored as NFKC, upper case, without spaces and dashes, so that
``77-0123 456`` and ``770123456`` are one login.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Protocol

import email_validator
import phonenumbers
from sqlalchemy import ColumnElement
from sqlalchemy import select
from sqlalchemy import true
from sqlalchemy.orm import Session

from ..config import LoginSettings
from ..config import PasswordsSettings
from ..errors import AccountDataError
from ..errors import InvalidCredentialsError
from ..models import Account
from ..models.base import keeping_loaded
from ..models.password import ISSUED
from ..models.password import RESET
from . import credentials
from . import passwords
from . import sms
from .selfservice import password as password_flow

_LOGIN_DROP = re.compile(r"[\s\-\u2010-\u2015\u2212]+")
_LOGIN_VALID = re.compile(r"^[0-9A-ZА-ЯЁ/.]{1,64}$")
_NAME_VALID = re.compile(r"^[^\x00-\x1f\x7f<>]{1,100}$")
_SNILS_DIGITS = re.compile(r"^\d{11}$")
MAX_LOGIN_INPUT = 128


def normalize_login(raw: str) -> str | None:
    """The stored form of a login, or None if it cannot be one."""
    if not isinstance(raw, str) or len(raw) > MAX_LOGIN_INPUT:
        return None
    value = _LOGIN_DROP.sub("", unicodedata.normalize("NFKC", raw)).upper()
    return value if _LOGIN_VALID.match(value) else None


def normalize_phone(raw: str, region: str = "RU") -> str | None:
    """E.164 form of a phone number, or None if ``phonenumbers`` does not accept it."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# The reason a phone the SMS sender cannot reach is refused (CLI and console, by field).
PHONE_UNREACHABLE = "is outside [sms] allowed_country_codes"


def check_sms_reachable(phone: str, allowed: tuple[str, ...] | None) -> None:
    """Refuse a phone (E.164) the SMS sender would refuse: an account whose phone no SMS can reach has no
    reset, and the reset page answered differently for it (issue 10: an oracle of login and phone)."""
    if allowed is not None and not sms.reachable(phone, allowed):
        raise AccountDataError("phone", PHONE_UNREACHABLE)


def snils_checksum_ok(digits: str) -> bool:
    """Pension Fund rule: weights 9..1 over the first nine digits, sum mod 101, 100 counts as 0."""
    total = sum(int(d) * w for d, w in zip(digits[:9], range(9, 0, -1), strict=True))
    check = total % 101
    if check == 100:
        check = 0
    return check == int(digits[9:])


def normalize_snils(raw: str) -> str | None:
    digits = re.sub(r"[\s\-]", "", raw or "")
    if not _SNILS_DIGITS.match(digits) or not snils_checksum_ok(digits):
        return None
    return digits


def _normalize_email(raw: str | None) -> str | None:
    """Syntax only: an operator types it from the application, and there is no DNS to ask offline."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        valid = email_validator.validate_email(text, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise AccountDataError("email", "is not an e-mail address") from exc
    return valid.normalized.lower()


def _clean_name(field: str, value: str | None, required: bool) -> str | None:
    value = unicodedata.normalize("NFC", (value or "").strip())
    if not value:
        if required:
            raise AccountDataError(field, "required")
        return None
    if not _NAME_VALID.match(value):
        raise AccountDataError(field, "contains characters that are not allowed")
    return value


def create_account(
    db: Session,
    *,
    login: str,
    phone: str,
    surname: str,
    given_name: str,
    middle_name: str | None,
    email: str | None,
    snils: str | None,
    locale: str,
    now: int,
    settings: PasswordsSettings,
    sms_countries: tuple[str, ...] | None = None,
) -> tuple[Account, str]:
    """Create an account with a fresh temporary password; return both, the password in clear (shown once).
    ``sms_countries`` ([sms] allowed_country_codes): the phone must be one the SMS sender can reach."""
    normal_login = normalize_login(login)
    if not normal_login:
        raise AccountDataError("login", "is not a patent application number")
    if db.scalar(select(Account.id).filter_by(login=normal_login)):
        raise AccountDataError("login", "is already taken")
    normal_phone = normalize_phone(phone)
    if not normal_phone:
        raise AccountDataError("phone", "is not a valid phone number")
    check_sms_reachable(normal_phone, sms_countries)
    normal_snils = None
    if snils:
        normal_snils = normalize_snils(snils)
        if not normal_snils:
            raise AccountDataError("snils", "has a bad checksum or format")
    normal_email = _normalize_email(email)
    temporary = passwords.generate_temporary_password()
    account = Account(
        login=normal_login,
        phone=normal_phone,
        surname=_clean_name("surname", surname, True),
        given_name=_clean_name("given_name", given_name, True),
        middle_name=_clean_name("middle_name", middle_name, False),
        email=normal_email,
        snils=normal_snils,
        locale=locale,
        password_hash=passwords.hash_password(temporary, settings.bcrypt_rounds),
        password_changed_at=now,
        created_at=now,
        updated_at=now,
    )
    db.add(account)
    db.flush()
    password_flow.require(db, account, reason=ISSUED, now=now, expires_at=now + settings.temporary_ttl)
    return account, temporary


def set_temporary_password(
    db: Session, account: Account, temporary: str, *, now: int, settings: PasswordsSettings
) -> None:
    """Replace the password with a temporary one that must be changed at the next sign-in."""
    account.password_hash = passwords.hash_password(temporary, settings.bcrypt_rounds)
    account.password_changed_at = now
    account.updated_at = now
    # An operator's re-issue is the way back in after a lock: the failures are forgotten.
    credentials.clear_failures(account)
    password_flow.require(db, account, reason=ISSUED, now=now, expires_at=now + settings.temporary_ttl)


class PendingPassword(Protocol):
    """A second password an account may hold for a while beside its own: the SMS reset's
    (``selfservice.reset`` is one)."""

    def redeem(self, db: Session, account: Account, password: str, now: int) -> int | None:
        """If ``password`` is the pending one, make it the account's and return until when it works as a
        temporary password; else None."""

    def void(self, db: Session, account: Account, *, now: int) -> None:
        """The owner proved the current password: the pending one is void."""

    def waiting(self) -> ColumnElement[bool]:
        """Whether an ``Account`` has something ``void`` would void: a condition read with the account,
        so that a sign-in without one spends no statement on it (issue 12)."""


def end_read(db: Session) -> None:
    """End the transaction of what was only read so far, keeping the rows read loaded (no re-read).

    Before a bcrypt check (~250 ms): a transaction left open across it holds a pooled connection,
    ``idle in transaction``, for every sign-in in progress (issue 12). What follows (the failure count,
    the session, the audit event) is written in a transaction of its own."""
    if db.new or db.dirty or db.deleted:
        raise RuntimeError("end_read with unsaved changes: they would be committed early")
    with keeping_loaded(db):
        db.commit()


def authenticate(
    db: Session,
    login: str,
    password: str,
    *,
    now: int,
    settings: PasswordsSettings,
    lockout: LoginSettings,
    pending: PendingPassword | None = None,
    on_cpu: Callable[[float], None] | None = None,
) -> Account:
    """Return the account for a correct login and password, else raise InvalidCredentialsError.

    Every path runs exactly one bcrypt check, so an unknown login, a wrong password, a blocked or a
    locked account cost the same time. With ``pending``, a wrong password is tried as the pending one
    (a keyed digest, no second bcrypt: ``selfservice.reset``). A lock ([login] max_failures) refuses the
    current password but not a pending SMS reset's: the owner's way back in must not be what an
    attacker can shut (issue 10); redeeming it forgets the failures. ``on_cpu`` gets the CPU seconds of
    the bcrypt check (``passwords.verify_password``).
    """
    normal = normalize_login(login)
    account, waiting = None, False
    if normal:
        columns = (Account, pending.waiting()) if pending is not None else (Account, true())
        found = db.execute(select(*columns).where(Account.login == normal)).first()
        if found is not None:
            account, waiting = found
    end_read(db)
    password_ok = credentials.verify_password(account, password, settings.bcrypt_rounds, on_cpu=on_cpu)
    if account is None:
        raise InvalidCredentialsError()
    locked = credentials.is_locked(account, now)
    redeemed = False
    if pending is not None and not password_ok:
        temporary_until = pending.redeem(db, account, password, now)
        if temporary_until is not None:
            # Seed step 4, then step 3: the SMS password signs in once and must be changed at once.
            account.password_hash = passwords.hash_password(password, settings.bcrypt_rounds)
            password_flow.require(db, account, reason=RESET, now=now, expires_at=temporary_until)
            password_ok = redeemed = True
    if locked and not redeemed:
        raise InvalidCredentialsError("locked", subject_id=account.id, result="locked")
    if pending is not None and password_ok and not redeemed and waiting:
        # The owner remembered the password: a reset someone else asked for is void. One asked for after
        # the account was read above is as one asked for after this sign-in: it stays.
        pending.void(db, account, now=now)
    if not password_ok:
        credentials.count_failure(account, now, lockout)
        locked_now = credentials.is_locked(account, now)
        raise InvalidCredentialsError(
            "locked" if locked_now else "wrong",
            subject_id=account.id,
            result="wrong_password",
            locked_now=locked_now,
        )
    if not account.is_active:
        raise InvalidCredentialsError(subject_id=account.id, result="inactive")
    if password_flow.temporary_expired(account, now):
        raise InvalidCredentialsError(subject_id=account.id, result="expired")
    credentials.signed_in(account, password, settings.bcrypt_rounds)
    return account
