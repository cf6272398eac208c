"""How ``idp serve`` serves: Flask's development server, or granian with ``--production``.

granian (a Rust HTTP server for WSGI apps) is configured here, in code, from the provider's own
settings, so an operator has one configuration file and no server options to keep in step with it. It
was chosen by measurement over gunicorn (README, "Speed"): its HTTP parsing is Rust, where gunicorn's
gthread worker parses in Python, which halves the CPU of the cheap requests.

* workers and threads from ``[server] workers`` / ``threads`` (see the reasons in ``idp/config.py``):
  each worker process runs ``threads`` blocking threads for the app;
* no ``X-Forwarded-*`` header is read by the server itself; behind proxies the app's ProxyFix takes
  exactly ``[server] proxy_count`` hops of them (the scheme included), and nothing otherwise;
* an access log that never holds a secret, written by the provider (``AccessLog``) rather than by
  granian, whose own log would print the path with the e-mailed recovery token: no query string
  (``id_token_hint`` on ``/logout``, codes in a mistyped redirect), no referrer, the token masked;
* HTTP/1.1 only (what gunicorn spoke, and what a proxy in front speaks to it); no pid file; the one
  folder it writes is the metrics folder (``PROMETHEUS_MULTIPROC_DIR``, or a private temporary one
  removed at exit), where each worker keeps its counters for /metrics to add up (``idp.metrics``);
* a worker that dies is started again (a crash loop stops the server); each worker, once forked, first
  forgets the live values of workers that are gone (``metrics.forget_dead_processes``: granian has no
  hook in the main process for a dead worker, where gunicorn had ``child_exit``), then builds its app
  and starts its own background loop (``idp.background``: outbox delivery and the sweep of timed-out
  sessions);
* under systemd (``Type=notify``) it says READY=1 once it listens, as gunicorn did;
* SIGTERM or SIGINT: the workers stop taking requests, finish those in flight for at most
  ``[server] graceful_timeout`` seconds, then are killed; SIGHUP starts fresh workers one by one.

``run_production`` is the one place that starts the production server.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

from . import logs
from . import metrics
from .config import ConfigError
from .config import Settings

# Paths that carry a secret, and what the access log shows instead (the route's own pattern).
SECRET_PATHS = ((re.compile(r"^/recovery/link/[^/]*"), "/recovery/link/<token>"),)
# The provider's access lines, on standard output (the provider's other lines go to standard error).
ACCESS_LOGGER = "idp.access"
# What granian's workers import when no loader is given; ours (``_load_worker``) builds the app itself.
TARGET = "idp:create_app"


def mask_path(path: str) -> str:
    """``path`` as an access log may show it: a secret in it replaced by the route's pattern."""
    for pattern, shown in SECRET_PATHS:
        path = pattern.sub(shown, path)
    return path


def worker_count(configured: int) -> int:
    """``[server] workers``, where 0 means one per CPU core."""
    return configured or os.cpu_count() or 1


def check_rate_limit_storage(storage_uri: str, workers: int) -> None:
    """Counters in ``memory://`` live in one process: with several workers each one would allow the full
    rate (and several hosts multiply it again)."""
    if workers > 1 and storage_uri.startswith("memory://"):
        raise ConfigError(
            f"[rate_limits] storage_uri: memory:// keeps counters per process, so each of the {workers} "
            "workers would allow the full rate; use Redis (IDP_RATE_LIMITS_STORAGE_URI=redis://host:6379/0) "
            "or run one worker (--workers 1)"
        )


def production_options(settings: Settings, *, host: str, port: int, workers: int | None) -> dict[str, Any]:
    """granian's settings (the keyword arguments of ``granian.Granian``) for the provider's ``settings``;
    refuses unsafe combinations."""
    from granian.constants import HTTPModes
    from granian.constants import Interfaces

    server = settings.server
    count = workers or worker_count(server.workers)
    check_rate_limit_storage(settings.rate_limits.storage_uri, count)
    return {
        "target": TARGET,
        "address": host,
        "port": port,
        "interface": Interfaces.WSGI,
        "http": HTTPModes.http1,
        "websockets": False,
        "workers": count,
        "blocking_threads": server.threads,
        "workers_kill_timeout": server.graceful_timeout,
        "respawn_failed_workers": True,
        # granian's own access log would print the path, with the recovery token: ours is AccessLog.
        "log_access": False,
        "log_dictconfig": GRANIAN_LOGGING,
    }


# granian's own lines (start, stop, a worker's exit) go to the root logger, so that they are formatted
# and masked like the provider's (idp.logs), instead of granian's handler on standard output.
GRANIAN_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {},
    "handlers": {},
    "loggers": {
        "_granian": {"level": "INFO", "propagate": True},
        "granian.access": {"level": "INFO", "propagate": True},
    },
}


def run_production(options: dict[str, Any]) -> None:
    """Start granian with ``options`` and return when it has stopped (SIGTERM or SIGINT: graceful)."""
    from granian import Granian

    given = metrics.multiprocess_dir()
    directory = given or tempfile.mkdtemp(prefix="idp-metrics-")
    metrics.prepare_multiprocess(directory)
    try:
        server = Granian(**options)
        # After the socket is bound and before the workers start: what gunicorn told systemd.
        server.on_startup(lambda: notify_systemd(b"READY=1"))
        server.serve(target_loader=_load_worker)
    finally:
        if not given:
            shutil.rmtree(directory, ignore_errors=True)


def notify_systemd(state: bytes) -> bool:
    """Tell systemd ``state`` (sd_notify(3): a datagram to ``$NOTIFY_SOCKET``) when the unit is
    ``Type=notify``; whether it was sent. Nothing to do without that variable."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address.startswith(("/", "@")):
        return False
    # An address starting with "@" is in Linux's abstract namespace.
    target = "\0" + address[1:] if address.startswith("@") else address
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(target)
        sock.sendall(state)
    return True


def _load_worker(target: str):
    """The WSGI app of one worker, built after the fork: no database connection or thread pool is
    shared between processes."""
    from . import create_app

    metrics.forget_dead_processes()
    app = start_background(create_app())
    app.wsgi_app = AccessLog(app.wsgi_app, access_logger())  # type: ignore[method-assign]
    # The app's own objects (modules, the catalogues, SQLAlchemy's mappers, templates) live as long as
    # the worker: moved out of the collector's generations, a full collection no longer walks them all
    # again and again under load (issue 12: the CPU of a sign-in, averaged over all of them).
    gc.collect()
    gc.freeze()
    return app


def start_background(app):
    """Start the app's background loop (outbox delivery, session sweep: ``idp.background``) unless
    ``[outbox] enabled`` is false; return the app. Each serving process runs its own."""
    from .runtime import of

    runtime = of(app)
    if runtime.settings.outbox.enabled:
        runtime.background.start()
    return app


def access_logger() -> logging.Logger:
    """The logger of the access lines: standard output, the provider's format (``idp.logs``: text or JSON,
    masked, with the request id); call it after ``logs.configure``."""
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        logger.addHandler(_StandardOutput())
    for handler in logger.handlers:
        handler.setFormatter(logging.Formatter("%(message)s"))
    logs.adopt(logger)
    return logger


class _StandardOutput(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is when the line is written (a test may replace it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass


class AccessLog:
    """WSGI middleware writing one access line per request once its answer is sent, built only from what
    may be logged: in text, gunicorn's usual line without query string and referrer, plus the time taken
    (``203.0.113.7 - - [07/Dec/2026:15:30:00 +0000] "GET /login HTTP/1.1" 200 1234 42ms "Mozilla/5.0"``);
    in JSON, an object with ``method``, ``path``, ``status``, ``duration_ms``, ``remote_addr`` and the
    ``request_id`` the client got. The address is read after the app has answered, so behind a proxy it
    is the client's (ProxyFix rewrites the environ)."""

    def __init__(self, app, logger: logging.Logger) -> None:
        self.app = app
        self.logger = logger

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        answer: dict[str, Any] = {}

        def start(status, headers, exc_info=None):
            answer["status"] = status
            answer["headers"] = headers
            return start_response(status, headers, exc_info)

        try:
            body = self.app(environ, start)
        except BaseException:
            self._write(environ, "500", None, started)
            raise
        return _Logged(body, lambda sent: self._write(environ, answer.get("status", "500"), sent, started))

    def _write(self, environ, status: str, sent: int | None, started: float) -> None:
        from .observability import ENVIRON_KEY

        elapsed = time.perf_counter() - started
        method = environ.get("REQUEST_METHOD", "-")
        path = mask_path(environ.get("PATH_INFO") or "")
        code = status.split(" ", 1)[0]
        address = environ.get("REMOTE_ADDR") or "-"
        extra = {"request_id": environ.get(ENVIRON_KEY)}
        if logs.is_json():
            extra.update(
                method=method,
                path=path,
                status=int(code) if code.isdigit() else code,
                duration_ms=round(elapsed * 1000, 1),
                remote_addr=address,
            )
            self.logger.info("%s %s %s", method, path, code, extra=extra)
            return
        # granian names HTTP/1.0 "HTTP/1".
        protocol = environ.get("SERVER_PROTOCOL", "-")
        protocol = "HTTP/1.0" if protocol == "HTTP/1" else protocol
        self.logger.info(
            '%s - - [%s] "%s %s %s" %s %s %dms "%s"',
            address,
            time.strftime("%d/%b/%Y:%H:%M:%S %z"),
            method,
            path,
            protocol,
            code,
            sent if sent else "-",
            int(elapsed * 1000),
            environ.get("HTTP_USER_AGENT", "-"),
            extra=extra,
        )


class _Logged:
    """The app's answer, passed on chunk by chunk, counting the bytes; ``done(sent)`` when the server has
    sent it all and closed it (PEP 3333: the server calls ``close``)."""

    def __init__(self, body, done) -> None:
        self.body = body
        self.done = done
        self.sent = 0

    def __iter__(self):
        for chunk in self.body:
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.done(self.sent)


def run_development(host: str, port: int) -> None:
    """Flask's development server (``make run``): one process, threaded."""
    from werkzeug.serving import run_simple

    from . import create_app

    # why: Flask ignores app.run() inside its own CLI, so the server is started directly.
    run_simple(
        host,
        port,
        start_background(create_app()),
        threaded=True,
        use_reloader=False,
        request_handler=development_request_handler(),
    )


def development_request_handler():
    """werkzeug's request handler, with request lines like the production access log: no query string,
    the recovery token masked, the request id (and in JSON, the same fields as AccessLog's lines)."""
    from werkzeug.serving import WSGIRequestHandler

    from .observability import ENVIRON_KEY

    class DevelopmentRequestHandler(WSGIRequestHandler):
        def log_request(self, code="-", size="-"):
            environ = getattr(self, "environ", None) or {}
            # path and command are missing when the request line was unreadable.
            path = mask_path(urlsplit(getattr(self, "path", "") or "").path)
            path = path.translate(self._control_char_table)
            command = getattr(self, "command", None) or "-"
            status = getattr(code, "value", code)
            logging.getLogger("werkzeug").info(
                '%s "%s %s %s" %s %s',
                self.address_string(),
                command,
                path,
                getattr(self, "request_version", "-"),
                status,
                size,
                extra={
                    "request_id": environ.get(ENVIRON_KEY),
                    "method": command,
                    "path": path,
                    "status": status,
                },
            )

    return DevelopmentRequestHandler
