"""Dynamic client registration (RFC 7591) and client management (RFC 7592) on authlib's endpoints.

Only with a token: registration takes an initial access token an admin issued (RFC 7591 §3), and
management the registration access token returned at registration (RFC 7592 §1.2). A missing or bad
token is answered as RFC 6750 §3.1 says: 401, ``invalid_token``, with ``WWW-Authenticate``.
The metadata rules are those of the console and the command line (``services.clients.check``); this
module is wiring.
"""

from __future__ import annotations

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
from flask import request as flask_request
from joserfc.errors import JoseError
from sqlalchemy import select

from ..errors import ClientDataError
from ..errors import UnsafeURLError
from ..extensions import db
from ..models import OAuth2Client
from ..runtime import current
from ..runtime import settings
from ..services import audit
from ..services import client_secrets
from ..services import clients
from ..services import registration
from ..services.outbound import OutboundPolicy
from ..urls import public_url

# What a registration response and a read (RFC 7591 §3.2.1, RFC 7592 §3) tell about a client.
PUBLISHED_METADATA = (
    "client_name",
    "client_uri",
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
    "subject_type",
    "sector_identifier_uri",
    "jwks",
    "jwks_uri",
    "access_token_format",
    "allowed_resources",
    "require_pushed_authorization_requests",
    "dpop_bound_access_tokens",
)
# RFC 7591 §3.2.2: invalid_redirect_uri is for redirection URIs; a bad logout URI is invalid_client_metadata.
_REDIRECT_FIELDS = ("redirect_uris", "post_logout_redirect_uris")


def _now() -> int:
    return current().clock()


def _bearer(request) -> str | None:
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _invalid_token(description: str) -> InvalidTokenError:
    return InvalidTokenError(description=description, realm=settings().server.issuer)


def outbound_policy() -> OutboundPolicy:
    """The deployment's rule for URIs the provider calls (the app's outbound client's)."""
    return current().outbound.policy


def sealing_key() -> bytes:
    """The key that seals client_secret_jwt secrets (``services.client_secrets``)."""
    return client_secrets.sealing_key(settings().server.secret_key)


def _metadata_error(error: ClientDataError, kind=InvalidClientMetadataError):
    """The RFC 7591 §3.2.2 error for a refused field; the description says why (fixed texts: no double
    quote or backslash, RFC 6749 §5.2)."""
    cause = error.__cause__
    why = cause.explanation if isinstance(cause, UnsafeURLError) else error.reason
    return kind(f"{error.field}: {why}")


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
        super().__init__(
            server, claims_classes=[ClientMetadataClaims, oidc_registration.ClientMetadataClaims]
        )

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
            clients.check(request.client_input, settings().oauth, outbound_policy=outbound_policy())
        except ClientDataError as error:
            # RFC 7591 §3.2.2: a bad redirect URI has its own error code.
            kind = InvalidRedirectURIError if error.field in _REDIRECT_FIELDS else InvalidClientMetadataError
            raise _metadata_error(error, kind) from error
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
        # why: the client_id and secret come from services.clients.create, in save_client.
        return {}

    def save_client(self, client_info, client_metadata, request):
        initial = request.credential
        actor = audit.Actor("initial_token", initial.id, initial.label)
        ctx = audit.Context(actor, flask_request.remote_addr, _now())
        try:
            client, secret = clients.create(
                db.session,
                ctx,
                request.client_input,
                limits=settings().oauth,
                outbound_policy=outbound_policy(),
                fetch=clients.sector_fetch(current().outbound),
                sealing_key=sealing_key(),
            )
        except ClientDataError as error:
            raise _metadata_error(error) from error
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
    return public_url("oauth.client_configuration", client_id=client_id)


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
        clients.revoke_registration_tokens(db.session, token.client_id, now=_now())
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
            clients.update_client(
                db.session,
                self._context(client),
                client,
                request.client_input,
                limits=settings().oauth,
                outbound_policy=outbound_policy(),
                fetch=clients.sector_fetch(current().outbound),
            )
        except ClientDataError as error:
            raise _metadata_error(error) from error
        db.session.commit()
        return client

    def delete_client(self, client, request):
        clients.delete_client(db.session, self._context(client), client)
        db.session.commit()
