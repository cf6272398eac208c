"""HTTP-level failures (404, 405, 413, 429, …) answered as OAuth errors where a client expects one.

A protocol endpoint (the views marked ``json_endpoint``) and a client that asks for JSON get RFC 6749
§5.2's shape, rendered by authlib's ``OAuth2Error``; everyone else gets the HTML error page. Which
endpoints are protocol endpoints is decided by their views, not by URL prefixes.
"""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import Response
from flask import current_app
from flask import request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed

from ..extensions import authorization

_MARK = "idp_json_endpoint"
_READ_BY_PROGRAMS = "idp_read_by_programs"
# Seconds a client is asked to wait before retrying during an outage (RFC 9110 §10.2.3).
RETRY_AFTER = 5


def json_endpoint(view):
    """Mark a view whose clients are programs expecting OAuth JSON errors, whatever goes wrong."""
    setattr(view, _MARK, True)
    return view


def read_by_programs(view):
    """Mark a document that programs fetch (discovery, JWKS): when the provider cannot answer it, the
    503 is JSON. A wrong method or path still gets the page, as for any URL a person may type."""
    setattr(view, _READ_BY_PROGRAMS, True)
    return view


def is_for_programs(view) -> bool:
    """Whether ``view`` is marked as answering programs (``json_endpoint`` or ``read_by_programs``)."""
    return getattr(view, _MARK, False) or getattr(view, _READ_BY_PROGRAMS, False)


class TemporarilyUnavailableError(OAuth2Error):
    """The database or Redis does not answer. ``temporarily_unavailable`` is RFC 6749 §4.1.2.1's code for
    the same situation at the authorization endpoint; at the others it is the natural reading, with 503."""

    error = "temporarily_unavailable"
    status_code = 503

    def get_headers(self):
        return super().get_headers() + [("Retry-After", str(RETRY_AFTER))]


def _view():
    """The view this request was for; for a 405 the view of the same path under another method."""
    rule = request.url_rule
    if rule is None and isinstance(request.routing_exception, MethodNotAllowed):
        methods = request.routing_exception.valid_methods or []
        adapter = current_app.create_url_adapter(request)
        try:
            rule, _ = adapter.match(method=methods[0], return_rule=True)
        except (HTTPException, IndexError):
            return None
    return current_app.view_functions.get(rule.endpoint) if rule is not None else None


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return (
        best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def unavailable_response() -> Response | None:
    """The JSON 503 of an outage for protocol endpoints and programs, or None when a person gets a page."""
    view = _view()
    if not (_wants_json() or is_for_programs(view)):
        return None
    error = TemporarilyUnavailableError(description="The service is temporarily unavailable; retry later.")
    return authorization.handle_error_response(None, error)


def protocol_error_response(error: HTTPException) -> Response | None:
    """The OAuth error answer for ``error``, or None when the client should get a page."""
    if not (_wants_json() or getattr(_view(), _MARK, False)):
        return None
    oauth_error = InvalidRequestError(description=error.name, status_code=error.code)
    return authorization.handle_error_response(None, oauth_error)
