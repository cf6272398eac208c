"""Admission control: how many page requests one client address may have in flight in a worker, and how
many it may start per second (issue 10).

What nginx's ``limit_conn`` does, in the worker: a per-process count of the page requests each client
address has in flight; one over ``[limits] pages_in_flight`` is answered at once, without entering Flask,
with the app's 429 page («Слишком много попыток…», ``Retry-After: 1``). Twenty closed loops from one
address GETting and POSTing the reset form kept every thread of both workers busy, and discovery queued
behind them; now that address holds at most that many threads of each worker, and its other requests cost
the worker about 50 µs each (a match in the URL map, a look-up, the page already rendered).

* **Pages** are every request but those a program sends: the protocol endpoints (the views marked
  ``json_endpoint`` or ``read_by_programs``: /token, /introspect, /userinfo, /revoke, /par,
  /device/authorize, /register, discovery, the JWKS, /openapi.json), static files, and the health and
  metrics endpoints. A relying party's servers legitimately send many of those at once from one address;
  a person's browser sends one page request at a time. A path no route matches is a page (its answer is
  the rendered 404).
* **The count** is of requests in flight only, never of requests over time: it goes up when a page
  request enters and down when its answer has been sent (the server closes the response, PEP 3333) or the
  app raised. Behind the TLS proxy the address is the client's, since this runs behind ProxyFix. An
  address is counted by its key in every per-address limit (``services.net.rate_key``): an IPv6 client
  by its ``[limits] ipv6_prefix`` network, so the addresses of one /64 share the cap and the rate.
* **The rate** (``[limits] pages_per_second``, what nginx's ``limit_req`` does) is a token bucket per
  address: ``rate`` pages a second on average, ``2 × rate`` at once after a quiet moment. The cap alone
  left an address free to fetch pages back to back: twenty closed loops got 1150 reset forms (3.3 ms of
  CPU each) served in 3.6 s, half of the machine's two cores, and discovery waited for that CPU. A bucket
  is forgotten once it is full again, so the table holds the addresses of the last few seconds.
* **The answer** is the app's own error page for 429, rendered once per language and process (at the
  first refusal), without the language switcher (its form carries a CSRF token bound to a session). Its
  language is chosen as ``views.locale`` chooses a page's, without the session or the database: the
  ``ui_locales`` of an /authorize or /logout query, the ``idp_lang`` cookie, ``Accept-Language``,
  Russian. It counts in ``idp_http_requests_total`` (status 429) and ``idp_admission_refusals_total``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from urllib.parse import parse_qs

from flask import Flask
from flask import render_template
from flask_babel import force_locale
from werkzeug.datastructures import LanguageAccept
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.http import parse_accept_header
from werkzeug.http import parse_cookie

from . import messages
from .headers import add_security_headers
from .languages import SOURCE
from .languages import available
from .languages import best_of
from .oauth.errors import is_for_programs
from .observability import ENVIRON_KEY
from .observability import REQUEST_ID_HEADER
from .observability import request_id_for
from .runtime import of
from .services.net import IPV6_PREFIX
from .services.net import rate_key
from .views.locale import COOKIE

# Seconds a refused browser is asked to wait (RFC 9110 §10.2.3): a page request in flight ends in
# milliseconds, so the next try is likely admitted.
RETRY_AFTER = 1
# How often the buckets that are full again are forgotten, seconds.
SWEEP_EVERY = 10.0
# Endpoints no person's browser navigates to (besides the views marked for programs).
_NOT_PAGES = frozenset({"static", "health.healthz", "health.readyz", "health.metrics"})
# Where a flow's own language comes first (views.locale._flow_choice): ``ui_locales`` in the query.
_FLOW_PATHS = frozenset({"/authorize", "/logout"})


class Admission:
    """WSGI middleware in front of Flask's ``wsgi_app`` and behind ProxyFix; ``cap`` page requests in
    flight per client address (0: no cap), ``rate`` page requests per second (0: no rate); with neither,
    the middleware is not installed."""

    def __init__(
        self, app: Flask, wsgi_app: Callable, *, cap: int, rate: int, ipv6_prefix: int = IPV6_PREFIX
    ) -> None:
        self.app = app
        self.ipv6_prefix = ipv6_prefix
        self.wsgi_app = wsgi_app
        self.cap = cap
        self.rate = rate
        self.burst = 2 * rate
        # Monotonic seconds; the tests move it instead of waiting.
        self.clock: Callable[[], float] = time.monotonic
        # Address (its rate_key) -> (tokens left, when they were counted).
        self._buckets: dict[str, tuple[float, float]] = {}
        self._swept = 0.0
        self._lock = threading.Lock()
        self._render_lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        # Script root -> language -> (body, headers without the request id), made at the first refusal.
        self._pages: dict[str, dict[str, tuple[bytes, list[tuple[str, str]]]]] = {}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        endpoint = self._endpoint(environ)
        if endpoint in _NOT_PAGES or self._for_programs(endpoint):
            return self.wsgi_app(environ, start_response)
        address = rate_key(environ.get("REMOTE_ADDR") or "", self.ipv6_prefix)
        with self._lock:
            refused = self._admit(address, self.clock())
        if refused:
            return self._refuse(environ, start_response, endpoint, refused)
        if not self.cap:
            return self.wsgi_app(environ, start_response)
        try:
            body = self.wsgi_app(environ, start_response)
        except BaseException:
            self._release(address)
            raise
        return _Released(body, lambda: self._release(address))

    def _admit(self, address: str, now: float) -> str | None:
        """Count a page request of ``address`` (the caller holds the lock); why it is refused, or None."""
        tokens = 0.0
        if self.rate:
            left, counted = self._buckets.get(address, (self.burst, now))
            tokens = min(self.burst, left + (now - counted) * self.rate)
            if tokens < 1:
                self._buckets[address] = (tokens, now)
                return "rate"
        if self.cap:
            count = self._in_flight.get(address, 0)
            if count >= self.cap:
                return "in_flight"
            self._in_flight[address] = count + 1
        if self.rate:
            self._buckets[address] = (tokens - 1, now)
            if now - self._swept >= SWEEP_EVERY:
                self._sweep(now)
        return None

    def _sweep(self, now: float) -> None:
        """Forget the buckets that have filled up again: they are as if the address had never come."""
        self._swept = now
        full = [
            address
            for address, (left, counted) in self._buckets.items()
            if left + (now - counted) * self.rate >= self.burst
        ]
        for address in full:
            del self._buckets[address]

    def in_flight(self, address: str) -> int:
        """The page requests counted against ``address`` (with the others of its key) in flight in this
        process now."""
        with self._lock:
            return self._in_flight.get(rate_key(address, self.ipv6_prefix), 0)

    def _release(self, address: str) -> None:
        with self._lock:
            count = self._in_flight[address] - 1
            if count:
                self._in_flight[address] = count
            else:
                # Gone when nothing is in flight: the table holds the addresses being served, no more.
                del self._in_flight[address]

    def _endpoint(self, environ: dict) -> str:
        """The endpoint the request is for, as Flask will route it ("none" when no route matches); for a
        method the path does not allow, the endpoint of the same path under an allowed one."""
        adapter = self.app.url_map.bind("localhost", script_name=environ.get("SCRIPT_NAME") or "/")
        path = environ.get("PATH_INFO") or "/"
        try:
            rule, _ = adapter.match(path, environ.get("REQUEST_METHOD", "GET"), return_rule=True)
        except MethodNotAllowed as error:
            try:
                rule, _ = adapter.match(path, (error.valid_methods or ["GET"])[0], return_rule=True)
            except HTTPException:
                return "none"
        except HTTPException:  # no route, or a redirect (a missing trailing slash): a page
            return "none"
        return rule.endpoint

    def _for_programs(self, endpoint: str) -> bool:
        view = self.app.view_functions.get(endpoint)
        return view is not None and is_for_programs(view)

    def _refuse(self, environ: dict, start_response: Callable, endpoint: str, reason: str) -> Iterable[bytes]:
        started = time.perf_counter()
        runtime = of(self.app)
        pages = self._pages.get(environ.get("SCRIPT_NAME", ""))
        if pages is None:
            pages = self._render(environ.get("SCRIPT_NAME", ""))
        body, headers = pages.get(self._language(environ, list(pages)), pages[SOURCE])
        request_id = request_id_for(environ, runtime.settings.server.proxy_count)
        environ[ENVIRON_KEY] = request_id
        start_response("429 Too Many Requests", [*headers, (REQUEST_ID_HEADER, request_id)])
        runtime.metrics.request(
            endpoint, environ.get("REQUEST_METHOD", "GET"), 429, time.perf_counter() - started
        )
        runtime.metrics.admission_refused(reason)
        return [body]

    def _render(self, script_root: str) -> dict[str, tuple[bytes, list[tuple[str, str]]]]:
        """The 429 page in every language, with its headers, for requests under ``script_root``."""
        with self._render_lock:
            pages = self._pages.get(script_root)
            if pages is not None:
                return pages
            pages = {}
            with self.app.test_request_context("/", environ_overrides={"SCRIPT_NAME": script_root}):
                for language in available():
                    with force_locale(language):
                        html = render_template(
                            "error.html", title="429", message=messages.HTTP_ERRORS[429], languages=()
                        )
                    response = self.app.response_class(html, status=429)
                    response.headers["Retry-After"] = str(RETRY_AFTER)
                    add_security_headers(response)
                    pages[language] = (response.get_data(), list(response.headers.items()))
            self._pages[script_root] = pages
            return pages

    @staticmethod
    def _language(environ: dict, languages: list[str]) -> str:
        """The language ``views.locale.select_locale`` would choose, from what the request itself says."""
        if environ.get("PATH_INFO") in _FLOW_PATHS and environ.get("QUERY_STRING"):
            tags = parse_qs(environ["QUERY_STRING"]).get("ui_locales")
            flow = best_of(tags[0], languages) if tags else None
            if flow:
                return flow
        choice = parse_cookie(environ.get("HTTP_COOKIE", "")).get(COOKIE, "").partition(":")[0]
        if choice in languages:
            return choice
        accepted = parse_accept_header(environ.get("HTTP_ACCEPT_LANGUAGE"), LanguageAccept)
        return accepted.best_match(languages, default=SOURCE) or SOURCE


class _Released:
    """The app's answer, passed on as it is; ``release()`` once, when the server closes it."""

    def __init__(self, body: Iterable[bytes], release: Callable[[], None]) -> None:
        self.body = body
        self.release: Callable[[], None] | None = release

    def __iter__(self):
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            release, self.release = self.release, None
            if release is not None:
                release()
