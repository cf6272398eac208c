"""The background work of a server process: delivering the durable outbox (``services.outbox``) and
ending timed-out SSO sessions (``services.sessions.end_timed_out``).

``create_app`` builds one ``Background`` per app (``runtime.background``); it starts only where the
provider serves — ``idp serve`` in each granian worker after the fork, the development server, the
tests' live server — and only with ``[outbox] enabled``. ``idp`` commands and the unit-test app never
start it; ``deliver_due`` and ``sweep`` run one pass synchronously (``idp outbox deliver``, tests).

The loop, in one daemon thread per process:

* claims as many due messages as it has free delivery threads (``[outbox] concurrency``), so nothing
  is leased while it waits behind a slow receiver, and hands each to a thread: an attempt is bounded
  by its handler's deadline, so one slow or huge relying party holds one thread for that long, never
  the others;
* sleeps until the next message is due, ``[outbox] poll_interval`` at most (rows written by other
  processes), and wakes at once when this process commits a new message or a delivery ends;
* every ``[outbox] sweep_interval`` ends the sessions past their idle or absolute timeout, which
  revokes their tokens and writes their back-channel logouts;
* survives a database outage: a failed pass is logged and tried again after the poll interval.

Nothing here runs in a request: a request only writes rows.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from dataclasses import dataclass
from dataclasses import field

from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session

from .extensions import db
from .models.outbox import DELIVERED
from .models.outbox import FAILED
from .models.outbox import PENDING
from .runtime import of
from .services import outbox
from .services import sessions

log = logging.getLogger(__name__)

# Never spin: the shortest sleep between two passes, seconds.
MIN_WAIT = 0.05
# How long a stopping process waits for deliveries in flight, seconds (their deadlines are shorter).
STOP_WAIT = 10.0
# Sessions ended per transaction by the sweep.
SWEEP_BATCH = 200

# The running loops of this process, woken when a transaction that wrote a message commits.
_RUNNING: weakref.WeakSet[Background] = weakref.WeakSet()


@dataclass
class PassResult:
    """What one synchronous pass did."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    statuses: dict[int, str | None] = field(default_factory=dict)


class Background:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._next_sweep = 0.0
        self._failing = False
        _listen_for_commits()

    @property
    def settings(self):
        return of(self.app).settings.outbox

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the loop ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop of this process (once)."""
        if self.running:
            return
        self._stopping.clear()
        self._pool = ThreadPoolExecutor(
            max_workers=self.settings.concurrency, thread_name_prefix="idp-outbox-delivery"
        )
        self._thread = threading.Thread(target=self._run, name="idp-background", daemon=True)
        _RUNNING.add(self)
        self._thread.start()
        atexit.register(self.stop)

    def stop(self, timeout: float = STOP_WAIT) -> None:
        """Stop claiming, and let the deliveries in flight finish (a row whose delivery is cut off here
        is taken over by another process when its lease ends)."""
        if self._thread is None:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        _RUNNING.discard(self)
        self._thread = None

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                pause = self._pass()
                if self._failing:
                    log.warning("background work: the database answers again")
                    self._failing = False
            except Exception:  # noqa: BLE001 - an outage must not end the loop; it is retried
                if not self._failing:
                    log.exception("background work: a pass failed; trying again every poll interval")
                    self._failing = True
                pause = float(self.settings.poll_interval)
            self._wake.wait(pause)
            self._wake.clear()

    def _pass(self) -> float:
        """One turn of the loop; return how long to sleep."""
        settings = self.settings
        if time.monotonic() >= self._next_sweep:
            self.sweep()
            self._next_sweep = time.monotonic() + settings.sweep_interval
        with self._lock:
            free = settings.concurrency - self._in_flight
        claims = self._claim(free)
        for claimed in claims:
            with self._lock:
                self._in_flight += 1
            assert self._pool is not None
            self._pool.submit(self._deliver_in_thread, claimed)
        pause = min(float(settings.poll_interval), self._next_sweep - time.monotonic())
        if len(claims) < free:
            with self.app.app_context():
                due = outbox.next_due(db.session)
            if due is not None:
                # Due times are the app's clock, which a server runs on the wall clock.
                pause = min(pause, due - time.time())
        # Else every delivery thread is busy: the end of a delivery wakes the loop.
        return max(MIN_WAIT, pause)

    def _deliver_in_thread(self, claimed: outbox.Claim) -> None:
        try:
            self._deliver(claimed)
        except Exception:  # noqa: BLE001 - the row stays leased and is retried when the lease ends
            log.exception("outbox message %d (%s): could not record the attempt", claimed.id, claimed.kind)
        finally:
            with self._lock:
                self._in_flight -= 1
            self._wake.set()

    # -- one pass, also synchronously ------------------------------------------------------------------

    def _claim(self, limit: int) -> list[outbox.Claim]:
        runtime = of(self.app)
        with self.app.app_context():
            claims = outbox.claim(
                db.session, now=runtime.clock(), lease=runtime.settings.outbox.lease, limit=limit
            )
            db.session.commit()
        return claims

    def _deliver(self, claimed: outbox.Claim) -> str | None:
        runtime = of(self.app)
        with self.app.app_context():
            outcome = outbox.attempt(db.session, runtime.outbox, claimed)
            status = outbox.record(
                db.session,
                runtime.outbox,
                claimed,
                outcome,
                now=runtime.clock(),
                settings=runtime.settings.outbox,
            )
            db.session.commit()
        outbox.counted(runtime.outbox, claimed, status)
        _log_outcome(claimed, outcome, status)
        return status

    def deliver_due(self, limit: int = 1000) -> PassResult:
        """Claim every due message (up to ``limit``) and deliver them, ``[outbox] concurrency`` at a time;
        return when all attempts are recorded. For ``idp outbox deliver`` and tests."""
        result = PassResult()
        claims = self._claim(limit)
        if not claims:
            return result
        with ThreadPoolExecutor(max_workers=self.settings.concurrency) as pool:
            futures = {pool.submit(self._deliver, claimed): claimed for claimed in claims}
            wait(futures)
        for future, claimed in futures.items():
            status = future.result()
            result.statuses[claimed.id] = status
            if status == DELIVERED:
                result.delivered += 1
            elif status == FAILED:
                result.failed += 1
            elif status == PENDING:
                result.retried += 1
        return result

    def sweep(self) -> list[str]:
        """End the timed-out sessions (batch by batch); return their sids."""
        runtime = of(self.app)
        ended: list[str] = []
        while True:
            with self.app.app_context():
                batch = sessions.end_timed_out(
                    db.session,
                    now=runtime.clock(),
                    settings=runtime.settings.session,
                    events=runtime.events,
                    limit=SWEEP_BATCH,
                )
                db.session.commit()
            ended.extend(batch)
            if len(batch) < SWEEP_BATCH:
                break
        if ended:
            log.info("ended %d timed-out session(s)", len(ended))
        return ended


def _log_outcome(claimed: outbox.Claim, outcome: outbox.Outcome, status: str | None) -> None:
    if status is None:
        log.warning(
            "outbox message %d (%s): attempt %d ended after its lease; another attempt has the row",
            claimed.id,
            claimed.kind,
            claimed.attempt,
        )
    elif status == FAILED:
        log.error(
            "outbox message %d (%s): gave up after %d attempt(s): %s",
            claimed.id,
            claimed.kind,
            claimed.attempt,
            outcome.error,
        )
    elif status == PENDING:
        log.info(
            "outbox message %d (%s): attempt %d failed; tried again later",
            claimed.id,
            claimed.kind,
            claimed.attempt,
        )


def _wake_running(session: Session) -> None:
    if session.info.pop(outbox.ENQUEUED, False):
        for running in list(_RUNNING):
            running.wake()


def _forget(session: Session) -> None:
    session.info.pop(outbox.ENQUEUED, None)


def _listen_for_commits() -> None:
    # One pair of listeners for the process: db.session is shared by every app.
    if not event.contains(db.session, "after_commit", _wake_running):
        event.listen(db.session, "after_commit", _wake_running)
        event.listen(db.session, "after_rollback", _forget)
