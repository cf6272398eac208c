"""The staff console's sessions: the lifecycle of ``services.credentials`` with [staff] timeouts. A
session also ends when its member is disabled."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from ...config import StaffSettings
from ...models import StaffSession
from ...models import StaffUser
from .. import credentials


def start_session(
    db: Session,
    user: StaffUser,
    *,
    now: int,
    settings: StaffSettings,
    ip: str | None,
    user_agent: str | None,
) -> tuple[StaffSession, str]:
    """Open a session for a member who has just signed in; return it and the cookie token."""
    row = StaffSession(staff_id=user.id)
    token = credentials.open_session(row, now=now, timeouts=settings, ip=ip, user_agent=user_agent)
    db.add(row)
    db.flush()
    return row, token


def find_session(db: Session, token: object, *, now: int, settings: StaffSettings) -> StaffSession | None:
    """The live session for a cookie token, or None if unknown, ended, idle too long, expired, or its
    member is disabled."""
    row = credentials.find_by_token(db, StaffSession, token)
    if row is None:
        return None
    if credentials.is_over(row, now=now, timeouts=settings) or not row.staff.enabled:
        credentials.end(row, now)
        return None
    credentials.touch(row, now)
    return row


def end_session(row: StaffSession, *, now: int) -> None:
    credentials.end(row, now)


def end_staff_sessions(db: Session, staff_id: int, *, now: int, keep_id: int | None = None) -> None:
    db.execute(
        update(StaffSession)
        .where(
            StaffSession.staff_id == staff_id,
            StaffSession.ended_at.is_(None),
            StaffSession.id != (keep_id or 0),
        )
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )
