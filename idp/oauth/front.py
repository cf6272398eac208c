"""The token endpoint's common request answered in front of Flask (issue 12).

A program asking for a token with client credentials (RFC 6749 §4.4) is the busiest caller of
``POST /token``. Flask's per-request machinery (the request context, routing, the before- and
after-request hooks, opening the session) cost it more than the grant itself, so this WSGI layer
answers that request with **the same code the view runs**: authlib's authorization server and its
client_credentials grant (``idp.oauth``), given authlib's framework-agnostic ``OAuth2Request`` built
from the form read here instead of Flask's request. Client authentication, the grant checks, the
scope and resource checks, DPoP's client policy, token generation and storage (hashed), the metrics
and the RFC 6749 §5.2 error answers are those of the Flask view; what the hooks add to the answer is
added here as they do it: the security headers (``idp.headers``), ``Vary: Origin`` (``cors``), the
request id (``X-Request-Id``, in the environ for the access log) and the request's line in the
metrics (``idp.observability``).

Everything else goes to Flask, with the body read here handed on unchanged: another grant type (the
code, refresh and device grants claim rows that commit with the token, and their extensions read the
session), a client assertion (RFC 7523: its audience is built from the request's URL), a DPoP proof
(its ``htu`` likewise), an ``Origin`` (CORS), a cookie (a permanent session would be refreshed), a query
string (authlib reads query and form together), another content type, a body without a length, over
``MAX_CONTENT_LENGTH`` or not UTF-8. An exception that is not an OAuth error (the database down: 503)
is answered by Flask's own error handlers, in a request context made for the purpose.
"""

from __future__ import annotations

import io
import time
from collections import defaultdict
from collections.abc import Callable
from collections.abc import Iterable
from functools import cached_property
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import OAuth2Payload
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from flask import Flask
from flask import g
from werkzeug.datastructures import EnvironHeaders
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.datastructures import MultiDict
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_host

from ..headers import security_headers
from ..observability import ENVIRON_KEY
from ..observability import REQUEST_ID_HEADER
from ..observability import request_id_for
from ..runtime import of
from . import RAW_ANSWERS
from . import dpop
from . import storage

PATH = "/token"
ENDPOINT = "oauth.token"
_FORM = "application/x-www-form-urlencoded"
# Request headers that make the answer Flask's (see the module docstring).
_FLASKS = ("QUERY_STRING", "HTTP_ORIGIN", "HTTP_COOKIE", "HTTP_DPOP", "HTTP_TRANSFER_ENCODING")
_EMPTY: ImmutableMultiDict = ImmutableMultiDict()


class FormPayload(OAuth2Payload):
    """The parameters of a form body, as authlib's Flask payload gives them (``values``: no query string
    here, so the form alone)."""

    def __init__(self, form: MultiDict):
        self._form = form

    @property
    def data(self) -> MultiDict:
        return self._form

    @cached_property
    def datalist(self) -> defaultdict[str, list]:
        return defaultdict(list, {name: list(values) for name, values in self._form.lists()})


class FormRequest(OAuth2Request):
    """authlib's request for a form POST read by this layer."""

    def __init__(self, uri: str, headers: EnvironHeaders, form: MultiDict):
        super().__init__("POST", uri, headers=headers)
        self.payload = FormPayload(form)
        self._form = form

    @property
    def args(self) -> ImmutableMultiDict:
        return _EMPTY

    @property
    def form(self) -> MultiDict:
        return self._form


class TokenFront:
    """WSGI middleware in front of ``app``'s own ``wsgi_app`` (and behind ``Documents``, ``IssuerPath`` and
    ProxyFix, so that paths, script root and the client's address are already the app's)."""

    def __init__(self, app: Flask, wsgi_app: Callable):
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") != PATH
            or environ.get("REQUEST_METHOD") != "POST"
            or any(environ.get(name) for name in _FLASKS)
            or environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != _FORM
        ):
            return self.wsgi_app(environ, start_response)
        length = environ.get("CONTENT_LENGTH", "")
        limit = self.app.config["MAX_CONTENT_LENGTH"]
        if not length.isdigit() or int(length) > limit:
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        body = environ["wsgi.input"].read(int(length)) if int(length) else b""
        form = _form(body) if len(body) == int(length) else None
        if form is None or form.get("grant_type") != "client_credentials" or "client_assertion" in form:
            return self._to_flask(environ, body, start_response)
        try:
            # The URL authlib checks for https (InsecureTransportError): the path is the one matched.
            uri = f"{environ['wsgi.url_scheme']}://{get_host(environ)}{environ.get('SCRIPT_NAME', '')}{PATH}"
            oauth_request = FormRequest(uri, EnvironHeaders(environ), form)
        except InsecureTransportError:
            return self._to_flask(environ, body, start_response)
        with self.app.app_context():
            runtime = of(self.app)
            g.request_started = started
            g.request_id = request_id_for(environ, runtime.settings.server.proxy_count)
            environ[ENVIRON_KEY] = g.request_id
            storage.read_clients_only()
            g.setdefault(RAW_ANSWERS, True)
            server = self.app.extensions["idp.authorization"]
            try:
                status, payload, headers = server.create_token_response(oauth_request)
            except Exception as error:  # noqa: BLE001 - answered by Flask's handlers, as in the view
                return self._flask_error(environ, body, error, start_response)
            answer = self._answer(status, payload, headers)
            runtime.metrics.request(ENDPOINT, "POST", status, time.perf_counter() - started)
            start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN')}", answer[1])
            return [answer[0]]

    def _answer(self, status: int, payload, headers: list) -> tuple[bytes, list[tuple[str, str]]]:
        """The body and headers Flask would send: the JSON as ``handle_response`` and Flask's JSON provider
        write it, and what the view and the hooks add (see the module docstring)."""
        body = (self.app.json.dumps(payload) if isinstance(payload, dict) else payload).encode()
        headers = [*headers, ("Content-Length", str(len(body)))]
        nonce = dpop.nonce_header()
        if nonce is not None:
            headers.append(nonce)
        # As the oauth blueprint's CORS hook: the answer depends on Origin (here: there was none).
        headers.append(("Vary", "Origin"))
        headers.extend(security_headers({name.lower() for name, _ in headers}, _mimetype(headers)))
        headers.append((REQUEST_ID_HEADER, g.request_id))
        return body, headers

    def _to_flask(self, environ: dict, body: bytes, start_response: Callable) -> Iterable[bytes]:
        environ["wsgi.input"] = io.BytesIO(body)
        return self.wsgi_app(environ, start_response)

    def _flask_error(self, environ: dict, body: bytes, error: Exception, start_response: Callable):
        """Flask's answer to ``error`` raised by the view: its error handlers and after-request hooks, in a
        request context of this request (inside the app context, whose ``g`` holds the request's id and
        start for the observation hook)."""
        environ["wsgi.input"] = io.BytesIO(body)
        # The handlers build Flask responses (idp.oauth.errors: authlib's error answers among them).
        g.pop(RAW_ANSWERS, None)
        with self.app.request_context(environ):
            response = self.app.finalize_request(
                self.app.handle_user_exception(error), from_error_handler=True
            )
            return response(environ, start_response)


class _Form(MultiDict):
    """werkzeug's MultiDict, whose ``get`` of an absent name returns the default without raising and
    catching a werkzeug HTTP exception first (authlib asks for several absent parameters per request)."""

    def get(self, key, default=None, type=None):  # noqa: A002 - MultiDict.get's signature
        if key not in self:
            return default
        return super().get(key, default, type)


def _mimetype(headers: list[tuple[str, str]]) -> str:
    for name, value in headers:
        if name.lower() == "content-type":
            return value.partition(";")[0].strip().lower()
    return ""


def _form(body: bytes) -> MultiDict | None:
    """The form as werkzeug parses it for Flask; None for a body that is not UTF-8 (Flask's form is then
    empty: Flask answers)."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return None
    return _Form(parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote"))
