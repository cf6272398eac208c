"""One-time JWT ids: a client assertion (RFC 7523 §3, "jti") and a DPoP proof (RFC 9449 §11.1) are
accepted once. The check is the unique key of ``used_jtis``: of two requests carrying the same id, on
any process or host, exactly one inserts it. Kept in the database, the store every host shares already
(no Redis needed for correctness)."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..crypto import digest
from ..models import UsedJti
from ..models.base import affected_rows


def first_use(db: Session, kind: str, issuer: str, jti: str, *, expires_at: int) -> bool:
    """Record ``jti`` of ``issuer`` (a client id, a key thumbprint) for ``kind``; False if it was seen.
    Runs in a savepoint, so a replay leaves the caller's transaction as it was. The row stays until
    ``expires_at``, after which the JWT would be refused as expired anyway."""
    key = digest(f"{kind}\x00{issuer}\x00{jti}")
    try:
        with db.begin_nested():
            db.execute(insert(UsedJti).values(key_hash=key, expires_at=expires_at))
    except IntegrityError:
        return False
    return True


def purge(db: Session, *, now: int) -> int:
    return affected_rows(db, delete(UsedJti).where(UsedJti.expires_at < now))
