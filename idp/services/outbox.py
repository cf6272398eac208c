"""The durable outbox: what the provider owes to someone outside (a back-channel logout to a relying
party, a notification to a person) is a row of ``outbox_messages``, written in the same transaction as
the change that caused it, and delivered afterwards by the server processes (``idp.background``). A
rolled-back change sends nothing; a committed one is sent even if every process restarts meanwhile.

Adding a kind of message is one registration in ``create_app``::

    runtime.outbox.register("password_changed_sms", send_password_changed_sms)

where the handler is ``handler(db, payload) -> None``: it returns once the message is delivered, raises
``OutboxRetryError`` when another attempt may succeed (no answer, a timeout, 5xx) and
``OutboxRefusedError`` when none can (the receiver said no; the target no longer exists). Any other
exception counts as a failed attempt too (logged with its traceback; only its class name is stored).
A service then writes a message with ``enqueue(db, "password_changed_sms", {...}, now=now)`` and the
caller commits as usual.

Rules for a kind:

* the payload is JSON and is stored as it is: **no secret in it**, ever (no token, code or password; a
  logout token is signed when it is sent, from the claims stored). Prefer ids to personal data: the
  handler may look the rest up when it runs;
* a handler may read the database through ``db`` but must end that transaction (``db.rollback()``)
  before it waits on the network, so a slow receiver holds no database connection, and must bound its
  network wait (``OutboundClient``'s deadline and size cap, the SMS and SMTP timeouts): the row is
  leased for ``[outbox] lease`` seconds only;
* delivery is at least once: a process that dies between the receiver's answer and recording it leaves
  the row to be sent again once its lease ends, so a message should let its receiver recognise a
  repeat (the logout token keeps its ``jti``).

Attempts and backoff: a failed attempt is retried after ``[outbox] retry_delay`` seconds, doubled after
each further failure up to ``[outbox] max_retry_delay``; after the kind's ``max_attempts`` (``[outbox]
max_attempts`` unless it registered its own) the row is ``failed`` and stays for ``idp outbox`` to list
and retry.

Claims: due rows are selected with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite serialises writers
instead) and taken in the same UPDATE statement that counts the attempt and sets the lease, so two
processes, on one host or two, never hold the same row; the attempt number is the fence that makes a
late answer from an expired lease change nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..config import OutboxSettings
from ..errors import OutboxKindError
from ..errors import OutboxRefusedError
from ..errors import OutboxRetryError
from ..models.base import affected_rows
from ..models.outbox import DELIVERED
from ..models.outbox import FAILED
from ..models.outbox import PENDING
from ..models.outbox import OutboxMessage

log = logging.getLogger(__name__)

Handler = Callable[[Session, dict[str, Any]], None]
# Where a database session notes that it wrote a message, so that this process's delivery loop is
# woken when the transaction commits (``idp.background``).
ENQUEUED = "idp.outbox.enqueued"
MAX_ERROR_LENGTH = 500
MAX_KIND_LENGTH = 64


# Told "delivered" or "failed" when a message of a kind ends so (a metrics counter).
Outcomes = Callable[[str], None]


@dataclass(frozen=True)
class Kind:
    name: str
    handler: Handler
    max_attempts: int
    count: Outcomes | None = None


class Kinds:
    """The registry of one app: kind name -> its handler and attempt count (an adapter of the runtime)."""

    def __init__(self, settings: OutboxSettings) -> None:
        self.settings = settings
        self._kinds: dict[str, Kind] = {}

    def register(
        self, name: str, handler: Handler, *, max_attempts: int | None = None, count: Outcomes | None = None
    ) -> None:
        """Deliver messages of kind ``name`` with ``handler``, giving up after ``max_attempts`` (default
        ``[outbox] max_attempts``); ``count`` (optional) is told each "delivered" and "failed"."""
        if not name or len(name) > MAX_KIND_LENGTH:
            raise ValueError(f"an outbox kind is 1 to {MAX_KIND_LENGTH} characters: {name!r}")
        if name in self._kinds:
            raise ValueError(f"outbox kind {name!r} is registered twice")
        attempts = max_attempts if max_attempts is not None else self.settings.max_attempts
        self._kinds[name] = Kind(name, handler, max(1, attempts), count)

    def get(self, name: str) -> Kind:
        try:
            return self._kinds[name]
        except KeyError:
            raise OutboxKindError(f"no handler is registered for the kind {name!r}") from None

    def names(self) -> list[str]:
        return sorted(self._kinds)


def enqueue(db: Session, kind: str, payload: dict[str, Any], *, now: int) -> OutboxMessage:
    """Write a message, due now, in ``db``'s transaction: it is sent once (and only if) that commits."""
    if not kind or len(kind) > MAX_KIND_LENGTH:
        raise ValueError(f"an outbox kind is 1 to {MAX_KIND_LENGTH} characters: {kind!r}")
    row = OutboxMessage(
        kind=kind,
        payload=json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        claimed_until=0,
        created_at=now,
    )
    db.add(row)
    db.info[ENQUEUED] = True
    return row


# -- delivering --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A row this process holds until ``claimed_until``; ``attempt`` is this attempt's number (1 = first)."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempt: int
    created_at: int


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: ``error`` is None when delivered; ``final`` when no retry can help."""

    error: str | None = None
    final: bool = False

    @property
    def delivered(self) -> bool:
        return self.error is None


def _due(now: int):
    return (
        OutboxMessage.status == PENDING,
        OutboxMessage.next_attempt_at <= now,
        OutboxMessage.claimed_until <= now,
    )


def claim(db: Session, *, now: int, lease: int, limit: int) -> list[Claim]:
    """Take up to ``limit`` due rows for ``lease`` seconds, oldest due first; the caller commits at once
    (the row locks of PostgreSQL are held only until then, the lease after).

    PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` (rows another process is claiming right now are
    skipped, not waited for), then ``UPDATE … RETURNING``. SQLite (one writer at a time): one
    ``UPDATE … WHERE id IN (SELECT …) RETURNING``, with no read lock to upgrade halfway."""
    if limit <= 0:
        return []
    due = (
        select(OutboxMessage.id)
        .where(*_due(now))
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if db.get_bind().dialect.name == "postgresql":
        # The rows are locked by this SELECT until the commit. (Not a subquery of the UPDATE: PostgreSQL
        # may run a LIMIT … FOR UPDATE subquery more than once and take more rows than the limit.)
        chosen: Any = list(db.scalars(due))
        if not chosen:
            return []
    else:
        chosen = due.scalar_subquery()
    taken = db.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(chosen), *_due(now))
        .values(attempts=OutboxMessage.attempts + 1, claimed_until=now + lease)
        .returning(
            OutboxMessage.id,
            OutboxMessage.kind,
            OutboxMessage.payload,
            OutboxMessage.attempts,
            OutboxMessage.created_at,
        )
        .execution_options(synchronize_session=False)
    ).all()
    return sorted(
        (
            Claim(row_id, kind, json.loads(payload), attempts, created_at)
            for row_id, kind, payload, attempts, created_at in taken
        ),
        key=lambda claimed: claimed.id,
    )


def attempt(db: Session, kinds: Kinds, claimed: Claim) -> Outcome:
    """Run the handler of ``claimed`` once; never raises."""
    try:
        kinds.get(claimed.kind).handler(db, claimed.payload)
    except (OutboxRefusedError, OutboxKindError) as error:
        return Outcome(_error_text(error), final=True)
    except OutboxRetryError as error:
        return Outcome(_error_text(error))
    except Exception as error:  # noqa: BLE001 - a handler's bug fails an attempt, not the process
        # Its text may hold anything (a gateway URL with a key): the log has the traceback, the row the class.
        log.exception("outbox message %d (%s): the handler failed", claimed.id, claimed.kind)
        return Outcome(type(error).__name__)
    finally:
        db.rollback()
    return Outcome()


def record(
    db: Session, kinds: Kinds, claimed: Claim, outcome: Outcome, *, now: int, settings: OutboxSettings
) -> str | None:
    """Store what an attempt came to; return the row's new status, or None if the lease had passed and
    another attempt has taken the row over (then that attempt's outcome counts, not this one)."""
    mine = (
        OutboxMessage.id == claimed.id,
        OutboxMessage.attempts == claimed.attempt,
        OutboxMessage.status == PENDING,
    )
    if outcome.delivered:
        values: dict[str, Any] = {"status": DELIVERED, "delivered_at": now, "claimed_until": 0}
    else:
        try:
            max_attempts = kinds.get(claimed.kind).max_attempts
        except OutboxKindError:
            max_attempts = 0
        values = {"last_error": (outcome.error or "")[:MAX_ERROR_LENGTH], "claimed_until": 0}
        if outcome.final or claimed.attempt >= max_attempts:
            values["status"] = FAILED
        else:
            values["next_attempt_at"] = now + backoff(claimed.attempt, settings)
    if not affected_rows(db, update(OutboxMessage).where(*mine).values(**values)):
        return None
    return values.get("status", PENDING)


def counted(kinds: Kinds, claimed: Claim, status: str | None) -> None:
    """Tell the kind's counter, if it has one, that a message ended delivered or failed (once the
    outcome is committed)."""
    try:
        count = kinds.get(claimed.kind).count
    except OutboxKindError:
        return
    if count is not None and status in (DELIVERED, FAILED):
        count(status)


def backoff(attempt: int, settings: OutboxSettings) -> int:
    """Seconds to wait after the ``attempt``-th failed attempt: retry_delay, doubled each time, capped."""
    return min(settings.retry_delay * 2 ** min(attempt - 1, 30), settings.max_retry_delay)


def next_due(db: Session) -> int | None:
    """When the earliest pending row may next be claimed (its due time, or the end of its lease)."""
    when = case(
        (OutboxMessage.claimed_until > OutboxMessage.next_attempt_at, OutboxMessage.claimed_until),
        else_=OutboxMessage.next_attempt_at,
    )
    return db.scalar(select(func.min(when)).where(OutboxMessage.status == PENDING))


def _error_text(error: Exception) -> str:
    return str(error) or type(error).__name__


# -- the operator's view (idp outbox) -----------------------------------------------------------------------


def find(
    db: Session, *, statuses: tuple[str, ...], kind: str | None = None, limit: int = 100
) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.status.in_(statuses))
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    return list(db.scalars(query.order_by(OutboxMessage.id).limit(limit)))


def retry(db: Session, ids: list[int] | None, *, now: int) -> list[int]:
    """Make failed rows (those of ``ids``, or all with None) pending again with a fresh count of
    attempts, due now; return the ids that were failed."""
    query = select(OutboxMessage.id).where(OutboxMessage.status == FAILED)
    if ids is not None:
        query = query.where(OutboxMessage.id.in_(ids))
    found = sorted(db.scalars(query))
    if found:
        db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(found), OutboxMessage.status == FAILED)
            .values(status=PENDING, attempts=0, next_attempt_at=now, claimed_until=0)
        )
        db.info[ENQUEUED] = True
    return found


def purge(db: Session, *, before: int) -> int:
    """Delete rows delivered before ``before``, and failed rows written before it."""
    return affected_rows(
        db,
        delete(OutboxMessage).where(
            or_(
                (OutboxMessage.status == DELIVERED) & (OutboxMessage.delivered_at < before),
                (OutboxMessage.status == FAILED) & (OutboxMessage.created_at < before),
            )
        ),
    )


def counts(db: Session, *, now: int, kind: str | None = None) -> dict[str, int]:
    """Rows per status (of one kind, or all), and the age in seconds of the oldest pending one (0 with
    none): for metrics and ``idp outbox list``."""
    of_kind = (OutboxMessage.kind == kind,) if kind else ()
    found = dict.fromkeys((PENDING, DELIVERED, FAILED), 0)
    for status, count in db.execute(
        select(OutboxMessage.status, func.count()).where(*of_kind).group_by(OutboxMessage.status)
    ).all():
        found[status] = count
    oldest = db.scalar(
        select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == PENDING, *of_kind)
    )
    found["oldest_pending_age"] = max(0, now - oldest) if oldest is not None else 0
    return found
