import datetime
import zoneinfo

from idp.extensions import db
from idp.services import counters

MOSCOW = zoneinfo.ZoneInfo("Europe/Moscow")


def _ts(*args) -> int:
    return int(datetime.datetime(*args, tzinfo=MOSCOW).timestamp())


def test_local_day_follows_the_configured_time_zone():
    # 21:30 UTC is already the next day in Moscow (UTC+3).
    utc = int(datetime.datetime(2026, 11, 22, 21, 30, tzinfo=datetime.UTC).timestamp())
    assert counters.local_day(utc, "Europe/Moscow") == "2026-11-23"
    assert counters.local_day(utc, "UTC") == "2026-11-22"
    assert counters.local_day(_ts(2026, 11, 22, 23, 59, 59), "Europe/Moscow") == "2026-11-22"
    assert counters.local_day(_ts(2026, 11, 23, 0, 0, 0), "Europe/Moscow") == "2026-11-23"


def test_take_stops_at_the_limit_and_days_are_separate(app):
    with app.app_context():
        assert [counters.take(db.session, "k", "2026-11-22", 3) for _ in range(4)] == [
            True,
            True,
            True,
            False,
        ]
        assert counters.take(db.session, "k", "2026-11-23", 3)
        assert counters.take(db.session, "other", "2026-11-22", 3)
        db.session.commit()
        assert counters.current(db.session, "k", "2026-11-22") == 3


def test_give_back_returns_one_and_never_goes_below_zero(app):
    with app.app_context():
        counters.take(db.session, "k", "d", 1)
        counters.give_back(db.session, "k", "d")
        counters.give_back(db.session, "k", "d")
        assert counters.current(db.session, "k", "d") == 0
        assert counters.take(db.session, "k", "d", 1)


def test_a_row_created_by_another_request_meanwhile_is_counted_against(app, monkeypatch):
    """PostgreSQL, READ COMMITTED: a racing request may create the day's row after this one's UPDATE
    found none and before its SELECT looks. Below the limit, that is no refusal: take counts against the
    new row (the recovery's outbox sends several SMS to one phone at once)."""
    with app.app_context():
        assert counters.take(db.session, "k", "d", 3)  # the racing request's row, count 1
        db.session.commit()
        real = counters.affected_rows
        calls = []

        def update_before_the_row_was_visible(session, statement):
            calls.append(statement)
            return 0 if len(calls) == 1 else real(session, statement)

        monkeypatch.setattr(counters, "affected_rows", update_before_the_row_was_visible)
        assert counters.take(db.session, "k", "d", 3)
        assert len(calls) == 2
        db.session.commit()
        assert counters.current(db.session, "k", "d") == 2
