"""Signing keys: create, rotate, retire, list (the ``idp keys`` commands and the console's keys page).

Rotation (OIDC Core §10.1.1, RFC 7517): ``rotate_keys`` adds a key per algorithm that is published at
once but signs only after ``[keys] publish_ahead`` seconds, longer than relying parties cache the JWKS
(``[keys] jwks_max_age``). The keys it replaces keep verifying until every ID token they signed has
expired and left the caches (``retire_after``). Signing with the published keys is ``idp.oauth.keys``.
"""

from __future__ import annotations

import json

from joserfc.jwk import ECKey
from joserfc.jwk import KeyParameters
from joserfc.jwk import OKPKey
from joserfc.jwk import RSAKey
from sqlalchemy import Connection
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import Settings
from ..models import SigningKey

# One signing key (and its rotation) per algorithm. EdDSA is Ed25519 (RFC 8037): the JWS name relying
# parties' libraries know; RFC 9864 deprecates the polymorphic name for "Ed25519", which fewer RPs read yet.
ALGORITHMS = ("RS256", "ES256", "EdDSA")


def _generate(alg: str) -> RSAKey | ECKey | OKPKey:
    params: KeyParameters = {"use": "sig", "alg": alg}
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=params, auto_kid=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", parameters=params, auto_kid=True)
    return ECKey.generate_key("P-256", parameters=params, auto_kid=True)


def _add_key(db: Session, alg: str, *, now: int, activates_at: int) -> SigningKey:
    key = _generate(alg)
    row = SigningKey(
        kid=key.kid,
        alg=alg,
        private_jwk=json.dumps(key.as_dict(private=True)),
        created_at=now,
        activates_at=activates_at,
    )
    db.add(row)
    return row


# The channel every change of the key set is announced on (``oauth.key_changes`` listens). On PostgreSQL
# a trigger on ``signing_keys`` sends it for every statement that changes the rows, these functions' and
# hand-written SQL alike (migration ``d4b2e7a9c1f3``); SQLite has no notifications, and there each
# request reads the key stamp instead.
CHANGED_CHANNEL = "idp_signing_keys"


def ensure_keys(db: Session, *, now: int) -> list[SigningKey]:
    """Create a signing key for each algorithm that has none; a fresh install has no cache to wait for."""
    created = []
    for alg in ALGORITHMS:
        if not db.scalar(select(SigningKey.id).filter_by(alg=alg)):
            created.append(_add_key(db, alg, now=now, activates_at=now))
    return created


def retire_after(settings: Settings) -> int:
    """How long a replaced key keeps verifying after its successor starts signing: the life of the last
    ID token it signed, plus the time relying parties may cache the JWKS."""
    return settings.oauth.id_token_ttl + settings.keys.jwks_max_age


def rotate_keys(db: Session, settings: Settings, *, now: int, immediate: bool = False) -> list[SigningKey]:
    """Add a new key per algorithm. ``immediate`` (compromise) signs at once and drops old keys now."""
    activates_at = now if immediate else now + settings.keys.publish_ahead
    new_keys = []
    for alg in ALGORITHMS:
        for old in db.scalars(select(SigningKey).filter_by(alg=alg, expires_at=None)):
            old.expires_at = now if immediate else activates_at + retire_after(settings)
        new_keys.append(_add_key(db, alg, now=now, activates_at=activates_at))
    db.flush()
    return new_keys


def find_key(db: Session, kid: str) -> SigningKey | None:
    return db.scalar(select(SigningKey).filter_by(kid=kid))


def retire_key(db: Session, kid: str, *, now: int) -> bool:
    row = find_key(db, kid)
    if row is None:
        return False
    row.expires_at = now
    return True


def is_only_signer(db: Session, row: SigningKey, *, now: int) -> bool:
    """Retiring the one key that signs for its algorithm would leave that algorithm without a key."""
    signers = [
        other
        for other in db.scalars(select(SigningKey).filter_by(alg=row.alg))
        if other.activates_at <= now and (other.expires_at is None or other.expires_at > now)
    ]
    return signers == [row]


# Built once: it runs on every request that signs or serves the keys.
_STAMP = select(
    func.count(SigningKey.id), func.max(SigningKey.id), func.sum(func.coalesce(SigningKey.expires_at, 0))
)


def version_stamp(db: Session | Connection) -> tuple:
    """Changes whenever a key is added, removed or given an expiry (rotate, retire): what every process
    compares with the stamp its cache was loaded at (``oauth.keys``)."""
    return tuple(db.execute(_STAMP).one())


def all_keys(db: Session, *, newest_first: bool = False) -> list[SigningKey]:
    order = SigningKey.id.desc() if newest_first else SigningKey.id
    return list(db.scalars(select(SigningKey).order_by(order)))


def published(db: Session, *, now: int) -> list[SigningKey]:
    """The keys in the JWKS at ``now``: not yet expired, oldest activation first."""
    query = select(SigningKey).where(or_(SigningKey.expires_at.is_(None), SigningKey.expires_at > now))
    return list(db.scalars(query.order_by(SigningKey.activates_at, SigningKey.id)))
