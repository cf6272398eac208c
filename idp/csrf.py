"""CSRF protection of every browser form: Flask-WTF's token, and a same-origin check of the request.

Flask-WTF's own second check on https (``WTF_CSRF_SSL_STRICT``) wants a ``Referer`` of the same host,
and our pages tell browsers to send none (``Referrer-Policy: no-referrer``, idp/headers.py): behind the
TLS proxy every form failed. That check is off; this one takes its place, on the same requests (the
unsafe methods of views not exempt, i.e. not the protocol endpoints relying parties post to):

1. an ``Origin`` header must be the issuer's origin (RFC 6454 §7; OWASP CSRF Prevention Cheat Sheet,
   "Verifying Origin With Standard Headers");
2. browsers send ``Origin: null`` on a form POST from a page with ``Referrer-Policy: no-referrer``
   (Fetch Standard, "append a request Origin header"), so without a real origin ``Sec-Fetch-Site``
   decides (Fetch Metadata): ``same-origin``, or ``none`` (the user's own navigation), is accepted;
   ``same-site`` and ``cross-site`` are refused;
3. with neither header (browsers from before 2020-2023, scripts) the token alone decides, as it did
   before: it is bound to the session, and the session cookie is ``SameSite=Lax``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import g
from flask import request
from flask_wtf.csrf import CSRFError
from flask_wtf.csrf import CSRFProtect

from .runtime import settings

DEFAULT_PORTS = {"http": 80, "https": 443}


class CrossOriginRequestError(CSRFError):
    """A browser form was submitted from a page of another origin: a 403 page, not a flow error."""

    code = 403


ACCEPTED_FETCH_SITES = ("same-origin", "none")


def origin_of(url: str) -> str:
    """The ASCII serialisation of ``url``'s origin as browsers send it (RFC 6454 §6.2): scheme, host and
    a port only when it is not the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    return f"{parts.scheme}://{host}" + (
        f":{port}" if port and port != DEFAULT_PORTS.get(parts.scheme) else ""
    )


def cross_origin_problem(origin: str | None, fetch_site: str | None, expected_origin: str) -> str | None:
    """Why a form submission with these headers does not come from a page of ``expected_origin``, or None."""
    if origin and origin != "null":
        return None if origin == expected_origin else f"Origin {origin} is not {expected_origin}"
    if fetch_site:
        return None if fetch_site in ACCEPTED_FETCH_SITES else f"Sec-Fetch-Site is {fetch_site}"
    return None


class OriginCheckingCSRFProtect(CSRFProtect):
    """Flask-WTF's CSRFProtect, plus the same-origin check on every request whose token it checked."""

    def protect(self, apply_exemptions=False):
        # Flask-WTF marks g.csrf_valid only after it has checked a token: exempt views and safe methods
        # never get here with it set (it is cleared first, for an app context reused across requests).
        g.pop("csrf_valid", None)
        super().protect(apply_exemptions)
        if not g.get("csrf_valid"):
            return
        expected = origin_of(settings().server.issuer)
        problem = cross_origin_problem(
            request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site"), expected
        )
        if problem:
            raise CrossOriginRequestError(problem)
