"""Remembered consent: which scopes an account has granted to a client (OIDC Core §3.1.2.4)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Consent


def find_consent(db: Session, account_id: int, client_id: str) -> Consent | None:
    return db.scalar(select(Consent).filter_by(account_id=account_id, client_id=client_id))


def grant_consent(db: Session, account_id: int, client_id: str, scope: str, *, now: int) -> Consent:
    """Record consent to ``scope``, adding to what was granted before."""
    consent = find_consent(db, account_id, client_id)
    if consent is None:
        consent = Consent(account_id=account_id, client_id=client_id, scope="", granted_at=now)
        db.add(consent)
    consent.scope = " ".join(sorted(set(consent.scope.split()) | set(scope.split())))
    consent.granted_at = now
    db.flush()
    return consent
