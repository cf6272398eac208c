"""How the authorization response reaches the client: ``query`` (RFC 6749 §4.1.2, the default of the
code flow) or ``form_post`` (OAuth 2.0 Form Post Response Mode: an auto-submitting HTML form that POSTs
the parameters to the redirect URI, so they stay out of the address bar, history and Referer).

authlib builds every answer as a redirect (``Location`` with the parameters in the query); this turns
such a redirect into the form when the request asked for ``form_post``, for successes and for error
responses alike (Form Post Response Mode §2: "the Authorization Response parameters", which include
errors). authlib's own ``create_response_mode_response`` submits the form from an inline ``onload``
handler, which the Content-Security-Policy of idp/headers.py (``default-src 'self'``) blocks; ours loads
``static/form_post.js`` from our origin, and a button does the same without JavaScript.
"""

from __future__ import annotations

from urllib.parse import parse_qsl
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import render_template

QUERY = "query"
FORM_POST = "form_post"
# What discovery advertises (OIDC Discovery §3 response_modes_supported). ``fragment`` is not offered:
# the code flow has nothing to hide from the server, and a fragment survives redirects it should not.
SUPPORTED = (QUERY, FORM_POST)


def requested(params) -> str:
    """The response mode a request asked for; an unknown or missing one means the default (query), so
    that the error about it can still reach the client (OIDC Core §3.1.2.6)."""
    mode = params.get("response_mode") if params is not None else None
    return mode if mode in SUPPORTED else QUERY


def validate(grant, redirect_uri: str) -> None:
    """OAuth 2.0 Multiple Response Type Encoding Practices §2.1: a mode the server does not support is an
    ``invalid_request``, sent back to the (already validated) redirect URI."""
    mode = grant.request.payload.data.get("response_mode")
    if mode is not None and mode not in SUPPORTED:
        raise InvalidRequestError(
            "Unsupported 'response_mode'.", redirect_uri=redirect_uri, state=grant.request.payload.state
        )


def deliver(response, mode: str):
    """``response`` (a redirect to the client) as the client asked to receive it."""
    if mode != FORM_POST or response.status_code not in (302, 303):
        return response
    parts = urlsplit(response.headers["Location"])
    action = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    # keep_blank_values: an empty state or error_description is still a parameter the client sent or gets.
    fields = parse_qsl(parts.query, keep_blank_values=True)
    page = render_template("oauth/form_post.html", action=action, fields=fields)
    # why: Form Post §5 — the page holds the code; nothing may cache it (headers.py adds no-store for
    # HTML) and it may not be framed (X-Frame-Options and frame-ancestors stay as for every page).
    return page, 200
