"""Probes and metrics for operators: /healthz, /readyz, /metrics.

Cheap on purpose: no cookie session is read or written, no page is rendered (so no language is
chosen), and no rate limit is counted (a load balancer probes often, and Redis being down must show in
/readyz, not break it).

* ``GET /healthz``: the process answers (liveness: restart it if not). Touches nothing else.
* ``GET /readyz``: this process can serve (readiness: send it traffic or not): the database answers,
  a signing key is active for every algorithm, and the rate-limit storage (Redis) answers when one is
  configured. 200 ``{"status": "ready"}``, or 503 ``{"status": "unavailable", "reasons": [...]}``.
* ``GET /metrics``: Prometheus text format (``idp.metrics``), only from ``[metrics] allow_from`` or
  with the bearer token ``[metrics] token``.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import request
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import csrf
from ..extensions import db
from ..extensions import limiter
from ..metrics import CONTENT_TYPE
from ..runtime import current
from ..services import keys as key_service

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)
# Nothing here changes anything (no CSRF token), and probes are not rate-limited.
csrf.exempt(bp)
limiter.exempt(bp)


@bp.route("/healthz")
def healthz():
    return _no_store(jsonify(status="ok"))


@bp.route("/readyz")
def readyz():
    reasons = _database_reasons() + _rate_limit_reasons()
    if reasons:
        response = jsonify(status="unavailable", reasons=reasons)
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return _no_store(response)
    return _no_store(jsonify(status="ready"))


def _database_reasons() -> list[str]:
    now = current().clock()
    try:
        published = key_service.published(db.session, now=now)
    except SQLAlchemyError as error:
        # The class says enough (connection refused, timeout); the message may name the server.
        log.warning("readiness: the database does not answer: %s", type(error).__name__)
        db.session.rollback()
        return ["database unreachable"]
    active = {row.alg for row in published if row.activates_at <= now}
    return [f"no active {alg} signing key" for alg in key_service.ALGORITHMS if alg not in active]


def _rate_limit_reasons() -> list[str]:
    if current().settings.rate_limits.storage_uri.startswith("memory://"):
        return []
    try:
        reachable = limiter.storage.check()
    except Exception as error:  # noqa: BLE001 - any failure of the storage client means "not reachable"
        log.warning("readiness: the rate-limit storage check failed: %s", type(error).__name__)
        reachable = False
    return [] if reachable else ["rate-limit storage (Redis) unreachable"]


@bp.route("/metrics")
def metrics():
    settings = current().settings.metrics
    if not (_address_allowed(settings.allow_from) or _token_matches(settings.token)):
        if settings.token:
            response = Response("a bearer token is needed\n", 401, mimetype="text/plain")
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return Response("forbidden\n", 403, mimetype="text/plain")
    return _no_store(Response(current().metrics.exposition(), 200, content_type=CONTENT_TYPE))


def _address_allowed(allowed: tuple[str, ...]) -> bool:
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(entry, strict=False) for entry in allowed)


def _token_matches(token: str) -> bool:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response
