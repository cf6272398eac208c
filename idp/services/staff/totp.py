"""The staff's second factor: time-based one-time passwords (RFC 6238).

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
import unicodedata

import pyotp
import qrcode
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from qrcode.image.pil import PilImage
from sqlalchemy import or_
from sqlalchemy import update
from sqlalchemy.orm import Session

from ...config import Settings
from ...models import StaffUser
from ...models.base import affected_rows

TOTP_INTERVAL = 30
TOTP_DIGITS = 6
# Steps either side of now that a code may belong to (RFC 6238 §5.2, §6).
TOTP_WINDOW = 1
_SEAL_INFO = b"idp/staff/totp-secret/v1"


def new_secret() -> str:
    return pyotp.random_base32()


def sealing_key(configured: str, server_secret: str) -> bytes:
    """The AES-256 key for TOTP secrets: HMAC-SHA-256 of a fixed label under [staff] totp_key, or under
    [server] secret_key when that is empty."""
    material = (configured or server_secret).encode("utf-8")
    return hmac.new(material, _SEAL_INFO, hashlib.sha256).digest()


def settings_key(settings: Settings) -> bytes:
    return sealing_key(settings.staff.totp_key, settings.server.secret_key)


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
    if not re.fullmatch(rf"[0-9]{{{TOTP_DIGITS}}}", code):
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL)
    current = now // TOTP_INTERVAL
    found = None
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        # Every candidate is compared, in constant time, so timing does not tell which step matched.
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def claim_step(db: Session, user: StaffUser, step: int) -> bool:
    """Record ``step`` as the last one used, unless it or a later one was: one statement, so two
    sign-ins racing with one code cannot both pass."""
    claimed = affected_rows(
        db,
        update(StaffUser)
        .where(
            StaffUser.id == user.id, or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step)
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False),
    )
    if claimed:
        db.refresh(user)
    return bool(claimed)


def check(db: Session, user: StaffUser, code: str, *, now: int, settings: Settings) -> bool:
    """Whether ``code`` is the member's current code, not used before; a good one is used up."""
    secret = unseal(user.totp_secret_encrypted, settings_key(settings))
    step = matching_step(secret, code, now) if secret else None
    return step is not None and claim_step(db, user, step)
