"""Staff members: adding them (a generated password to change at the first sign-in and a TOTP secret,
shown once), their role and state, new credentials, signing in and changing a password."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...config import Settings
from ...errors import InvalidCredentialsError
from ...errors import StaffDataError
from ...models import StaffUser
from ...models.password import ENROLLED
from ...models.staff import ROLE_ADMIN
from ...models.staff import ROLES
from .. import audit
from .. import credentials
from .. import passwords
from ..selfservice import password as password_flow
from . import totp
from .sessions import end_staff_sessions

GENERATED_PASSWORD_BYTES = 12
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_NAME = re.compile(r"^[^\x00-\x1f\x7f<>]{1,200}$")


@dataclass(frozen=True)
class Enrolment:
    """What a new staff member is given once: a password to change at first sign-in and a TOTP secret."""

    user: StaffUser
    password: str
    totp_secret: str


def _clean_username(raw: str) -> str:
    username = unicodedata.normalize("NFKC", raw or "").strip().lower()
    if not _USERNAME.match(username):
        raise StaffDataError("username", "format")
    return username


def _clean_full_name(raw: str) -> str:
    name = unicodedata.normalize("NFC", (raw or "").strip())
    if not _NAME.match(name):
        raise StaffDataError("full_name", "format")
    return name


def _generated_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def normalize_username(username: str) -> str:
    """The username as counted by the sign-in escalation: its normal form, or what was typed."""
    try:
        return _clean_username(username)
    except StaffDataError:
        return (username or "").strip().casefold()


def find_member(db: Session, username: str) -> StaffUser | None:
    try:
        normal = _clean_username(username)
    except StaffDataError:
        return None
    return db.scalar(select(StaffUser).filter_by(username=normal))


def create_staff(
    db: Session, ctx: audit.Context, *, username: str, full_name: str, role: str, settings: Settings
) -> Enrolment:
    """A new staff member with a generated password (to be changed at the first sign-in) and TOTP secret."""
    now = ctx.now
    username = _clean_username(username)
    if role not in ROLES:
        raise StaffDataError("role", "unknown")
    if db.scalar(select(StaffUser.id).filter_by(username=username)):
        raise StaffDataError("username", "taken")
    password = _generated_password()
    secret = totp.new_secret()
    user = StaffUser(
        username=username,
        full_name=_clean_full_name(full_name),
        role=role,
        password_hash=passwords.hash_password(password, settings.passwords.bcrypt_rounds),
        totp_secret_encrypted=totp.seal(secret, totp.settings_key(settings)),
        totp_last_step=None,
        enabled=True,
        created_at=now,
        updated_at=now,
    )
    db.add(user)
    db.flush()
    password_flow.require(db, user, reason=ENROLLED, now=now, expires_at=None)
    audit.record(db, ctx, "staff.created", details={"username": username, "role": role})
    return Enrolment(user=user, password=password, totp_secret=secret)


def reset_credentials(db: Session, ctx: audit.Context, user: StaffUser, *, settings: Settings) -> Enrolment:
    """A new password and a new TOTP secret (lost phone, forgotten password, changed totp_key); ends the
    member's sessions, since whoever held the old credentials may be signed in."""
    now = ctx.now
    password = _generated_password()
    secret = totp.new_secret()
    user.password_hash = passwords.hash_password(password, settings.passwords.bcrypt_rounds)
    password_flow.require(db, user, reason=ENROLLED, now=now, expires_at=None)
    user.totp_secret_encrypted = totp.seal(secret, totp.settings_key(settings))
    user.totp_last_step = None
    credentials.clear_failures(user)
    user.updated_at = now
    end_staff_sessions(db, user.id, now=now)
    audit.record(db, ctx, "staff.credentials_reset", details={"username": user.username})
    return Enrolment(user=user, password=password, totp_secret=secret)


def authenticate(
    db: Session,
    username: str,
    password: str,
    code: str,
    *,
    now: int,
    settings: Settings,
    on_cpu: Callable[[float], None] | None = None,
) -> StaffUser:
    """The staff member for a right username, password and unused TOTP code; else InvalidCredentialsError.

    Every path runs exactly one bcrypt check, and every failure is the same error. A guessed password
    still needs a code; a wrong code after the right password counts as ``[login] max_failures /
    totp_failures`` failures, so only ``totp_failures`` codes can be tried before the lock; wrong
    passwords are slowed by ``signin_throttle`` (captcha, waits) in the view. ``on_cpu`` gets the CPU
    seconds of the bcrypt check (``passwords.verify_password``)."""
    user = find_member(db, username)
    password_ok = credentials.verify_password(user, password, settings.passwords.bcrypt_rounds, on_cpu=on_cpu)
    if user is None:
        raise InvalidCredentialsError()
    if not user.enabled:
        raise InvalidCredentialsError(subject_id=user.id, result="inactive")
    if credentials.is_locked(user, now):
        raise InvalidCredentialsError("locked", subject_id=user.id, result="locked")
    if not password_ok:
        credentials.count_failure(user, now, settings.login)
        locked_now = credentials.is_locked(user, now)
        raise InvalidCredentialsError(subject_id=user.id, result="wrong_password", locked_now=locked_now)
    if not totp.check(db, user, code, now=now, settings=settings):
        # The password was right: only [login] totp_failures codes may be guessed before the lock.
        weight = credentials.code_failure_weight(settings.login)
        credentials.count_failure(user, now, settings.login, weight=weight)
        locked_now = credentials.is_locked(user, now)
        raise InvalidCredentialsError("code", subject_id=user.id, result="wrong_code", locked_now=locked_now)
    credentials.signed_in(user, password, settings.passwords.bcrypt_rounds)
    user.last_sign_in_at = now
    return user


def password_min_length(settings: Settings) -> int:
    """A staff password: at least 12 characters, and never shorter than a migrant's."""
    return max(credentials.STAFF_MIN_PASSWORD_LENGTH, settings.passwords.min_length)


def check_new_password(user: StaffUser, old: str, new: str, repeat: str, *, settings: Settings) -> None:
    """Refuse a change unless ``old`` is right and ``new`` passes the staff policy."""
    password_flow.check_staff(user, old, new, repeat, min_length=password_min_length(settings))


def change_password(
    db: Session, user: StaffUser, new: str, *, now: int, settings: Settings, keep_id: int
) -> None:
    """Set the member's own password (closing a forced change); their other sessions end."""
    password_flow.complete_staff(user, new, now=now, settings=settings.passwords)
    end_staff_sessions(db, user.id, now=now, keep_id=keep_id)


def set_role(
    db: Session, ctx: audit.Context, user: StaffUser, role: str, *, reason: str | None = None
) -> None:
    if role not in ROLES:
        raise StaffDataError("role", "unknown")
    if role == user.role:
        return
    if user.role == ROLE_ADMIN:
        _keep_an_admin(db, user)
    old = user.role
    user.role = role
    user.updated_at = ctx.now
    # The role is read on every request; ending the sessions makes the member sign in into the new role.
    end_staff_sessions(db, user.id, now=ctx.now)
    audit.record(
        db,
        ctx,
        "staff.role_changed",
        reason=reason,
        details={"username": user.username, "old": old, "new": role},
    )


def set_enabled(
    db: Session, ctx: audit.Context, user: StaffUser, enabled: bool, *, reason: str | None = None
) -> None:
    if not enabled and user.role == ROLE_ADMIN:
        _keep_an_admin(db, user)
    user.enabled = enabled
    user.updated_at = ctx.now
    if not enabled:
        end_staff_sessions(db, user.id, now=ctx.now)
    event = "staff.enabled" if enabled else "staff.disabled"
    audit.record(db, ctx, event, reason=reason, details={"username": user.username})


def _keep_an_admin(db: Session, user: StaffUser) -> None:
    """Refuse to demote or disable the last enabled admin: nobody could manage staff afterwards."""
    others = select(StaffUser.id).where(
        StaffUser.role == ROLE_ADMIN, StaffUser.enabled, StaffUser.id != user.id
    )
    if db.scalar(others.limit(1)) is None:
        raise StaffDataError("role", "last_admin")


def all_members(db: Session) -> list[StaffUser]:
    return list(db.scalars(select(StaffUser).order_by(StaffUser.username)))
