"""The signing keys as authlib and joserfc use them: which key signs, and the JWKS that verifies.

Keys are managed in ``services.keys`` (create, rotate, retire); this is the per-process cache of the
published ones. Loading is a query plus, per RSA key, ~40 ms of private-key validation, so a short
cache (``[keys] cache_ttl``) keeps both off every token and JWKS request. Each process reloads on its
own: a rotation made anywhere (``idp keys rotate`` on any host) is published by every process within
``cache_ttl``, and ``publish_ahead`` must cover that plus ``jwks_max_age`` for the new key to be in every
relying party's JWKS before it signs.

A change of the key set — ``idp keys rotate --now`` after a compromise, a retirement, a rotation — is
seen sooner. On PostgreSQL every such command notifies (``services.keys``), and this process's listener
(``oauth.key_changes``) bumps a version the cache compares with the one it loaded at: the change is in
effect within milliseconds of its commit, with no query per request (issue 12). While the listener is
not listening, and always on SQLite, every request compares a version stamp of the ``signing_keys``
table (one aggregate query of a table of a few rows: its count, its newest id and the sum of its expiry
times) with the one the cache was loaded at, so a compromised key stops signing, and leaves the JWKS,
in every worker on every host at its next request (issue 10: it signed for up to 30 s).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import warnings
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace

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
from .key_changes import KeyListener

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


@dataclass(frozen=True)
class _Loaded:
    """One load of the published keys, swapped in whole so that a request never sees half of two."""

    rows: list[tuple[str, int, SigningJWK]]
    # The key stamp read before the rows (so the rows are at least that new) and the listener's
    # version read before the stamp: a change after either makes this load look behind, never ahead.
    stamp: tuple
    version: int
    at: float
    # Imported keys by (row id, digest of its private JWK): a reload that finds the same rows imports
    # nothing again (an RSA import validates the private key, ~40 ms: every ``ttl`` seconds it stalled
    # the worker, the JWKS p99 of issue 12).
    imported: dict[tuple[int, str], SigningJWK]
    # The public JWKS of ``rows`` as served, built when first asked for.
    jwks: list[Document] = field(default_factory=list)


@dataclass
class KeyCache:
    """The published keys of one app (an adapter ``create_app`` builds)."""

    clock: Clock
    # [keys] cache_ttl, seconds.
    ttl: int = 30
    _loaded: _Loaded | None = None
    # The key change listener of this process (PostgreSQL only), started at the first use after the fork.
    _listener: KeyListener | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def listener(self) -> KeyListener | None:
        """This process's listener, started on first use; None on SQLite (the stamp is read per request)."""
        listener = self._listener
        if listener is not None and listener.pid == os.getpid():
            return listener
        engine = db.engine
        if engine.dialect.name != "postgresql":
            return None
        with self._lock:
            # A listener inherited through a fork has no thread here: each worker starts its own.
            if self._listener is None or self._listener.pid != os.getpid():
                args, kwargs = engine.dialect.create_connect_args(engine.url)
                self._listener = KeyListener(tuple(args), dict(kwargs))
                self._listener.start()
            return self._listener

    @property
    def listening(self) -> bool:
        """Whether this process trusts notifications (no stamp query per request) right now."""
        listener = self._listener
        return listener is not None and listener.pid == os.getpid() and listener.live

    def stop_listening(self, timeout: float = 0.0) -> None:
        if self._listener is not None and self._listener.pid == os.getpid():
            self._listener.stop(timeout)
        self._listener = None

    def _current(self) -> _Loaded:
        listener = self.listener()
        # ``live`` first: the listener bumps ``version`` before it turns ``live`` on, so a live reading
        # comes with the version of the reconnection or later. Then the version, before any query: a
        # notification from here on makes this load look behind.
        live = listener is not None and listener.live
        version = listener.version if listener is not None else 0
        loaded = self._loaded
        stamp: tuple | None = None
        if loaded is not None and time.monotonic() - loaded.at <= self.ttl:
            if live:
                if loaded.version == version:
                    return loaded
                # Notified (or reconnected): one stamp check; a notice of a change already loaded (this
                # process's own rotation, say) costs that query, not a reload.
                stamp = key_service.version_stamp(db.session)
                if stamp == loaded.stamp:
                    self._loaded = replace(loaded, version=version)
                    return self._loaded
            else:
                stamp = _request_stamp()
                if stamp == loaded.stamp:
                    return loaded
        if stamp is None:
            stamp = _request_stamp() if not live else key_service.version_stamp(db.session)
        previous = loaded.imported if loaded is not None else {}
        imported: dict[tuple[int, str], SigningJWK] = {}
        rows = []
        for row in key_service.published(db.session, now=self.clock()):
            ident = (row.id, hashlib.sha256(row.private_jwk.encode()).hexdigest())
            key = imported[ident] = previous.get(ident) or _import(row)
            rows.append((row.alg, row.activates_at, key))
        jwks: list[Document] = []
        if loaded is not None and [(a, t, id(k)) for a, t, k in rows] == [
            (a, t, id(k)) for a, t, k in loaded.rows
        ]:
            jwks = loaded.jwks  # the same keys: the same JWKS and ETag
        self._loaded = _Loaded(rows, stamp, version, time.monotonic(), imported, jwks)
        return self._loaded

    def _keys(self) -> list[tuple[str, int, SigningJWK]]:
        return self._current().rows

    def forget(self) -> None:
        """Drop the cache (after a rotation or retirement in this process)."""
        self._loaded = None

    def jwks_document(self) -> Document:
        """The JWKS as served: bytes and ETag, rebuilt only when the keys are reloaded."""
        loaded = self._current()
        if not loaded.jwks:
            loaded.jwks.append(document(KeySet([key for _, _, key in loaded.rows]).as_dict(private=False)))
        return loaded.jwks[0]

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


def read_stamp_alone(cache: KeyCache) -> None:
    """Read this request's stamp (``_request_stamp``) on a connection of its own in autocommit: one round
    trip instead of BEGIN, SELECT and the session's ROLLBACK, for a request that needs nothing else from
    the database (the JWKS, idp.oauth.documents). Half the CPU of the session's way. Nothing at all
    while the listener is live: a change is notified."""
    cache.listener()
    if cache.listening:
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        g.idp_key_stamp = key_service.version_stamp(connection)


def cache() -> KeyCache:
    """This app's key cache."""
    return current().keys
