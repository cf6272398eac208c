"""Staff of the Migration Center: accounts with a role, a password and a mandatory TOTP second factor
(RFC 6238), and their own server-side sessions.

* A sign-in takes the username, the password and the current code together and fails with one error
  whatever was wrong, after exactly one bcrypt check, like the migrants' sign-in.
* A code is accepted for the current 30-second step or one step either side (RFC 6238 §5.2 allows for
  clock drift and typing time), and only for a step later than the last one accepted: a code seen over
  a shoulder cannot be used again (RFC 6238 §5.2, "MUST NOT accept the second attempt").
* The shared secret is stored sealed with AES-256-GCM under a key from the configuration, so a copy of
  the database alone does not yield codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass

import pyotp
import qrcode
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from qrcode.image.pil import PilImage
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..errors import IdpError
from ..errors import InvalidCredentialsError
from ..models import StaffSession
from ..models import StaffUser
from ..models.staff import ROLE_ADMIN
from ..models.staff import ROLES
from . import audit
from . import passwords
from .password_change import is_common
from .tokens import digest
from .tokens import new_secret

TOTP_INTERVAL = 30
TOTP_DIGITS = 6
# Steps either side of now that a code may belong to (RFC 6238 §5.2, §6).
TOTP_WINDOW = 1
# Staff can reach every migrant's account, so their passwords are held to more than a migrant's minimum.
MIN_STAFF_PASSWORD = 12
GENERATED_PASSWORD_BYTES = 12
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_NAME = re.compile(r"^[^\x00-\x1f\x7f<>]{1,200}$")
_SEAL_INFO = b"idp/staff/totp-secret/v1"
# Writing last_seen_at on every request would make each page view a write; a minute is harmless.
TOUCH_INTERVAL = 60


class StaffDataError(IdpError):
    """Data for a new or changed staff member does not validate; ``field`` names the culprit."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class StaffPasswordError(IdpError):
    """A new staff password is refused; ``reason`` is a key into the view's messages."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StaffSettings:
    bcrypt_rounds: int
    max_failures: int
    lockout: int
    idle_timeout: int
    absolute_timeout: int
    # 32 bytes that seal TOTP secrets (see sealing_key).
    sealing_key: bytes

    @classmethod
    def from_config(cls, cfg) -> StaffSettings:
        """From the flat configuration (``app.config``); the [login] lock applies to staff too."""
        return cls(
            bcrypt_rounds=cfg["PASSWORDS_BCRYPT_ROUNDS"],
            max_failures=cfg["LOGIN_MAX_FAILURES"],
            lockout=cfg["LOGIN_LOCKOUT"],
            idle_timeout=cfg["STAFF_IDLE_TIMEOUT"],
            absolute_timeout=cfg["STAFF_ABSOLUTE_TIMEOUT"],
            sealing_key=sealing_key(cfg["STAFF_TOTP_KEY"], cfg["SECRET_KEY"]),
        )


@dataclass(frozen=True)
class Enrolment:
    """What a new staff member is given once: a password to change at first sign-in and a TOTP secret."""

    user: StaffUser
    password: str
    totp_secret: str


def sealing_key(configured: str, server_secret: str) -> bytes:
    """The AES-256 key for TOTP secrets: HMAC-SHA-256 of a fixed label under [staff] totp_key, or under
    [server] secret_key when that is empty."""
    material = (configured or server_secret).encode("utf-8")
    return hmac.new(material, _SEAL_INFO, hashlib.sha256).digest()


def seal(secret: str, key: bytes) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, secret.encode("ascii"), _SEAL_INFO)
    return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unseal(sealed: str, key: bytes) -> str | None:
    """The secret, or None if it was sealed under another key (the key changed: enrol again)."""
    try:
        raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
        return AESGCM(key).decrypt(raw[:12], raw[12:], _SEAL_INFO).decode("ascii")
    except (InvalidTag, ValueError):
        return None


def provisioning_uri(user: StaffUser, secret: str, issuer: str) -> str:
    """The otpauth:// URI that authenticator apps read from a QR code (Google Authenticator key format)."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL).provisioning_uri(
        name=user.username, issuer_name=issuer
    )


def qr_png(uri: str) -> bytes:
    """The provisioning URI as a PNG QR code, for a page or a file."""
    image = qrcode.make(uri, image_factory=PilImage, border=2, box_size=6)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()


def qr_text(uri: str) -> str:
    """The provisioning URI as a QR code of block characters, for a terminal."""
    code = qrcode.QRCode(border=2)
    code.add_data(uri)
    code.make(fit=True)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue()


def matching_step(secret: str, code: str, now: int) -> int | None:
    """The RFC 6238 time step within the window whose code is ``code``, or None."""
    # NFKC: digits typed through an input method arrive as full-width "１２３".
    code = unicodedata.normalize("NFKC", code or "").replace(" ", "")
    if not re.fullmatch(r"[0-9]{%d}" % TOTP_DIGITS, code):
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL)
    current = now // TOTP_INTERVAL
    found = None
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        # Every candidate is compared, in constant time, so timing does not tell which step matched.
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


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


def create_staff(
    db: Session, ctx: audit.Context, *, username: str, full_name: str, role: str, settings: StaffSettings
) -> Enrolment:
    """A new staff member with a generated password (to be changed at the first sign-in) and TOTP secret."""
    now = ctx.now
    username = _clean_username(username)
    if role not in ROLES:
        raise StaffDataError("role", "unknown")
    if db.scalar(select(StaffUser.id).filter_by(username=username)):
        raise StaffDataError("username", "taken")
    password = _generated_password()
    secret = pyotp.random_base32()
    user = StaffUser(
        username=username,
        full_name=_clean_full_name(full_name),
        role=role,
        password_hash=passwords.hash_password(password, settings.bcrypt_rounds),
        must_change_password=True,
        totp_secret_encrypted=seal(secret, settings.sealing_key),
        totp_last_step=None,
        enabled=True,
        created_at=now,
        updated_at=now,
    )
    db.add(user)
    db.flush()
    audit.record(db, ctx, "staff.created", details={"username": username, "role": role})
    return Enrolment(user=user, password=password, totp_secret=secret)


def reset_credentials(db: Session, ctx: audit.Context, user: StaffUser, *, settings: StaffSettings) -> Enrolment:
    """A new password and a new TOTP secret (lost phone, forgotten password, changed totp_key); ends the
    member's sessions, since whoever held the old credentials may be signed in."""
    now = ctx.now
    password = _generated_password()
    secret = pyotp.random_base32()
    user.password_hash = passwords.hash_password(password, settings.bcrypt_rounds)
    user.must_change_password = True
    user.totp_secret_encrypted = seal(secret, settings.sealing_key)
    user.totp_last_step = None
    user.failed_logins = 0
    user.locked_until = 0
    user.updated_at = now
    end_staff_sessions(db, user.id, now=now)
    audit.record(db, ctx, "staff.credentials_reset", details={"username": user.username})
    return Enrolment(user=user, password=password, totp_secret=secret)


def authenticate(
    db: Session, username: str, password: str, code: str, *, now: int, settings: StaffSettings
) -> StaffUser:
    """The staff member for a right username, password and unused TOTP code; else InvalidCredentialsError.

    Every path runs exactly one bcrypt check, and every failure is the same error."""
    try:
        normal = _clean_username(username)
    except StaffDataError:
        normal = None
    user = db.scalar(select(StaffUser).filter_by(username=normal)) if normal else None
    stored_hash = user.password_hash if user else passwords.dummy_hash(settings.bcrypt_rounds)
    password_ok = passwords.verify_password(password or "", stored_hash)
    if user is None or not user.enabled or user.locked_until > now:
        raise InvalidCredentialsError()
    secret = unseal(user.totp_secret_encrypted, settings.sealing_key)
    step = matching_step(secret, code, now) if secret else None
    if not password_ok or step is None:
        _count_failure(user, now, settings)
        raise InvalidCredentialsError()
    # One statement claims the step, so two sign-ins racing with one code cannot both pass.
    claimed = db.execute(
        update(StaffUser)
        .where(StaffUser.id == user.id, or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        _count_failure(user, now, settings)
        raise InvalidCredentialsError()
    db.refresh(user)
    user.failed_logins = 0
    user.locked_until = 0
    user.last_sign_in_at = now
    if passwords.needs_rehash(user.password_hash, settings.bcrypt_rounds):
        user.password_hash = passwords.hash_password(password, settings.bcrypt_rounds)
    return user


def _count_failure(user: StaffUser, now: int, settings: StaffSettings) -> None:
    user.failed_logins += 1
    if user.failed_logins >= settings.max_failures:
        # A guessed password still needs a code; the lock keeps either from being guessed online.
        user.locked_until = now + settings.lockout
        user.failed_logins = 0


def check_new_password(user: StaffUser, old: str, new: str, repeat: str) -> None:
    """Refuse a change unless ``old`` is right and ``new`` is long, uncommon and not the username."""
    if not passwords.verify_password(old or "", user.password_hash):
        raise StaffPasswordError("wrong_old")
    if new != repeat:
        raise StaffPasswordError("mismatch")
    normal = unicodedata.normalize("NFKC", new or "")
    if normal == unicodedata.normalize("NFKC", old):
        raise StaffPasswordError("same_as_old")
    if len(normal) < MIN_STAFF_PASSWORD:
        raise StaffPasswordError("too_short")
    if len(normal) > 256:
        raise StaffPasswordError("too_long")
    if is_common(new) or normal.casefold() == user.username:
        raise StaffPasswordError("common")


def change_password(
    db: Session, user: StaffUser, new: str, *, now: int, settings: StaffSettings, keep_id: int
) -> None:
    """Set the member's own password; their other sessions end."""
    user.password_hash = passwords.hash_password(new, settings.bcrypt_rounds)
    user.must_change_password = False
    user.updated_at = now
    end_staff_sessions(db, user.id, now=now, keep_id=keep_id)


def set_role(db: Session, ctx: audit.Context, user: StaffUser, role: str, *, reason: str | None = None) -> None:
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
        db, ctx, "staff.role_changed", reason=reason, details={"username": user.username, "old": old, "new": role}
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
    others = select(StaffUser.id).where(StaffUser.role == ROLE_ADMIN, StaffUser.enabled, StaffUser.id != user.id)
    if db.scalar(others.limit(1)) is None:
        raise StaffDataError("role", "last_admin")


# -- sessions ------------------------------------------------------------------------------------------


def start_session(
    db: Session, user: StaffUser, *, now: int, settings: StaffSettings, ip: str | None, user_agent: str | None
) -> tuple[StaffSession, str]:
    """Open a session for a member who has just signed in; return it and the cookie token."""
    token = new_secret()
    row = StaffSession(
        staff_id=user.id,
        token_hash=digest(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + settings.absolute_timeout,
        ip=(ip or "")[:45] or None,
        user_agent=(user_agent or "")[:200] or None,
    )
    db.add(row)
    db.flush()
    return row, token


def find_session(db: Session, token: str | None, *, now: int, settings: StaffSettings) -> StaffSession | None:
    """The live session for a cookie token, or None if unknown, ended, idle too long, expired, or its
    member is disabled."""
    if not token or not isinstance(token, str) or len(token) > 128:
        return None
    row = db.scalar(select(StaffSession).filter_by(token_hash=digest(token)))
    if row is None or row.ended_at is not None:
        return None
    if row.expires_at <= now or row.last_seen_at + settings.idle_timeout <= now or not row.staff.enabled:
        row.ended_at = now
        return None
    if now - row.last_seen_at >= TOUCH_INTERVAL:
        row.last_seen_at = now
    return row


def end_session(row: StaffSession, *, now: int) -> None:
    if row.ended_at is None:
        row.ended_at = now


def end_staff_sessions(db: Session, staff_id: int, *, now: int, keep_id: int | None = None) -> None:
    db.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.ended_at.is_(None), StaffSession.id != (keep_id or 0))
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
