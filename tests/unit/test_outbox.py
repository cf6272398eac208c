"""The durable outbox (idp.services.outbox) on the suite's database: a message is written in its
caller's transaction, claimed once (attempt counted, lease set), retried with exponential backoff up to
its kind's attempts, failed for good on a refusal, fenced against a late answer from an expired lease,
and listed, retried and purged for the operator."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from idp.config import OutboxSettings
from idp.errors import OutboxRefusedError
from idp.errors import OutboxRetryError
from idp.extensions import db
from idp.models import OutboxMessage
from idp.runtime import of
from idp.services import outbox

T0 = 1_800_000_000
SETTINGS = OutboxSettings(retry_delay=2, max_retry_delay=600, lease=60, max_attempts=4)


class Handler:
    """Answers each call with the next item of ``answers``: None (delivered) or an exception."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.payloads: list[dict] = []

    def __call__(self, session, payload):
        self.payloads.append(payload)
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer


def _kinds(**handlers) -> outbox.Kinds:
    kinds = outbox.Kinds(SETTINGS)
    for name, handler in handlers.items():
        kinds.register(name, handler)
    return kinds


def _row(row_id: int) -> OutboxMessage:
    db.session.expire_all()
    row = db.session.get(OutboxMessage, row_id)
    assert row is not None
    return row


def _one_attempt(kinds, *, now: int) -> tuple[outbox.Claim, str | None]:
    (claimed,) = outbox.claim(db.session, now=now, lease=SETTINGS.lease, limit=1)
    db.session.commit()
    outcome = outbox.attempt(db.session, kinds, claimed)
    status = outbox.record(db.session, kinds, claimed, outcome, now=now, settings=SETTINGS)
    db.session.commit()
    return claimed, status


def test_a_message_is_written_with_its_callers_transaction(app):
    with app.app_context():
        outbox.enqueue(db.session, "note", {"to": 1}, now=T0)
        db.session.rollback()
        assert db.session.scalars(select(OutboxMessage)).all() == []
        row = outbox.enqueue(db.session, "note", {"to": 2, "text": "привет"}, now=T0)
        db.session.commit()
        stored = _row(row.id)
        assert (stored.kind, stored.status, stored.attempts, stored.next_attempt_at) == (
            "note",
            "pending",
            0,
            T0,
        )
        assert json.loads(stored.payload) == {"to": 2, "text": "привет"}


def test_delivered_at_the_first_attempt(app):
    handler = Handler(None)
    kinds = _kinds(note=handler)
    with app.app_context():
        row = outbox.enqueue(db.session, "note", {"n": 1}, now=T0)
        db.session.commit()
        claimed, status = _one_attempt(kinds, now=T0)
        assert (claimed.attempt, status, handler.payloads) == (1, "delivered", [{"n": 1}])
        stored = _row(row.id)
        assert (stored.status, stored.delivered_at, stored.attempts, stored.last_error) == (
            "delivered",
            T0,
            1,
            None,
        )
        # Delivered is delivered: nothing is due any more.
        assert outbox.claim(db.session, now=T0 + 10_000, lease=60, limit=10) == []


def test_failures_are_retried_with_exponential_backoff_then_failed(app):
    failures = [OutboxRetryError(f"HTTP 50{n}") for n in range(4)]
    kinds = _kinds(note=Handler(*failures))
    with app.app_context():
        row = outbox.enqueue(db.session, "note", {}, now=T0)
        db.session.commit()
        now, waits = T0, []
        for attempt in range(1, 5):
            # Not due a second early.
            if attempt > 1:
                assert outbox.claim(db.session, now=now - 1, lease=60, limit=10) == []
            claimed, status = _one_attempt(kinds, now=now)
            assert claimed.attempt == attempt
            stored = _row(row.id)
            assert stored.last_error == f"HTTP 50{attempt - 1}"
            if status == "pending":
                waits.append(stored.next_attempt_at - now)
                now = stored.next_attempt_at
        # retry_delay 2 s, doubled each time; the fourth attempt was the kind's last ([outbox] max_attempts).
        assert waits == [2, 4, 8] and status == "failed"
        assert _row(row.id).attempts == 4


def test_the_backoff_is_capped():
    settings = OutboxSettings(retry_delay=2, max_retry_delay=600)
    assert [outbox.backoff(n, settings) for n in (1, 2, 3, 9, 10, 11, 60)] == [2, 4, 8, 512, 600, 600, 600]


def test_a_refusal_fails_at_once_and_a_kinds_own_count_is_kept(app):
    kinds = outbox.Kinds(SETTINGS)
    kinds.register("refused", Handler(OutboxRefusedError("HTTP 400")))
    kinds.register("once", Handler(OutboxRetryError("no answer")), max_attempts=1)
    with app.app_context():
        refused = outbox.enqueue(db.session, "refused", {}, now=T0)
        db.session.commit()
        assert _one_attempt(kinds, now=T0)[1] == "failed"
        once = outbox.enqueue(db.session, "once", {}, now=T0)
        db.session.commit()
        assert _one_attempt(kinds, now=T0)[1] == "failed"
        assert (_row(refused.id).last_error, _row(once.id).last_error) == ("HTTP 400", "no answer")


def test_an_unknown_kind_fails_and_a_handlers_bug_is_an_attempt_without_its_text(app, caplog):
    kinds = _kinds(buggy=Handler(RuntimeError("https://user:api-key@gate/...")))
    with app.app_context():
        unknown = outbox.enqueue(db.session, "nobody", {}, now=T0)
        buggy = outbox.enqueue(db.session, "buggy", {}, now=T0)
        db.session.commit()
        claims = outbox.claim(db.session, now=T0, lease=60, limit=10)
        db.session.commit()
        for claimed in claims:
            # An attempt ends the session's transaction (a handler must not hold it over the network).
            outcome = outbox.attempt(db.session, kinds, claimed)
            outbox.record(db.session, kinds, claimed, outcome, now=T0, settings=SETTINGS)
            db.session.commit()
        assert (_row(unknown.id).status, _row(unknown.id).last_error) == (
            "failed",
            "no handler is registered for the kind 'nobody'",
        )
        # Only the class name is stored: an exception's text may hold anything.
        assert (_row(buggy.id).status, _row(buggy.id).last_error) == ("pending", "RuntimeError")
        assert "the handler failed" in caplog.text


def test_a_claimed_row_is_not_claimed_again_until_its_lease_ends(app):
    with app.app_context():
        row = outbox.enqueue(db.session, "note", {}, now=T0)
        db.session.commit()
        (first,) = outbox.claim(db.session, now=T0, lease=60, limit=10)
        db.session.commit()
        assert outbox.claim(db.session, now=T0 + 59, lease=60, limit=10) == []
        assert outbox.next_due(db.session) == T0 + 60
        # The first process died mid-delivery: another takes the row over, as attempt 2.
        (second,) = outbox.claim(db.session, now=T0 + 60, lease=60, limit=10)
        db.session.commit()
        assert (first.attempt, second.attempt) == (1, 2)
        # The first attempt's late answer changes nothing (the attempt number fences it) ...
        kinds = _kinds(note=Handler())
        late = outbox.record(db.session, kinds, first, outbox.Outcome(), now=T0 + 61, settings=SETTINGS)
        assert late is None and _row(row.id).status == "pending"
        # ... the second's counts.
        assert outbox.record(db.session, kinds, second, outbox.Outcome(), now=T0 + 62, settings=SETTINGS) == (
            "delivered"
        )
        db.session.commit()


def test_kinds_are_registered_once():
    kinds = outbox.Kinds(SETTINGS)
    kinds.register("note", Handler())
    with pytest.raises(ValueError, match="registered twice"):
        kinds.register("note", Handler())
    with pytest.raises(ValueError):
        kinds.register("x" * 65, Handler())
    assert kinds.names() == ["note"] and kinds.get("note").max_attempts == 4


def test_the_app_registers_the_back_channel_logout(app):
    kind = of(app).outbox.get("backchannel_logout")
    # 1 + [logout] backchannel_retries.
    assert kind.max_attempts == 10


def test_operator_retry_purge_and_counts(app):
    kinds = _kinds(note=Handler(OutboxRefusedError("no")), ok=Handler(None))
    with app.app_context():
        failed = outbox.enqueue(db.session, "note", {}, now=T0)
        delivered = outbox.enqueue(db.session, "ok", {}, now=T0)
        pending = outbox.enqueue(db.session, "ok", {}, now=T0 + 100)
        db.session.commit()
        for _ in range(2):
            _one_attempt(kinds, now=T0)
        counts = outbox.counts(db.session, now=T0 + 130)
        assert counts == {"pending": 1, "delivered": 1, "failed": 1, "oldest_pending_age": 30}
        assert [row.id for row in outbox.find(db.session, statuses=("pending", "failed"))] == [
            failed.id,
            pending.id,
        ]
        # Retry: only failed rows, due now, with a fresh count.
        assert outbox.retry(db.session, [failed.id, delivered.id, 999], now=T0 + 200) == [failed.id]
        db.session.commit()
        again = _row(failed.id)
        assert (again.status, again.attempts, again.next_attempt_at) == ("pending", 0, T0 + 200)
        # Purge: delivered before the cut-off go; pending rows never do.
        assert outbox.purge(db.session, before=T0 + 1) == 1
        db.session.commit()
        assert {row.id for row in db.session.scalars(select(OutboxMessage))} == {failed.id, pending.id}
