"""What operators see of each request: its id, its line in the metrics, and the log lines it causes.

* **Request id.** Every request gets one, as ``g.request_id``, in every log line it causes and in the
  ``X-Request-Id`` response header, so a user's complaint, the proxy's log and ours meet. Behind a
  proxy (``[server] proxy_count`` > 0) the id the proxy sent in ``X-Request-Id`` is kept (nginx:
  ``proxy_set_header X-Request-Id $request_id;``, which replaces whatever the client sent) if it is 1-64
  characters of ``[A-Za-z0-9._-]``; without a proxy a client's header is ignored (anyone could write
  anything in our logs).
* **Metrics.** Each answer counts in ``idp_http_requests_total`` and ``idp_http_request_duration_seconds``
  by endpoint (the Flask endpoint name, never the path, which can hold a secret) and status.
"""

from __future__ import annotations

import re
import secrets
import time

from flask import Flask
from flask import g
from flask import request

from .runtime import current

REQUEST_ID_HEADER = "X-Request-Id"
# Where the id is kept in the WSGI environ too, for the servers' access lines, written after the app
# has answered (idp.serving).
ENVIRON_KEY = "idp.request_id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def init_request_observation(app: Flask) -> None:
    # First of the before_request hooks: Flask-Limiter's own hook may refuse the request (429, or 503
    # when Redis is down), and that answer too has an id and a duration.
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.after_request(_finish)


def _begin() -> None:
    g.request_started = time.perf_counter()
    g.request_id = request_id_for(request.environ, current().settings.server.proxy_count)
    request.environ[ENVIRON_KEY] = g.request_id


def request_id_for(environ: dict, proxy_count: int) -> str:
    """The id of the request of ``environ``: the proxy's, behind one, if well-formed; else a new one."""
    given = environ.get("HTTP_X_REQUEST_ID", "") if proxy_count else ""
    return given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)


def request_id() -> str | None:
    """The id of the request being handled, if any."""
    return g.get("request_id")


def _finish(response):
    started = g.get("request_started")
    if started is not None:
        endpoint = request.url_rule.endpoint if request.url_rule is not None else "none"
        current().metrics.request(
            endpoint, request.method, response.status_code, time.perf_counter() - started
        )
    if g.get("request_id"):
        response.headers[REQUEST_ID_HEADER] = g.request_id
    return response
