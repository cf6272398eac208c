"""How ``idp serve`` serves: Flask's development server, or gunicorn with ``--production``.

gunicorn is configured here, in code (its ``BaseApplication``), from the provider's own settings, so an
operator has one configuration file and no ``gunicorn.conf.py`` to keep in step with it:

* workers and threads from ``[server] workers`` / ``threads`` (see the reasons in ``idp/config.py``);
* ``forwarded_allow_ips`` follows ``[server] proxy_count``: with no proxy gunicorn believes no
  ``X-Forwarded-*`` header from anyone; behind proxies the app's ProxyFix takes exactly
  ``proxy_count`` hops of them, and gunicorn is told to trust the same front end;
* an access log that never holds a secret: no query string (``id_token_hint`` on ``/logout``, codes in
  a mistyped redirect), no referrer, and the e-mailed recovery token masked in the path;
* no control socket (``$HOME/.gunicorn/gunicorn.ctl`` by default), no pid file; the one folder it
  writes is the metrics folder (``PROMETHEUS_MULTIPROC_DIR``, or a private temporary one removed at
  exit), where each worker keeps its counters for /metrics to add up (``idp.metrics``).
* each worker, once forked, starts its own background loop (``idp.background``: outbox delivery and
  the sweep of timed-out sessions).

``run_production`` is the one place that starts the production server: switching the server or its
worker class (a measured choice) changes that function and ``WORKER_CLASS`` only.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from typing import Any
from urllib.parse import urlsplit

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from . import logs
from . import metrics
from .config import ConfigError
from .config import Settings

# gthread: each worker process serves ``threads`` requests at once, so a request waiting on the SMS
# gateway or SMTP does not hold up sign-ins, while the process count stays at the CPU count that
# bcrypt needs (see [server] workers).
WORKER_CLASS = "gthread"
# Paths that carry a secret, and what the access log shows instead (the route's own pattern).
SECRET_PATHS = ((re.compile(r"^/recovery/link/[^/]*"), "/recovery/link/<token>"),)
# Like the CLF line, without the query string and the referrer, plus the time taken in milliseconds.
ACCESS_LOG_FORMAT = '%(h)s - %(u)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
# The longest request line gunicorn accepts (its maximum); the app refuses query strings over 8 KiB
# with 414 itself (idp/headers.py).
LIMIT_REQUEST_LINE = 8190


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
    """gunicorn's settings for the provider's ``settings``; refuses unsafe combinations."""
    server = settings.server
    count = workers or worker_count(server.workers)
    check_rate_limit_storage(settings.rate_limits.storage_uri, count)
    behind_proxy = server.proxy_count > 0
    return {
        "bind": [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"],
        "workers": count,
        "worker_class": WORKER_CLASS,
        "threads": server.threads,
        "graceful_timeout": server.graceful_timeout,
        # Trust nothing without a proxy. Behind one, the server must be reachable by the proxy only (bind
        # it to loopback or a private address): ProxyFix in the app already believes its X-Forwarded-*
        # whatever the peer, and gunicorn only learns the scheme from it, nothing else.
        "forwarded_allow_ips": "*" if behind_proxy else "",
        "secure_scheme_headers": {"X-FORWARDED-PROTO": "https"} if behind_proxy else {},
        "forwarder_headers": "",
        "limit_request_line": LIMIT_REQUEST_LINE,
        "accesslog": "-",
        "errorlog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "logger_class": AccessLogger,
        "control_socket_disable": True,
        "proc_name": "idp",
        "child_exit": _worker_exited,
    }


def _worker_exited(server, worker) -> None:
    metrics.process_exited(worker.pid)


def run_production(options: dict[str, Any]) -> None:
    """Start gunicorn with ``options`` and return when it has stopped (SIGTERM: graceful; SIGINT: quick)."""
    given = metrics.multiprocess_dir()
    directory = given or tempfile.mkdtemp(prefix="idp-metrics-")
    metrics.prepare_multiprocess(directory)
    try:
        ProductionServer(options).run()
    finally:
        if not given:
            shutil.rmtree(directory, ignore_errors=True)


class ProductionServer(BaseApplication):
    """gunicorn configured from ``options`` alone: no gunicorn.conf.py, no GUNICORN_CMD_ARGS."""

    def __init__(self, options: dict[str, Any]):
        self.options = options
        super().__init__(prog="idp serve --production")

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        # Each worker builds its own app after the fork: no database connection or thread pool is
        # shared between processes.
        from . import create_app

        return start_background(create_app())


def start_background(app):
    """Start the app's background loop (outbox delivery, session sweep: ``idp.background``) unless
    ``[outbox] enabled`` is false; return the app. Each serving process runs its own."""
    from .runtime import of

    runtime = of(app)
    if runtime.settings.outbox.enabled:
        runtime.background.start()
    return app


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
    the recovery token masked, the request id (and in JSON, the same fields as gunicorn's lines)."""
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


class AccessLogger(Logger):
    """gunicorn's logger, with access lines built only from what may be logged, formatted and masked like
    the provider's own lines (``idp.logs``): in JSON, an access line is an object with ``method``,
    ``path``, ``status``, ``duration_ms``, ``remote_addr`` and the ``request_id`` the client got."""

    SAFE_ATOMS = ("h", "l", "u", "t", "s", "m", "H", "b", "B", "a", "T", "D", "M", "L", "p")

    def setup(self, cfg):
        super().setup(cfg)
        # The master configured logging when the `idp` command built its app; workers inherit it.
        logs.adopt(self.error_log)
        logs.adopt(self.access_log)

    def access(self, resp, req, environ, request_time):
        if not logs.is_json():
            return super().access(resp, req, environ, request_time)
        if not self.access_log_enabled:
            return None
        from .observability import ENVIRON_KEY

        atoms = self.atoms(resp, req, environ, request_time)
        self.access_log.info(
            "%s %s %s",
            atoms["m"],
            atoms["U"],
            atoms["s"],
            extra={
                "request_id": environ.get(ENVIRON_KEY),
                "method": atoms["m"],
                "path": atoms["U"],
                "status": int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"],
                "duration_ms": round(request_time.total_seconds() * 1000, 1),
                "remote_addr": atoms["h"],
            },
        )
        return None

    def atoms(self, resp, req, environ, request_time):
        everything = super().atoms(resp, req, environ, request_time)
        path = mask_path(environ.get("PATH_INFO") or "")
        atoms = {name: everything[name] for name in self.SAFE_ATOMS}
        atoms.update(U=path, r=f"{atoms['m']} {path} {atoms['H']}")
        return atoms
