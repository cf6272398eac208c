"""CORS (the Fetch standard's CORS protocol) for the endpoints a browser-based relying party (a single-page
or in-browser app of the cabinet) calls itself: token, UserInfo, revocation, JWKS and the metadata
documents. Never the authorization endpoint, which is navigated to, not fetched, nor the pages.

The allowed origins are the web origins (scheme, host, port) of the redirect URIs registered by enabled
clients: an app that can receive an authorization response at an origin may call the endpoints from it.
No credentials: these endpoints authenticate with tokens and client credentials, never cookies, so
``Access-Control-Allow-Credentials`` is not sent and the cookie of the provider's session never travels.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import request
from sqlalchemy import select

from ..extensions import db
from ..models import OAuth2Client
from ..runtime import current

# Views (endpoint names) that answer cross-origin requests.
ENDPOINTS = {
    "oauth.token",
    "oauth.userinfo",
    "oauth.revoke",
    "oauth.jwks",
    "oauth.discovery",
    "oauth.authorization_server_metadata_document",
    "oauth.authorization_server_metadata_of_path",
}
ALLOW_METHODS = "GET, POST"
# Authorization: bearer tokens and client_secret_basic; DPoP: sender-constrained tokens (RFC 9449 §5).
ALLOW_HEADERS = "Authorization, Content-Type, DPoP"
# What a script may read from an answer besides the safelisted headers: the bearer challenge (RFC 6750
# §3) and a DPoP nonce (RFC 9449 §8).
EXPOSE_HEADERS = "WWW-Authenticate, DPoP-Nonce"
# Seconds a browser may cache a preflight answer.
MAX_AGE = 600


def web_origin(uri: str) -> str | None:
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def allowed_origins() -> frozenset[str]:
    """The web origins of every enabled client's registered redirect URIs, kept per process with the
    clients (``client_cache``: ``[oauth] client_cache_ttl``, forgotten when a client changes here)."""
    return current().clients.origins(db.session, _read_origins)


def _read_origins() -> set[str]:
    origins = set()
    for metadata in db.session.scalars(select(OAuth2Client.client_metadata).filter_by(enabled=True)):
        for uri in (metadata or {}).get("redirect_uris", []):
            origin = web_origin(uri)
            if origin:
                origins.add(origin)
    return origins


def add_cors_headers(response):
    """after_request of the protocol blueprint: CORS headers for an allowed Origin on a CORS endpoint,
    including the answer to a preflight (the automatic OPTIONS of Flask)."""
    if request.endpoint not in ENDPOINTS:
        return response
    # The answer depends on Origin: a shared cache must not hand one origin's answer to another.
    response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if not origin or web_origin(origin) != origin or origin not in allowed_origins():
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = str(MAX_AGE)
    else:
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    return response
