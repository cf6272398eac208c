"""Signing keys: create, rotate, pick the one that signs, publish the JWKS.

Rotation (OIDC Core §10.1.1, RFC 7517): ``rotate_keys`` adds a key per algorithm that is published at
once but signs only after ``publish_ahead`` seconds, longer than relying parties cache the JWKS
(``jwks_max_age``). The keys it replaces keep verifying until every ID token they signed has expired.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from flask import current_app
from joserfc.jwk import ECKey
from joserfc.jwk import KeySet
from joserfc.jwk import RSAKey
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import SigningKey

ALGORITHMS = ("RS256", "ES256")
# Loading keys is a query plus, per RSA key, ~40 ms of private-key validation; a short in-process cache
# keeps both off every token and JWKS request. It is shorter than any sensible publish_ahead, so a
# rotation is seen everywhere before the new key signs.
CACHE_SECONDS = 30


def _generate(alg: str):
    params = {"use": "sig", "alg": alg}
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=params, auto_kid=True)
    return ECKey.generate_key("P-256", parameters=params, auto_kid=True)


def _add_key(session: Session, alg: str, *, now: int, activates_at: int) -> SigningKey:
    key = _generate(alg)
    row = SigningKey(
        kid=key.kid,
        alg=alg,
        private_jwk=json.dumps(key.as_dict(private=True)),
        created_at=now,
        activates_at=activates_at,
    )
    session.add(row)
    return row


def ensure_keys(session: Session, *, now: int) -> list[SigningKey]:
    """Create a signing key for each algorithm that has none; a fresh install has nothing cached to wait for."""
    created = []
    for alg in ALGORITHMS:
        if not session.scalar(select(SigningKey.id).filter_by(alg=alg)):
            created.append(_add_key(session, alg, now=now, activates_at=now))
    return created


def rotate_keys(
    session: Session, *, now: int, publish_ahead: int, retire_after: int, immediate: bool = False
) -> list[SigningKey]:
    """Add a new key per algorithm. ``immediate`` (compromise) signs at once and drops old keys now."""
    activates_at = now if immediate else now + publish_ahead
    new_keys = []
    for alg in ALGORITHMS:
        for old in session.scalars(select(SigningKey).filter_by(alg=alg, expires_at=None)):
            old.expires_at = now if immediate else activates_at + retire_after
        new_keys.append(_add_key(session, alg, now=now, activates_at=activates_at))
    return new_keys


def retire_key(session: Session, kid: str, *, now: int) -> bool:
    row = session.scalar(select(SigningKey).filter_by(kid=kid))
    if row is None:
        return False
    row.expires_at = now
    return True


def _published(session: Session, now: int) -> list[SigningKey]:
    query = select(SigningKey).where(or_(SigningKey.expires_at.is_(None), SigningKey.expires_at > now))
    return list(session.scalars(query.order_by(SigningKey.activates_at, SigningKey.id)))


@dataclass
class _Loaded:
    at: float
    rows: list[tuple[str, str, int, RSAKey | ECKey]]


def _import(row: SigningKey) -> RSAKey | ECKey:
    data = json.loads(row.private_jwk)
    return RSAKey.import_key(data) if row.alg == "RS256" else ECKey.import_key(data)


def _loaded() -> list[tuple[str, str, int, RSAKey | ECKey]]:
    cache = current_app.extensions.setdefault("idp.keys", _Loaded(at=0.0, rows=[]))
    if time.monotonic() - cache.at > CACHE_SECONDS or not cache.rows:
        now = int(time.time())
        cache.rows = [(r.kid, r.alg, r.activates_at, _import(r)) for r in _published(db.session, now)]
        cache.at = time.monotonic()
    return cache.rows


def forget_cached_keys() -> None:
    current_app.extensions.pop("idp.keys", None)


def signing_key(alg: str):
    """The newest active key for ``alg`` (RS256 or ES256)."""
    now = time.time()
    usable = [key for kid, key_alg, activates_at, key in _loaded() if key_alg == alg and activates_at <= now]
    if not usable:
        raise RuntimeError(f"no active {alg} signing key: run `idp keys ensure`")
    return usable[-1]


def public_jwks() -> dict:
    return KeySet([key for _, _, _, key in _loaded()]).as_dict(private=False)


def verification_keyset() -> KeySet:
    return KeySet.import_key_set(public_jwks())
