"""What the protocol endpoints skip of the per-request machinery the pages need (issue 12).

Token, introspection, UserInfo, revocation, discovery and JWKS are called by programs, thousands of
times a second at peak, and every sign-in passes through the authorization endpoint; each thing run
on every request costs every one of them. Three such things are
cut here, none of which is a check those endpoints make:

* **Flask-Limiter's hook.** It runs before every request to find the limits of the view, although only a
  few views carry one (the sign-in and password-change POSTs, the captcha, the staff sign-in). For the
  views listed in ``UNLIMITED_ENDPOINTS`` the hook is not run; ``tests/unit/test_lean.py`` fails if one
  of them gets a limit (its own, its blueprint's, or a default one), so none can be skipped by mistake.
* **Flask-Limiter's headers on every limited answer.** With ``RATELIMIT_HEADERS_ENABLED`` it reads the
  window back from the storage (two more Redis round trips) after each sign-in or password-change POST
  to write ``X-RateLimit-*`` headers nobody reads. Only a refusal needs to say when to come back:
  ``retry_after_on_refusal`` gives every 429 of the limiter its ``Retry-After`` (RFC 6585 §4), read
  then.
* **Opening the session cookie.** Flask builds a signing serializer on every request before it even
  looks for the cookie; without the cookie there is nothing to verify, and the session starts empty as
  before.
"""

from __future__ import annotations

import math
import time

from flask import Flask
from flask import Response
from flask import request
from flask.sessions import SecureCookieSessionInterface

from .extensions import limiter

# The views that carry no rate limit and are on the hot path: the hook is not run for them.
UNLIMITED_ENDPOINTS = frozenset(
    {
        # Every sign-in passes through the first, and a consent or a password change through the second.
        "oauth.authorize",
        "oauth.resume",
        "oauth.token",
        "oauth.introspect",
        "oauth.userinfo",
        "oauth.revoke",
        "oauth.discovery",
        # RFC 8414 §3: at the issuer's address, and at the host's root for an issuer with a path (§3.1).
        "oauth.authorization_server_metadata_document",
        "oauth.authorization_server_metadata_of_path",
        "oauth.jwks",
    }
)


def skip_limiter_where_unlimited(app: Flask) -> None:
    """Replace Flask-Limiter's before-request hook (``limiter.init_app`` added it) by one that skips the
    endpoints of ``UNLIMITED_ENDPOINTS``."""
    hooks = app.before_request_funcs.setdefault(None, [])
    check = limiter._check_request_limit  # noqa: SLF001 - the hook init_app registered, by identity

    def check_where_limited() -> None:
        if request.endpoint not in UNLIMITED_ENDPOINTS:
            check()

    hooks[hooks.index(check)] = check_where_limited


def retry_after_on_refusal(response: Response) -> Response:
    """``after_request``: a 429 of the rate limiter says in ``Retry-After`` when its window ends (RFC 6585
    §4, RFC 9110 §10.2.3), at least 1 s. An answer that already says (an outage's 503, the admission's
    429) is left alone."""
    if response.status_code != 429 or "Retry-After" in response.headers:
        return response
    breached = limiter.current_limit
    if breached is None or not breached.breached:
        return response
    try:
        wait = math.ceil(breached.window.reset_time - time.time())
    except Exception:  # noqa: BLE001 - the storage failed since the refusal: the window's length is the bound
        wait = breached.limit.get_expiry()
    response.headers["Retry-After"] = str(max(1, wait))
    return response


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, without building its serializer when there is no cookie."""

    def open_session(self, app, request):
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)
