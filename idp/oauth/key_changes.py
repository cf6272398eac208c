"""The change notifications of the key set on PostgreSQL: one listener thread per worker process.

A trigger on ``signing_keys`` (migration ``d4b2e7a9c1f3``) sends ``pg_notify`` on ``CHANNEL`` for every
statement that changes the rows, whoever runs it (``idp keys``, the console, SQL typed by hand); PostgreSQL
delivers it at the commit (and drops it on a rollback). The listener holds a connection of its own, in
autocommit, that LISTENs on the channel, and bumps ``version`` on each notification; the key cache
(``oauth.keys``) reloads when the version it loaded at is behind. So a request no longer asks the database
whether the keys changed (issue 12), and a rotation still reaches every worker at once (issue 10).

``live`` is true only between a confirmed LISTEN and the first sign of trouble on the connection. While
it is false (start-up, an error, an outage, the wait before reconnecting), the cache falls back to the
per-request stamp query, so a change made meanwhile is not missed. Reconnecting bumps ``version`` before
``live`` turns true: the next request checks the stamp once, which covers whatever was committed while
nobody listened; from then on, notifications do.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import Any

import psycopg

from ..services.keys import CHANGED_CHANNEL as CHANNEL

log = logging.getLogger(__name__)

# How long one wait for notifications lasts before the thread looks at its stop flag, seconds.
POLL = 0.5
# Reconnect backoff, seconds: first wait, then doubling up to the last.
FIRST_BACKOFF = 0.2
MAX_BACKOFF = 5.0
# How long exit waits for the thread (it notices the stop flag within POLL).
STOP_WAIT = 2.0
# why: a connection that dies silently (a NAT or firewall dropping it, no FIN) would leave ``live`` true
# while notifications no longer arrive; TCP keepalives and a user timeout bound how long that lasts.
_LIVENESS = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2}


class KeyListener:
    """LISTEN for key changes on a connection of its own, in a daemon thread of this process."""

    def __init__(self, connect_args: tuple, connect_kwargs: dict[str, Any]) -> None:
        self._args = connect_args
        self._kwargs = {**_LIVENESS, **connect_kwargs, "autocommit": True}
        self.pid = os.getpid()
        # Bumped on every notification and on every (re)connection; read without a lock (one int).
        self.version = 0
        self.live = False
        # The listening connection's server process (tests end it with pg_terminate_backend).
        self.backend_pid: int | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="idp-key-listener", daemon=True)
        self._thread.start()
        atexit.register(self.stop, STOP_WAIT)

    def stop(self, timeout: float = 0.0) -> None:
        """Stop listening; with a ``timeout``, wait that long for the thread and its connection to end."""
        self.live = False
        self._stopping.set()
        thread = self._thread
        if timeout and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(*self._args, **self._kwargs)

    def _run(self) -> None:
        backoff = FIRST_BACKOFF
        failing = False
        while not self._stopping.is_set():
            try:
                with self.connect() as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.backend_pid = connection.info.backend_pid
                    # Anything committed before the LISTEN was never notified: the next request checks
                    # the stamp once (the cache is behind this version), then notifications take over.
                    self.version += 1
                    self.live = True
                    if failing:
                        log.warning("key change listener: listening again")
                        failing = False
                    backoff = FIRST_BACKOFF
                    while not self._stopping.is_set():
                        for _ in connection.notifies(timeout=POLL):
                            self.version += 1
            except Exception as error:  # noqa: BLE001 - an outage must not end the thread; requests fall back
                self.live = False
                if not failing and not self._stopping.is_set():
                    log.warning(
                        "key change listener: not listening (%s); each request checks the key stamp",
                        type(error).__name__,
                    )
                    failing = True
            finally:
                self.live = False
                self.backend_pid = None
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
