"""Discovery (OIDC Discovery 1.0 §4, RFC 8414 §3) and the JWKS answered in front of Flask (issue 12).

Relying parties fetch these documents more than anything else, and each is a constant: precomputed
bytes with a strong ETag (``keys.Document``). Going through Flask costs them more than the rest of
the request together (routing, the request and app contexts, the hooks, building a ``Response``), so
this WSGI layer answers a plain ``GET`` of exactly those paths itself, with **the answer Flask gave**:
the first request for a path goes through Flask, and its status and headers are kept; later requests
get the same headers and the current bytes, as long as the document's ETag is still the one Flask
served (a new key changes the JWKS, and the next request goes through Flask again). What differs per
request is done here as ``idp.observability`` does it: a request id (``X-Request-Id``, in the environ
for the access log) and the request's line in the metrics.

Everything else goes to Flask: other methods (HEAD, OPTIONS preflights), a query string, an ``Origin``
(the CORS headers depend on the registered clients), ``If-None-Match`` (304), a cookie (a permanent
session would be refreshed), and any failure to get the document (an outage: Flask answers 503).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Iterable

from flask import Flask

from ..observability import ENVIRON_KEY
from ..observability import REQUEST_ID_HEADER
from ..observability import request_id_for
from ..runtime import of
from .discovery import metadata_document
from .keys import Document
from .keys import read_stamp_alone

# Path -> the endpoint that serves it in Flask (for the metrics, as Flask would label it).
ENDPOINTS = {
    "/.well-known/openid-configuration": "oauth.discovery",
    "/.well-known/oauth-authorization-server": "oauth.authorization_server_metadata_document",
    "/jwks.json": "oauth.jwks",
}
# Request headers that change the answer: such a request is Flask's.
_DIFFERENT = ("HTTP_ORIGIN", "HTTP_IF_NONE_MATCH", "HTTP_COOKIE")

Headers = list[tuple[str, str]]


class Documents:
    """WSGI middleware in front of ``app``'s own ``wsgi_app`` (and behind ProxyFix, so that the access log
    sees the client's address either way)."""

    def __init__(self, app: Flask, wsgi_app: Callable) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        # Path -> (the quoted ETag Flask served, its headers with None where X-Request-Id goes).
        self.learned: dict[str, tuple[str, list[tuple[str, str | None]]]] = {}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if (
            path not in ENDPOINTS
            or environ.get("REQUEST_METHOD") != "GET"
            or environ.get("QUERY_STRING")
            or any(name in environ for name in _DIFFERENT)
        ):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        # Learned per script root: under an issuer with a path (idp/urls.py) only /idp/... is served, and
        # the same path at the host's root is Flask's 404.
        key = environ.get("SCRIPT_NAME", "") + path
        learned = self.learned.get(key)
        document = self._document(path) if learned is not None else None
        if learned is None or document is None or learned[0] != f'"{document.etag}"':
            return self._learn(key, environ, start_response)
        runtime = of(self.app)
        request_id = request_id_for(environ, runtime.settings.server.proxy_count)
        environ[ENVIRON_KEY] = request_id
        headers: Headers = [(name, value if value is not None else request_id) for name, value in learned[1]]
        start_response("200 OK", headers)
        runtime.metrics.request(ENDPOINTS[path], "GET", 200, time.perf_counter() - started)
        return [document.body]

    def _document(self, path: str) -> Document | None:
        """The document as Flask would serve it now; None when only Flask can tell (an outage, say)."""
        try:
            with self.app.app_context():
                if path == "/jwks.json":
                    keys = of(self.app).keys
                    read_stamp_alone(keys)
                    return keys.jwks_document()
                return metadata_document()
        except Exception:  # noqa: BLE001 - Flask answers instead, with its own error handling
            return None

    def _learn(self, key: str, environ: dict, start_response: Callable) -> Iterable[bytes]:
        def keep(status: str, headers: Headers, exc_info=None):
            names = [name.lower() for name, _ in headers]
            if (
                status.startswith("200 ")
                and "etag" in names
                and REQUEST_ID_HEADER.lower() in names
                and "set-cookie" not in names
            ):
                etag = headers[names.index("etag")][1]
                marker = REQUEST_ID_HEADER.lower()
                kept = [(name, None if name.lower() == marker else value) for name, value in headers]
                self.learned[key] = (etag, kept)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, keep)
