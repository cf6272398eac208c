"""The provider's place under its issuer, and the absolute URLs it gives programs.

The issuer (``[server] issuer``) is the public base URL, and it may have a path: ``https://host/idp``,
the provider served under ``/idp`` by a reverse proxy that passes the path on unchanged. ``IssuerPath``
moves that path from ``PATH_INFO`` to ``SCRIPT_NAME`` (PEP 3333), so routing sees ``/token`` and every URL
Flask builds — links, form actions, redirects, cookies' paths — carries ``/idp``. A URL for a program
(discovery, ``verification_uri``, a DPoP ``htu``) is the issuer followed by the path below it, never built
from the request's Host header.

RFC 8414 §3.1 puts the OAuth metadata of such an issuer outside its path, at
``/.well-known/oauth-authorization-server/idp``: that request stays at the root (``views/oauth.py``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import has_request_context
from flask import request
from flask import url_for

from .runtime import settings


def issuer_path(issuer: str) -> str:
    """The path of the issuer, without a trailing slash ("" when it has none)."""
    return urlsplit(issuer).path.rstrip("/")


class IssuerPath:
    """WSGI middleware: a request under the issuer's path is served with that path as the script root."""

    def __init__(self, app, prefix: str):
        self.app, self.prefix = app, prefix

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == self.prefix or path.startswith(self.prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
            environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
        return self.app(environ, start_response)


def below_root(path: str) -> str:
    """``path`` (as url_for builds it) without the script root of the request."""
    root = request.script_root if has_request_context() else ""
    return path[len(root) :] if root and path.startswith(root + "/") else path


def public_url(endpoint: str, **values) -> str:
    """The absolute URL of ``endpoint``: the configured issuer and the path below it."""
    return settings().server.issuer + below_root(url_for(endpoint, **values))
