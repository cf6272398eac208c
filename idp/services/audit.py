"""The audit log: who did what, when, from which address, and why.

Every staff action writes one event, and so do a migrant's sign-in and SMS reset, so that an operator
can read an account's history. An event never holds a password, token, client secret, TOTP secret or
SNILS: ``record`` refuses details whose names suggest one, which catches a careless caller in tests.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import zoneinfo
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidCredentialsError
from ..models import Account
from ..models import AuditEvent
from ..models import StaffUser
from ..models.base import affected_rows

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


_INSERT_EVENT = insert(cast(Table, AuditEvent.__table__))


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
) -> None:
    """Write one event in the session's transaction; it is committed with the change it describes.

    A Core INSERT, executed at once: no ORM object, no RETURNING of its id and no place in the next flush
    (issue 12: the sign-in's event cost as much as its session row). Nothing reads an event back in the
    request that writes it, and ``account_id`` is no foreign key, so the order against the rows flushed
    later does not matter."""
    details = dict(details or {})
    for key in details:
        if key.lower().rsplit("_", 1)[-1] in _FORBIDDEN:
            raise ValueError(f"audit details must not carry {key!r}")
    row = dict(
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
    db.execute(_INSERT_EVENT, row)


MAX_USER_AGENT = 200


def record_sign_in_failure(
    db: Session,
    ctx: Context,
    error: InvalidCredentialsError,
    *,
    staff: bool,
    login: str | None,
    user_agent: str | None,
    during: str | None = None,
) -> None:
    """One failed sign-in (``account.sign_in_failed`` or ``staff.sign_in_failed``) with the address,
    the user agent and what failed, and ``…locked`` when this failure locked the account. Never the
    password: callers pass ``login`` only when it names an account or member, since what was typed
    into the login field may be a password."""
    prefix = "staff" if staff else "account"
    details: dict = {"result": error.result, "user_agent": (user_agent or "")[:MAX_USER_AGENT]}
    if login:
        details["username" if staff else "login"] = login[:64]
    if during:
        # Not the sign-in form: "step_up" (the password asked again on «Мой профиль»), "password_change"
        # (a wrong current password on the password change page).
        details["during"] = during
    account_id = None if staff else error.subject_id
    if staff and error.subject_id is not None:
        details["staff_id"] = error.subject_id
    record(db, ctx, f"{prefix}.sign_in_failed", account_id=account_id, details=details)
    if error.locked_now:
        record(db, ctx, f"{prefix}.locked", account_id=account_id, details=dict(details))


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


def _matching(wanted: AuditFilter, timezone: str):
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
    return query


def search(
    db: Session, wanted: AuditFilter, *, timezone: str, limit: int = 200, before_id: int | None = None
) -> list[AuditEvent]:
    """The newest events matching every given filter, ``limit`` of them; with ``before_id``, the page
    after the one that ended with that event. Pages are cut by id (keyset paging): the log only grows,
    in the order its rows are written, so a page never shifts while someone reads the next one."""
    query = _matching(wanted, timezone)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return list(db.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)))


# -- export ------------------------------------------------------------------------------------------------

EXPORT_BATCH = 500
EXPORT_FIELDS = (
    "id",
    "at",
    "event",
    "actor_type",
    "actor_name",
    "account_id",
    "account_login",
    "client_id",
    "ip",
    "reason",
    "details",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection, OWASP): such a
# value is written with a leading apostrophe, which spreadsheets show as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export(db: Session, wanted: AuditFilter, *, timezone: str) -> Iterator[dict]:
    """Every matching event, oldest first, as a plain record (the time as ISO 8601 UTC, the account's
    current login beside its id); read in batches, so a long range does not sit in memory."""
    after = 0
    while True:
        batch = list(
            db.scalars(
                _matching(wanted, timezone)
                .where(AuditEvent.id > after)
                .order_by(AuditEvent.id)
                .limit(EXPORT_BATCH)
            )
        )
        if not batch:
            return
        ids = {event.account_id for event in batch if event.account_id}
        query = select(Account.id, Account.login).where(Account.id.in_(ids))
        logins = dict(db.execute(query).all()) if ids else {}
        for event in batch:
            yield {
                "id": event.id,
                "at": _iso(event.at),
                "event": event.event,
                "actor_type": event.actor_type,
                "actor_name": event.actor_name,
                "account_id": event.account_id,
                "account_login": logins.get(event.account_id) if event.account_id else None,
                "client_id": event.client_id,
                "ip": event.ip,
                "reason": event.reason,
                "details": event.details or {},
            }
        after = batch[-1].id


def _iso(at: int) -> str:
    """A Unix time as ISO 8601 in UTC, e.g. 2026-12-07T10:15:00Z."""
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def jsonl_lines(records: Iterable[dict]) -> Iterator[str]:
    """JSON Lines (https://jsonlines.org): one object per line, UTF-8."""
    for record_ in records:
        yield json.dumps(record_, ensure_ascii=False, sort_keys=False) + "\n"


def csv_lines(records: Iterable[dict]) -> Iterator[str]:
    """CSV (RFC 4180) with a header line; ``details`` as a JSON object in its column."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_FIELDS)
    yield _flush(buffer)
    for record_ in records:
        row = []
        for name in EXPORT_FIELDS:
            value = record_[name]
            if name == "details":
                value = json.dumps(value, ensure_ascii=False, sort_keys=True)
            text = "" if value is None else str(value)
            row.append("'" + text if text.startswith(_FORMULA_START) else text)
        writer.writerow(row)
        yield _flush(buffer)


def _flush(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def purge(db: Session, *, before: int) -> int:
    """Delete the events older than ``before`` (``idp purge`` with ``[audit] retention_days``); return how
    many went. The only way an event is ever deleted: the application has no update or delete path."""
    return affected_rows(db, delete(AuditEvent).where(AuditEvent.at < before))


def account_history(db: Session, account_id: int, *, limit: int = 100) -> list[AuditEvent]:
    """Sign-ins, resets and staff actions on one account, newest first."""
    query = select(AuditEvent).where(AuditEvent.account_id == account_id)
    return list(db.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)))
