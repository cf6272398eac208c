"""Password hashing (bcrypt over an HMAC-SHA-256 pre-hash) and temporary passwords.

bcrypt reads at most 72 bytes, and bcrypt 5 refuses longer input. A 64-character Cyrillic password is
128 bytes of UTF-8, so the password is first reduced with HMAC-SHA-256 and base64-encoded (44 bytes).
The HMAC key is a fixed domain-separation label, which keeps these digests distinct from plain SHA-256
digests of the same password found in other breaches ("password shucking").
"""

import base64
import functools
import hashlib
import hmac
import re
import secrets
import time
import unicodedata
from collections.abc import Callable

import bcrypt

_PREHASH_KEY = b"idp/password/bcrypt-prehash/v1"
_BCRYPT_HASH = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")

# No 0/O/o, 1/l/I: a temporary password is read from paper or an SMS and typed by hand.
TEMPORARY_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz"
TEMPORARY_LENGTH = 10


def _prehash(password: str) -> bytes:
    # NIST SP 800-63B §5.1.1.2: normalise Unicode so the same password typed on another keyboard matches.
    normalised = unicodedata.normalize("NFKC", password)
    mac = hmac.new(_PREHASH_KEY, normalised.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.b64encode(mac)


def hash_password(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def verify_password(
    password: str, password_hash: str, *, on_cpu: Callable[[float], None] | None = None
) -> bool:
    """Constant-time check; a malformed stored hash is a failed check, not an exception. ``on_cpu``
    gets the CPU seconds the check took in this thread (the sign-in's metric)."""
    started = time.thread_time()
    try:
        return bcrypt.checkpw(_prehash(password), password_hash.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False
    finally:
        if on_cpu is not None:
            on_cpu(time.thread_time() - started)


def needs_rehash(password_hash: str, rounds: int) -> bool:
    match = _BCRYPT_HASH.match(password_hash)
    return not match or int(match.group(1)) != rounds


@functools.lru_cache(maxsize=4)
def dummy_hash(rounds: int) -> str:
    """A hash to check against when the login is unknown, so that case costs what a wrong password costs."""
    return hash_password(secrets.token_urlsafe(16), rounds)


def generate_temporary_password(length: int = TEMPORARY_LENGTH) -> str:
    return "".join(secrets.choice(TEMPORARY_ALPHABET) for _ in range(length))
