"""Protocol endpoints answered in front of Flask (issue 12): introspection (RFC 7662) and UserInfo (OIDC
Core §5.3), and any other endpoint given a ``Route``.

Relying parties and resource servers call these thousands of times a second at peak, and Flask's
per-request machinery (the request and app contexts, routing, the session, the before- and after-request
hooks, a ``Response``) cost them as much as the protocol work. This WSGI layer, between the app's other
middleware (``documents.Documents``, ProxyFix) and Flask, answers a plain request for a route itself, with
authlib's own endpoint classes: it builds authlib's framework-agnostic request (``FrontRequest``, an
``OAuth2Request``) from the environ and the form, calls the endpoint inside an app context (the database
session, the runtime, ``g``), and adds what Flask's hooks add to the same answer, in the same order:
the JSON body as Flask serialises it, ``Content-Length``, the view's own headers (the next DPoP nonce),
``Vary: Origin`` on a CORS endpoint (``cors.ENDPOINTS``), the security headers (``headers.py``) and the
request id (``observability``; in the environ for the access log too). The request's line in the metrics
is counted under the Flask endpoint name, as Flask would. ``tests/oauth/test_read_front.py`` compares its
answers, header by header, with Flask's to the same requests.

What is not plain goes to Flask, untouched (the body is given back): another method (HEAD, the OPTIONS of
a CORS preflight), a query string, a ``Cookie`` (a permanent session would be refreshed), an ``Origin``
(CORS headers depend on the registered clients), a body that is not a form of known length within
``MAX_CONTENT_LENGTH``, a transport authlib refuses (plain http outside loopback), and whatever a route's
handler leaves to Flask (``FlaskNeededError``: a DPoP proof, whose replay check writes; a client
assertion, whose jti is stored). A route's handler only reads, so a request it fails on is served again
by Flask from the start, whose error handling answers it: a database outage is the same 503 as elsewhere.
The token endpoint's front (``front.TokenFront``) cannot do that, its grant writes: a failure there is
answered by Flask's error handlers in a request context made for it.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from io import BytesIO
from typing import Any
from typing import NamedTuple
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import InsecureTransportError
from authlib.oauth2.rfc6749 import OAuth2Payload
from authlib.oauth2.rfc6749 import OAuth2Request
from flask import Flask
from flask import g
from werkzeug.datastructures import EnvironHeaders
from werkzeug.datastructures import MultiDict
from werkzeug.http import HTTP_STATUS_CODES

from ..headers import security_headers
from ..observability import ENVIRON_KEY
from ..observability import REQUEST_ID_HEADER
from ..observability import request_id_for
from ..runtime import of
from . import dpop
from . import storage
from .cors import ENDPOINTS as CORS_ENDPOINTS

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
# Request headers that change what Flask answers: such a request is Flask's.
_FLASKS = ("QUERY_STRING", "HTTP_COOKIE", "HTTP_ORIGIN", "HTTP_TRANSFER_ENCODING")

Headers = list[tuple[str, str]]


class FlaskNeededError(Exception):
    """Raised by a route's handler for a request it leaves to Flask."""


class Answer(NamedTuple):
    """What a handler answers: authlib's status, payload (a dict is serialised as Flask does) and
    headers, and the headers the Flask view sets on the response it got from authlib."""

    status: int
    payload: Any
    headers: Headers
    added: Headers


@dataclass(frozen=True)
class Route:
    """An endpoint the front answers: the Flask endpoint of the same path (for the metrics and the
    CORS and limiter rules), its methods, and the handler of a plain request, which must only read."""

    endpoint: str
    methods: frozenset[str]
    handle: Callable[[FrontRequest], Answer]
    # The handler may have written when it fails: the request cannot be served again by Flask, whose
    # error handlers answer the failure instead (in a request context made for it).
    writes: bool = False


class FrontForm(MultiDict):
    """werkzeug's MultiDict, whose ``get`` of an absent name returns the default without raising and
    catching a werkzeug HTTP exception first (authlib asks for several absent parameters per request)."""

    def get(self, key, default=None, type=None):  # noqa: A002 - MultiDict.get's signature
        if key not in self:
            return default
        return super().get(key, default, type)


class FrontPayload(OAuth2Payload):
    """The parameters of a front request: its form (a front request has no query string)."""

    def __init__(self, form: MultiDict) -> None:
        self._form = form

    @property
    def data(self) -> MultiDict:
        return self._form

    @cached_property
    def datalist(self) -> defaultdict[str, list]:
        values: defaultdict[str, list] = defaultdict(list)
        for key in self._form:
            values[key].extend(self._form.getlist(key))
        return values


class FrontRequest(OAuth2Request):
    """authlib's request built from the WSGI environ, as ``FlaskOAuth2Request`` is from Flask's."""

    def __init__(self, environ: dict, uri: str, form: MultiDict) -> None:
        super().__init__(environ["REQUEST_METHOD"], uri, headers=EnvironHeaders(environ))
        self.environ = environ
        self._form = form
        self.payload = FrontPayload(form)

    @property
    def args(self) -> MultiDict:
        return MultiDict()

    @property
    def form(self) -> MultiDict:
        return self._form


class ReadFront:
    """WSGI middleware in front of ``app``'s own ``wsgi_app``."""

    def __init__(self, app: Flask, wsgi_app: Callable, routes: dict[str, Route]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        # PATH_INFO -> route (below the issuer's path, which idp.urls.IssuerPath has moved out).
        self.routes = routes

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        route = self.routes.get(environ.get("PATH_INFO", ""))
        if route is None or environ.get("REQUEST_METHOD") not in route.methods:
            return self.wsgi_app(environ, start_response)
        if any(environ.get(name) for name in _FLASKS):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        body = self._body(environ)
        if body is None:
            return self.wsgi_app(environ, start_response)
        answered = self._answer(route, environ, body)
        if answered is None:
            environ["wsgi.input"] = BytesIO(body)
            environ.pop(ENVIRON_KEY, None)
            return self.wsgi_app(environ, start_response)
        status, headers, content = answered
        start_response(status, headers)
        of(self.app).metrics.request(
            route.endpoint, environ["REQUEST_METHOD"], int(status[:3]), time.perf_counter() - started
        )
        return [content]

    def _body(self, environ: dict) -> bytes | None:
        """The request's body, read; None when Flask must read it (and it is left unread)."""
        length = environ.get("CONTENT_LENGTH") or ""
        content_type = environ.get("CONTENT_TYPE") or ""
        if environ["REQUEST_METHOD"] == "GET":
            # A GET carries nothing the endpoints read; one with a body is left to Flask.
            return b"" if length in ("", "0") and not content_type else None
        if not content_type and length in ("", "0"):
            return b""
        limit = self.app.config["MAX_CONTENT_LENGTH"]
        if content_type != FORM or not length.isdigit() or int(length) > limit:
            return None
        body = environ["wsgi.input"].read(int(length))
        if len(body) != int(length):
            # The client went away mid-body: Flask's stream says so (400) from what was read.
            environ["wsgi.input"] = BytesIO(body)
            return None
        return body

    def _answer(self, route: Route, environ: dict, body: bytes) -> tuple[str, Headers, bytes] | None:
        """The status line, headers and body of the answer; None when Flask answers instead."""
        host = environ.get("HTTP_HOST") or ""
        if not host or not all(char.isalnum() or char in ".-:[]" for char in host):
            return None
        uri = f"{environ['wsgi.url_scheme']}://{host}{environ.get('SCRIPT_NAME', '')}{environ['PATH_INFO']}"
        try:
            # As werkzeug parses a form (formparser.FormDataParser._parse_urlencoded).
            form = FrontForm(parse_qsl(body.decode(), keep_blank_values=True, errors="werkzeug.url_quote"))
            request = FrontRequest(environ, uri, form)
        except (ValueError, InsecureTransportError):
            # Not UTF-8; or plain http outside loopback, which authlib refuses: as Flask does, then.
            return None
        runtime = of(self.app)
        request_id = request_id_for(environ, runtime.settings.server.proxy_count)
        with self.app.app_context():
            g.request_id = request_id
            try:
                answer = route.handle(request)
                content = _content(self.app, answer.payload)
                headers = _headers(route, answer, content, request_id)
            except FlaskNeededError:
                return None
            except Exception as error:  # noqa: BLE001 - Flask serves the request again, and answers this
                if route.writes:
                    return self._flask_error(environ, body, error, request_id)
                # The class only: a database error's message holds the statement's parameters.
                method = environ["REQUEST_METHOD"]
                log.info("%s %s left to Flask: %s", method, route.endpoint, type(error).__name__)
                return None
        environ[ENVIRON_KEY] = request_id
        return f"{answer.status} {HTTP_STATUS_CODES.get(answer.status, 'unknown').upper()}", headers, content

    def _flask_error(self, environ: dict, body: bytes, error: Exception, request_id: str):
        """Flask's answer to ``error``, raised by a handler that writes: its error handlers (a database
        outage: 503) and after-request hooks, in a request context of this request, inside the handler's
        app context (whose ``g`` holds the request id for the hook that sets it)."""
        environ["wsgi.input"] = BytesIO(body)
        with self.app.request_context(environ):
            answer = self.app.handle_user_exception(error)
            response = self.app.finalize_request(answer, from_error_handler=True)
        environ[ENVIRON_KEY] = request_id
        return response.status, response.headers.to_wsgi_list(), response.get_data()


def _content(app: Flask, payload: Any) -> bytes:
    # As authlib's Flask server answers (handle_response): a dict through Flask's JSON, a str as UTF-8.
    if isinstance(payload, dict):
        payload = app.json.dumps(payload)
    return payload.encode("utf-8") if isinstance(payload, str) else payload


def _headers(route: Route, answer: Answer, content: bytes, request_id: str) -> Headers:
    """The headers Flask would send with ``answer``, in its order: the Response's own (authlib's, then
    Content-Length), the view's, the protocol blueprint's CORS hook, then the app's hooks in reverse
    order of registration: security headers, then the request id."""
    headers = list(answer.headers)
    names = [name.lower() for name, _ in headers]
    if "content-type" not in names:
        raise FlaskNeededError  # werkzeug's default type is not reproduced here
    _set(headers, "Content-Length", str(len(content)))
    for name, value in answer.added:
        _set(headers, name, value)
    if route.endpoint in CORS_ENDPOINTS:
        # cors.add_cors_headers: the answer depends on Origin (a request with one is Flask's).
        if any(name.lower() == "vary" for name, _ in headers):
            raise FlaskNeededError
        headers.append(("Vary", "Origin"))
    mimetype = {name.lower(): value for name, value in headers}["content-type"]
    mimetype = mimetype.split(";", 1)[0].strip().lower()
    headers.extend(security_headers({name.lower() for name, _ in headers}, mimetype))
    _set(headers, REQUEST_ID_HEADER, request_id)
    return headers


def _set(headers: Headers, name: str, value: str) -> None:
    # werkzeug's Headers.__setitem__: the first of that name replaced in place, any other removed.
    lowered = name.lower()
    for index, (existing, _) in enumerate(headers):
        if existing.lower() == lowered:
            headers[index] = (existing, value)
            headers[index + 1 :] = [item for item in headers[index + 1 :] if item[0].lower() != lowered]
            return
    headers.append((name, value))


# ---------------------------------------------------------------------------------------------------
# The routes


def _added() -> Headers:
    # The views wrap both answers in dpop.attach_nonce.
    header = dpop.nonce_header()
    return [header] if header is not None else []


def _introspection(request: FrontRequest) -> Answer:
    if "client_assertion" in request.form or "client_assertion_type" in request.form:
        raise FlaskNeededError  # its jti is stored (client_auth._Assertion.validate_jti)
    server = _server()
    return Answer(*server.endpoint_answer("introspection", request), _added())


def _userinfo(request: FrontRequest) -> Answer:
    scheme = (request.headers.get("Authorization") or "").split(None, 1)[:1]
    if scheme and scheme[0].lower() == "dpop":
        raise FlaskNeededError  # the proof's jti is stored (dpop.validate_proof)
    return Answer(*_server().endpoint_answer("userinfo", request), _added())


def _token(request: FrontRequest) -> Answer:
    # The client_credentials grant only: the code, refresh and device grants claim rows that commit with
    # the token, and their extensions read the session. A client assertion's audience and a DPoP proof's
    # htu are built from the request's URL (url_for), and both store a jti.
    form = request.form
    if (
        form.get("grant_type") != "client_credentials"
        or "client_assertion" in form
        or "client_assertion_type" in form
        or "DPoP" in request.headers
    ):
        raise FlaskNeededError
    storage.read_clients_only()
    return Answer(*_server().token_answer(request), _added())


def _server():
    from ..extensions import authorization

    return authorization._get_current_object()  # noqa: SLF001 - the app's AuthorizationServer


ROUTES = {
    # RFC 6749 §4.4: its grant writes the token (``Route.writes``).
    "/token": Route("oauth.token", frozenset({"POST"}), _token, writes=True),
    "/introspect": Route("oauth.introspect", frozenset({"POST"}), _introspection),
    "/userinfo": Route("oauth.userinfo", frozenset({"GET", "POST"}), _userinfo),
}
