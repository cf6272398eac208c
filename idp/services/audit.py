"""The audit log: who did what, when, from which address, and why.

Every staff action writes one event, and so do a migrant's sign-in and SMS reset, so that an operator
can read an account's history. An event never holds a password, token, client secret, TOTP secret or
SNILS: ``record`` refuses details whose names suggest one, which catches a careless caller in tests.
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Account
from ..models import AuditEvent
from ..models import StaffUser

# Last words a detail's name may not have ("temporary_password", "client_secret", "access_token"):
# the values such names carry are secrets or sensitive identifiers. "access_token_ttl" is fine.
_FORBIDDEN = {"password", "secret", "token", "snils", "code", "totp", "hash"}
MAX_REASON = 500


@dataclass(frozen=True)
class Actor:
    """Who acted: a staff member, a migrant (their own sign-in), a client (RFC 7592), or the public."""

    type: str
    id: int | None = None
    name: str | None = None

    @classmethod
    def staff(cls, user: StaffUser) -> Actor:
        return cls("staff", user.id, user.username)

    @classmethod
    def account(cls, account: Account) -> Actor:
        return cls("account", account.id, account.login)

    @classmethod
    def client(cls, client_id: str) -> Actor:
        return cls("client", None, client_id)


ANONYMOUS = Actor("anonymous")
# The `idp` command on the server; the actor's name is the operating-system user who ran it.
ACTOR_CLI = "cli"


@dataclass(frozen=True)
class Context:
    """Who acts, from which address, at what time: what every audited service call is given."""

    actor: Actor
    ip: str | None
    now: int


def record(
    db: Session,
    ctx: Context,
    event: str,
    *,
    account_id: int | None = None,
    client_id: str | None = None,
    reason: str | None = None,
    details: dict | None = None,
) -> AuditEvent:
    """Add one event to the session; it is committed with the change it describes."""
    details = dict(details or {})
    for key in details:
        if key.lower().rsplit("_", 1)[-1] in _FORBIDDEN:
            raise ValueError(f"audit details must not carry {key!r}")
    row = AuditEvent(
        at=ctx.now,
        event=event,
        actor_type=ctx.actor.type,
        actor_id=ctx.actor.id,
        actor_name=(ctx.actor.name or "")[:64] or None,
        account_id=account_id,
        client_id=client_id,
        ip=(ctx.ip or "")[:45] or None,
        reason=(reason or "").strip()[:MAX_REASON] or None,
        details=details,
    )
    db.add(row)
    return row


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    account_id: int | None = None
    client_id: str | None = None
    event: str | None = None
    # Calendar days in the Migration Center's time zone, inclusive.
    since: datetime.date | None = None
    until: datetime.date | None = None


def _day_start(day: datetime.date, timezone: str) -> int:
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=zoneinfo.ZoneInfo(timezone))
    return int(start.timestamp())


def search(db: Session, wanted: AuditFilter, *, timezone: str, limit: int = 200) -> list[AuditEvent]:
    """The newest events matching every given filter."""
    query = select(AuditEvent)
    if wanted.actor:
        query = query.where(AuditEvent.actor_name == wanted.actor)
    if wanted.account_id is not None:
        query = query.where(AuditEvent.account_id == wanted.account_id)
    if wanted.client_id:
        query = query.where(AuditEvent.client_id == wanted.client_id)
    if wanted.event:
        query = query.where(AuditEvent.event == wanted.event)
    if wanted.since:
        query = query.where(AuditEvent.at >= _day_start(wanted.since, timezone))
    if wanted.until:
        query = query.where(AuditEvent.at < _day_start(wanted.until + datetime.timedelta(days=1), timezone))
    return list(db.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)))


def account_history(db: Session, account_id: int, *, limit: int = 100) -> list[AuditEvent]:
    """Sign-ins, resets and staff actions on one account, newest first."""
    query = select(AuditEvent).where(AuditEvent.account_id == account_id)
    return list(db.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)))
