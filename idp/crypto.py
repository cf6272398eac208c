"""Random secrets and their at-rest digests: the lowest layer, used by models and services alike.

May import: the standard library only.
"""

import hashlib
import secrets


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random string with ``nbytes`` of entropy (256 bits by default)."""
    return secrets.token_urlsafe(nbytes)


def digest(secret: str) -> str:
    """SHA-256 hex digest of a high-entropy secret (codes, tokens, client secrets, session tokens).

    A fast hash is right here: the inputs have >=128 bits of entropy, so there is nothing to brute
    force, and every token request pays for this.
    """
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
