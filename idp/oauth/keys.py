"""The signing keys as authlib and joserfc use them: which key signs, and the JWKS that verifies.

Keys are managed in ``services.keys`` (create, rotate, retire); this is the per-process cache of the
published ones. Loading is a query plus, per RSA key, ~40 ms of private-key validation, so a short
cache (``[keys] cache_ttl``) keeps both off every token and JWKS request. Each process reloads on its
own: a rotation made anywhere (``idp keys rotate`` on any host) is published by every process within
``cache_ttl``, and ``publish_ahead`` must cover that plus ``jwks_max_age`` for the new key to be in every
relying party's JWKS before it signs.

A change of the key set — ``idp keys rotate --now`` after a compromise, a retirement, a rotation — is
seen sooner: every request compares a version stamp of the ``signing_keys`` table (one aggregate query
of a table of a few rows: its count, its newest id and the sum of its expiry times) with the one the
cache was loaded at, and reloads when it differs. So a compromised key stops signing, and leaves the
JWKS, in every worker on every host at its next request (issue 10: it signed for up to 30 s).
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass
from dataclasses import field

from flask import g
from flask import has_app_context
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey
from joserfc.jwk import KeySet
from joserfc.jwk import OKPKey
from joserfc.jwk import RSAKey

from ..extensions import db
from ..models import SigningKey
from ..runtime import Clock
from ..runtime import current
from ..services import keys as key_service

ALGORITHMS = key_service.ALGORITHMS
SigningJWK = RSAKey | ECKey | OKPKey

# why: joserfc warns on every EdDSA signature and verification that RFC 9864 deprecates the name in favour
# of "Ed25519". Our EdDSA keys are Ed25519 only, so the name is unambiguous, and it is the one relying
# parties' libraries accept today; the warning would only fill the log.
warnings.filterwarnings("ignore", message="EdDSA is deprecated via RFC 9864", category=SecurityWarning)

_KEY_TYPES: dict[str, type[SigningJWK]] = {"RS256": RSAKey, "ES256": ECKey, "EdDSA": OKPKey}


@dataclass(frozen=True)
class Document:
    """A JSON document served as it is (discovery, JWKS): its bytes and their strong ETag, built once
    and not per request (issue 12)."""

    body: bytes
    etag: str  # without the quotes (RFC 9110 §8.8.3's opaque-tag is quoted on the wire)


def document(data: dict) -> Document:
    body = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return Document(body, hashlib.sha256(body).hexdigest()[:32])


def _import(row: SigningKey) -> SigningJWK:
    return _KEY_TYPES[row.alg].import_key(json.loads(row.private_jwk))


@dataclass
class KeyCache:
    """The published keys of one app (an adapter ``create_app`` builds)."""

    clock: Clock
    # [keys] cache_ttl, seconds.
    ttl: int = 30
    _loaded_at: float = 0.0
    _stamp: tuple | None = None
    _rows: list[tuple[str, int, SigningJWK]] = field(default_factory=list)
    # The public JWKS of ``_rows`` as served, built when the rows change.
    _jwks: Document | None = None
    # Imported keys by (row id, digest of its private JWK): a reload that finds the same rows imports
    # nothing again (an RSA import validates the private key, ~40 ms: every ``ttl`` seconds it stalled
    # the worker, the JWKS p99 of issue 12).
    _imported: dict[tuple[int, str], SigningJWK] = field(default_factory=dict)

    def _keys(self) -> list[tuple[str, int, SigningJWK]]:
        stamp = _request_stamp()
        if time.monotonic() - self._loaded_at > self.ttl or not self._rows or stamp != self._stamp:
            rows = key_service.published(db.session, now=self.clock())
            imported: dict[tuple[int, str], SigningJWK] = {}
            loaded = []
            for row in rows:
                ident = (row.id, hashlib.sha256(row.private_jwk.encode()).hexdigest())
                key = imported[ident] = self._imported.get(ident) or _import(row)
                loaded.append((row.alg, row.activates_at, key))
            if [(alg, at, id(key)) for alg, at, key in loaded] != [(a, t, id(k)) for a, t, k in self._rows]:
                self._jwks = None  # another set of keys: the JWKS and its ETag change
            self._rows, self._imported = loaded, imported
            self._loaded_at = time.monotonic()
            self._stamp = stamp
        return self._rows

    def forget(self) -> None:
        """Drop the cache (after a rotation or retirement in this process)."""
        self._rows = []
        self._jwks = None
        self._imported = {}

    def jwks_document(self) -> Document:
        """The JWKS as served: bytes and ETag, rebuilt only when the keys are reloaded."""
        self._keys()
        if self._jwks is None:
            self._jwks = document(self.public_jwks())
        return self._jwks

    def signing_key(self, alg: str) -> SigningJWK:
        """The newest active key for ``alg`` (RS256, ES256 or EdDSA)."""
        now = self.clock()
        usable = [
            key for key_alg, activates_at, key in self._keys() if key_alg == alg and activates_at <= now
        ]
        if not usable:
            raise RuntimeError(f"no active {alg} signing key: run `idp keys ensure`")
        return usable[-1]

    def public_jwks(self) -> dict:
        return KeySet([key for _, _, key in self._keys()]).as_dict(private=False)

    def verification_keyset(self) -> KeySet:
        return KeySet.import_key_set(self.public_jwks())


def _request_stamp() -> tuple:
    """The key set's version stamp, read once per request (``g``), so a request that signs and serves
    keys several times asks once."""
    if has_app_context() and "idp_key_stamp" in g:
        return g.idp_key_stamp
    stamp = key_service.version_stamp(db.session)
    if has_app_context():
        g.idp_key_stamp = stamp
    return stamp


def read_stamp_alone() -> None:
    """Read this request's stamp (``_request_stamp``) on a connection of its own in autocommit: one round
    trip instead of BEGIN, SELECT and the session's ROLLBACK, for a request that needs nothing else from
    the database (the JWKS, idp.oauth.documents). Half the CPU of the session's way."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        g.idp_key_stamp = key_service.version_stamp(connection)


def cache() -> KeyCache:
    """This app's key cache."""
    return current().keys
