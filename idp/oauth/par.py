"""Pushed authorization requests (RFC 9126) on authlib's ``Endpoint``.

* ``POST /par``: the client authenticates as at the token endpoint (a public client with its
  ``client_id``), its authorization request is validated as ``/authorize`` would validate it (client,
  redirect URI, response type, scope, PKCE, unsupported parameters), and kept behind a
  ``request_uri`` (``urn:ietf:params:oauth:request_uri:`` + 256 random bits; only its digest is stored)
  for ``[par] request_uri_ttl`` seconds. Answer: 201 ``{"request_uri", "expires_in"}`` (§2.2).
* ``/authorize?client_id=…&request_uri=…`` takes the pushed parameters, and only those (§4): the
  request_uri is claimed atomically on its first use, for its own client, before it expires; afterwards
  it is ``invalid_request_uri``. The request then goes through sign-in and consent as any other, kept
  on the server meanwhile: the session holds only the row's id (``pending.py``), and the row, spent,
  lives ``[oauth] interaction_ttl`` more seconds, or until the request is answered.
* A client registered with ``require_pushed_authorization_requests``, or every client with
  ``[par] required``, is refused at ``/authorize`` without a pushed request (§5).
* A DPoP proof sent with the push (RFC 9449 §10.1) binds the code to its key: it is stored as the
  request's ``dpop_jkt`` (a ``dpop_jkt`` pushed beside it must name the same key).
* Request objects stay refused, pushed or not (no JAR, RFC 9101): ``request`` is
  ``request_not_supported``; ``request_uri`` inside a pushed request is ``invalid_request`` (§2.1).
"""

from __future__ import annotations

from authlib.consts import default_json_headers
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749.endpoint import Endpoint
from authlib.oidc.core.errors import RequestNotSupportedError
from sqlalchemy import select
from sqlalchemy import update
from werkzeug.datastructures import MultiDict

from ..crypto import digest
from ..crypto import new_secret
from ..extensions import db
from ..models import PushedRequest
from ..models.base import affected_rows
from ..runtime import current
from ..runtime import settings
from . import dpop
from .grants import ALL_AUTH_METHODS
from .interaction import ParamsRequest

URN_PREFIX = "urn:ietf:params:oauth:request_uri:"
# Parameters of client authentication: they authenticate the push and are not part of the request.
_AUTHENTICATION_PARAMS = ("client_secret", "client_assertion", "client_assertion_type")
# Bounds what is stored for one pushed request: room for a long ``claims``, many scopes and a long
# ``state`` (the point of pushing, §1), well under the request body limit (MAX_CONTENT_LENGTH, 64 KiB).
MAX_PARAMS_BYTES = 32768


class InvalidRequestURIError(OAuth2Error):
    """OIDC Core §3.1.2.6 / RFC 9126 §4: the request_uri is unknown, expired, used or another client's."""

    error = "invalid_request_uri"


class PushedAuthorizationEndpoint(Endpoint):
    ENDPOINT_NAME = "pushed_authorization"
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

    def create_endpoint_response(self, request):
        client = self.server.authenticate_client(request, self.CLIENT_AUTH_METHODS, self.ENDPOINT_NAME)
        form = request.form
        params = [
            (key, value)
            for key, values in request.payload.datalist.items()
            for value in values
            if key not in _AUTHENTICATION_PARAMS
        ]
        if form.get("client_id") not in (None, client.client_id):
            raise InvalidClientError(description="'client_id' is not the authenticated client.")
        if "request_uri" in form:
            raise InvalidRequestError("'request_uri' is not allowed in a pushed authorization request.")
        if "request" in form:
            raise RequestNotSupportedError()
        if sum(len(k) + len(v) for k, v in params) > MAX_PARAMS_BYTES:
            raise InvalidRequestError("The pushed authorization request is too large.")
        if "client_id" not in form:
            params.append(("client_id", client.client_id))
        # RFC 9449 §10.1: a DPoP proof with the push binds the code to its key (as dpop_jkt).
        dpop.bind_pushed_request(request.headers, params)
        # Validated now as /authorize will validate it again (nothing stored is trusted unchecked).
        oauth_request = ParamsRequest("POST", request.uri, request.headers, MultiDict(params))
        oauth_request.pushed = True
        try:
            self.server.get_consent_grant(request=oauth_request, end_user=None)
        except OAuth2Error as error:
            # RFC 9126 §2.3: the error is the answer to this POST (JSON), never a redirect.
            error.redirect_uri = None
            raise
        now = current().clock()
        ttl = settings().par.request_uri_ttl
        reference = new_secret(32)
        db.session.add(
            PushedRequest(
                request_uri_hash=digest(reference),
                client_id=client.client_id,
                params=[list(pair) for pair in params],
                created_at=now,
                expires_at=now + ttl,
            )
        )
        db.session.commit()
        body = {"request_uri": URN_PREFIX + reference, "expires_in": ttl}
        return 201, body, default_json_headers


def resolve(params: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int | None]:
    """The parameters of an authorization request, and the id of the pushed request they come from: for a
    ``request_uri`` from /par, the pushed ones (claimed now, once); otherwise those given, and None."""
    values = MultiDict(params)
    request_uri = values.get("request_uri")
    ours = isinstance(request_uri, str) and request_uri.startswith(URN_PREFIX)
    if not ours or not settings().par.enabled:
        # Not one of ours (a request object by reference, RFC 9101): the grant refuses it
        # (request_uri_not_supported, to the client's redirect URI).
        return params, None
    client_id = values.get("client_id")
    if not client_id:
        raise InvalidRequestURIError("'client_id' is missing beside 'request_uri'.")
    now = current().clock()
    row = db.session.scalar(
        select(PushedRequest).filter_by(request_uri_hash=digest(request_uri[len(URN_PREFIX) :]))
    )
    if row is None or row.client_id != client_id or row.expires_at <= now:
        raise InvalidRequestURIError("'request_uri' is unknown, expired or not this client's.")
    claimed = affected_rows(
        db.session,
        update(PushedRequest)
        .where(PushedRequest.id == row.id, PushedRequest.used_at.is_(None))
        # The request_uri is spent; the row now stands for the request while the user signs in and
        # consents (pending.py keeps only its id in the session), so it lives as long as that may take.
        .values(used_at=now, expires_at=now + settings().oauth.interaction_ttl),
    )
    db.session.commit()
    if not claimed:
        raise InvalidRequestURIError("'request_uri' has been used already.")
    return [(key, value) for key, value in row.params], row.id
