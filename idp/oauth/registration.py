"""Dynamic client registration (RFC 7591) and client management (RFC 7592) on authlib's endpoints.

Only with a token: registration takes an initial access token an admin issued (RFC 7591 §3), and
management the registration access token returned at registration (RFC 7592 §1.2). A missing or bad
token is answered as RFC 6750 §3.1 says: 401, ``invalid_token``, with ``WWW-Authenticate``.
The metadata rules are those of the staff console (``services.client_admin``); this module is wiring.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import JsonPayload
from authlib.oauth2.rfc6749 import JsonRequest
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc7591 import ClientMetadataClaims
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint as _ClientRegistrationEndpoint
from authlib.oauth2.rfc7591 import InvalidClientMetadataError
from authlib.oauth2.rfc7591 import InvalidRedirectURIError
from authlib.oauth2.rfc7592 import ClientConfigurationEndpoint as _ClientConfigurationEndpoint
from authlib.oidc import registration as oidc_registration
from flask import current_app
from flask import request as flask_request
from flask import url_for
from joserfc.errors import JoseError
from sqlalchemy import select

from ..extensions import db
from ..models import OAuth2Client
from ..services import audit
from ..services import client_admin
from ..services import registration
from ..services.client_admin import ClientFieldError

# What a registration response and a read (RFC 7591 §3.2.1, RFC 7592 §3) tell about a client.
PUBLISHED_METADATA = (
    "client_name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "frontchannel_logout_uri",
    "frontchannel_logout_session_required",
    "grant_types",
    "response_types",
    "scope",
    "token_endpoint_auth_method",
    "id_token_signed_response_alg",
)
_REDIRECT_FIELDS = (
    "redirect_uris", "post_logout_redirect_uris", "backchannel_logout_uri", "frontchannel_logout_uri"
)


def _now() -> int:
    return int(time.time())


def _bearer(request) -> str | None:
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _invalid_token(description: str) -> InvalidTokenError:
    return InvalidTokenError(description=description, realm=current_app.config["SERVER_ISSUER"])


def lifetime_limits() -> client_admin.LifetimeLimits:
    cfg = current_app.config
    return client_admin.LifetimeLimits(
        access_token_ttl=cfg["OAUTH_ACCESS_TOKEN_TTL"],
        id_token_ttl=cfg["OAUTH_ID_TOKEN_TTL"],
        refresh_token_ttl=cfg["OAUTH_REFRESH_TOKEN_TTL"],
    )


def client_body(client: OAuth2Client) -> dict:
    metadata = client.client_metadata
    body = {
        "client_id": client.client_id,
        "client_id_issued_at": client.client_id_issued_at,
        "client_secret_expires_at": client.client_secret_expires_at,
    }
    body.update({key: metadata[key] for key in PUBLISHED_METADATA if metadata.get(key) not in (None, "")})
    return body


class _SilentJsonPayload(JsonPayload):
    """The JSON body, or None when it is not JSON (authlib's would raise a 415 or 400 page)."""

    def __init__(self, request):
        self._request = request

    @property
    def data(self):
        return self._request.get_json(silent=True)


class _MetadataMixin:
    """Reads metadata with the console's rules first, then authlib's RFC 7591 and OIDC Registration
    claim checks (against discovery's *_supported lists) for the rest."""

    def __init__(self, server=None):
        super().__init__(server, claims_classes=[ClientMetadataClaims, oidc_registration.ClientMetadataClaims])

    def create_endpoint_request(self, request):
        json_request = JsonRequest(flask_request.method, flask_request.url, flask_request.headers)
        json_request.payload = _SilentJsonPayload(flask_request)
        return json_request

    def get_server_metadata(self):
        from .discovery import provider_metadata

        return provider_metadata()

    def extract_client_metadata(self, request):
        data = request.payload.data
        if not isinstance(data, dict) or not data:
            raise InvalidRequestError("The body must be a JSON object of client metadata.")
        try:
            request.client_input = registration.client_input(data)
            client_admin.check(request.client_input, lifetime_limits())
        except ClientFieldError as error:
            # RFC 7591 §3.2.2: a bad redirect URI has its own error code.
            kind = InvalidRedirectURIError if error.field in _REDIRECT_FIELDS else InvalidClientMetadataError
            raise kind(f"{error.field}: {error.reason}") from error
        # authlib's claim classes check the rest of RFC 7591 §2 and OIDC Registration §2; only their
        # verdict matters, the values stored are the ones read above.
        server_metadata = self.get_server_metadata()
        for claims_class in self.claims_classes:
            options = claims_class.get_claims_options(server_metadata)
            claims = claims_class(data, {}, options, server_metadata)
            try:
                claims.validate()
            except JoseError as error:
                # RFC 6749 §5.2: no double quote or backslash in error_description.
                raise InvalidClientMetadataError(str(error.description).replace('"', "'")) from error
        return {}


class ClientRegistrationEndpoint(_MetadataMixin, _ClientRegistrationEndpoint):
    """POST /register (RFC 7591 §3.1)."""

    def authenticate_token(self, request):
        token = _bearer(request)
        if token is None:
            raise _invalid_token("An initial access token is required.")
        row = registration.redeem_initial_token(db.session, token, now=_now())
        if row is None:
            raise _invalid_token("The initial access token is unknown, expired, revoked or used.")
        return row

    def generate_client_info(self, request):
        # why: the client_id and secret come from services.clients.create_client, in save_client.
        return {}

    def save_client(self, client_info, client_metadata, request):
        initial = request.credential
        actor = audit.Actor("initial_token", initial.id, initial.label)
        ctx = audit.Context(actor, flask_request.remote_addr, _now())
        client, secret = client_admin.create(db.session, ctx, request.client_input, limits=lifetime_limits())
        request.client_secret = secret
        return client

    def generate_client_registration_info(self, client, request):
        token = registration.issue_registration_token(db.session, client.client_id, now=_now())
        db.session.commit()
        body = client_body(client)
        if request.client_secret:
            body["client_secret"] = request.client_secret
        body["registration_access_token"] = token
        body["registration_client_uri"] = configuration_uri(client.client_id)
        return body


def configuration_uri(client_id: str) -> str:
    # Built from the issuer, never from the request's Host header.
    return current_app.config["SERVER_ISSUER"] + url_for("oauth.client_configuration", client_id=client_id)


def _path_client_id(request) -> str:
    return urlsplit(request.uri).path.rstrip("/").rsplit("/", 1)[-1]


class ClientConfigurationEndpoint(_MetadataMixin, _ClientConfigurationEndpoint):
    """GET, PUT and DELETE /register/<client_id> (RFC 7592 §2)."""

    def authenticate_token(self, request):
        token = _bearer(request)
        if token is None:
            raise _invalid_token("A registration access token is required.")
        row = registration.find_registration_token(db.session, token)
        # RFC 7592 §2: a token for another client is as invalid for this one as an unknown token.
        if row is None or row.client_id != _path_client_id(request):
            raise _invalid_token("The registration access token is not valid for this client.")
        request.presented_token = token
        return row

    def authenticate_client(self, request):
        return db.session.scalar(select(OAuth2Client).filter_by(client_id=_path_client_id(request)))

    def revoke_access_token(self, request, token):
        client_admin.revoke_registration_tokens(db.session, token.client_id, now=_now())
        db.session.commit()

    def check_permission(self, client, request):
        # An admin disabled it: the client may not read or change itself until an admin enables it.
        return client.enabled

    def introspect_client(self, client):
        return client_body(client)

    def generate_client_registration_info(self, client, request):
        # RFC 7592 §3: the same token, which this provider does not rotate.
        return {
            "registration_client_uri": configuration_uri(client.client_id),
            "registration_access_token": request.presented_token,
        }

    def _context(self, client) -> audit.Context:
        return audit.Context(audit.Actor.client(client.client_id), flask_request.remote_addr, _now())

    def update_client(self, client, client_metadata, request):
        try:
            client_admin.update_client(
                db.session, self._context(client), client, request.client_input, limits=lifetime_limits()
            )
        except ClientFieldError as error:
            raise InvalidClientMetadataError(f"{error.field}: {error.reason}") from error
        db.session.commit()
        return client

    def delete_client(self, client, request):
        client_admin.delete_client(db.session, self._context(client), client)
        db.session.commit()
