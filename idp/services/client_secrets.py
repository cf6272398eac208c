"""The sealed copy of a client secret, for ``client_secret_jwt`` only (OIDC Core §9): that method signs
with the secret as an HMAC key, so a digest cannot verify it. Every other client's secret is kept as a
digest only. AES-256-GCM, under a key derived from [server] secret_key with a label of its own; changing
that key makes sealed secrets unreadable, and such clients need a new secret (``idp clients secret``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_LABEL = b"idp/client/secret-jwt/v1"


def sealing_key(server_secret: str) -> bytes:
    return hmac.new(server_secret.encode("utf-8"), _LABEL, hashlib.sha256).digest()


def seal(secret: str, key: bytes) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, secret.encode("ascii"), _LABEL)
    return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unseal(sealed: str | None, key: bytes) -> str | None:
    """The secret, or None when there is none or it was sealed under another key."""
    if not sealed:
        return None
    try:
        raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
        return AESGCM(key).decrypt(raw[:12], raw[12:], _LABEL).decode("ascii")
    except (InvalidTag, ValueError):
        return None
