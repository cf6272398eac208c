"""Per-day counters with a ceiling, taken atomically: of N concurrent takers at most the remaining
number succeed, on PostgreSQL as on SQLite (an UPDATE … WHERE count < limit holds the row lock)."""

from __future__ import annotations

import datetime
import zoneinfo

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import DailyCounter
from ..models.base import affected_rows


def local_day(now: int, timezone: str) -> str:
    """The calendar day of ``now`` where the Migration Center is, e.g. "2026-11-22"."""
    return datetime.datetime.fromtimestamp(now, zoneinfo.ZoneInfo(timezone)).date().isoformat()


def take(db: Session, key: str, day: str, limit: int) -> bool:
    """Count one for ``key`` on ``day`` unless that would pass ``limit``; True if counted."""
    for _ in range(3):
        bumped = affected_rows(
            db,
            update(DailyCounter)
            .where(DailyCounter.key == key, DailyCounter.day == day, DailyCounter.count < limit)
            .values(count=DailyCounter.count + 1),
        )
        if bumped:
            return True
        count = db.scalar(select(DailyCounter.count).filter_by(key=key, day=day))
        if count is not None:
            if count >= limit:
                return False
            # Created by another request between the UPDATE and this SELECT (PostgreSQL, READ
            # COMMITTED): below the limit, so count against it.
            continue
        try:
            with db.begin_nested():
                db.add(DailyCounter(key=key, day=day, count=1))
            return True
        except IntegrityError:
            # Another request created the row first; count against it.
            continue
    return False


def give_back(db: Session, key: str, day: str) -> None:
    """Undo one ``take`` (the SMS could not be sent, so the attempt does not count)."""
    db.execute(
        update(DailyCounter)
        .where(DailyCounter.key == key, DailyCounter.day == day, DailyCounter.count > 0)
        .values(count=DailyCounter.count - 1)
    )


class Tally:
    """The counts one request takes on one day, so that they can all be given back together when the
    message they were taken for could not be sent."""

    def __init__(self, db: Session, day: str):
        self.db = db
        self.day = day
        self.taken: list[str] = []

    def take(self, key: str, limit: int) -> bool:
        if take(self.db, key, self.day, limit):
            self.taken.append(key)
            return True
        return False

    def give_back(self) -> None:
        for key in self.taken:
            give_back(self.db, key, self.day)
        self.taken.clear()


def current(db: Session, key: str, day: str) -> int:
    return db.scalar(select(DailyCounter.count).filter_by(key=key, day=day)) or 0
