"""authlib wiring: one authorization server and one resource protector per app.

Everything protocol-shaped lives in this package, and only that: authlib's storage hooks, grants and
endpoints, the signing keys it uses (``keys``), the interaction policy, pending requests, logout tokens,
and OAuth error answers. Rules that are not protocol (client metadata, key management, sessions) are
services it calls; views call into it and render pages.

May import: authlib, joserfc, Flask, ``idp.runtime``, ``idp.extensions``, models, services,
``idp.config``, ``idp.errors``, ``idp.events``, ``idp.crypto``. Must not import: views or the CLI
(tests/unit/test_layers.py checks it).
"""

from __future__ import annotations

from typing import Any

from authlib.common.errors import ContinueIteration
from authlib.common.urls import add_params_to_uri
from authlib.integrations.flask_oauth2 import AuthorizationServer as _AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749 import UnsupportedResponseTypeError
from authlib.oauth2.rfc6749.authenticate_client import authenticate_client_secret_basic as _basic_auth
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import g
from flask import redirect

from ..runtime import of
from ..runtime import settings
from . import dpop
from .access_tokens import TokenBinding
from .client_auth import ClientSecretJWT
from .client_auth import PrivateKeyJWT
from .device import DeviceAuthorizationEndpoint
from .device import DeviceCodeGrant
from .device import OpenIDDeviceToken
from .dpop import DPoPTokenValidator
from .endpoints import BearerTokenValidator
from .endpoints import EndSessionEndpoint
from .endpoints import IntrospectionEndpoint
from .endpoints import ResourceProtector
from .endpoints import RevocationEndpoint
from .endpoints import UserInfoEndpoint
from .grants import AuthorizationCodeGrant
from .grants import ClientCredentialsGrant
from .grants import OpenIDCode
from .grants import OpenIDRefreshToken
from .grants import RefreshTokenGrant
from .grants import S256CodeChallenge
from .par import PushedAuthorizationEndpoint
from .registration import ClientConfigurationEndpoint
from .registration import ClientRegistrationEndpoint
from .storage import create_token_generator
from .storage import query_client
from .storage import save_token

# g key: while set, authlib's answers are returned as it gives them, (status, payload, headers).
_RAW_ANSWERS = "idp_raw_answers"


class AuthorizationServer(_AuthorizationServer):
    def create_oauth2_request(self, request):
        # Lets the authorization view hand over a request rebuilt from stored parameters.
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def endpoint_answer(self, name: str, request: OAuth2Request) -> tuple[int, Any, list]:
        """``create_endpoint_response``'s status, payload and headers, without a Flask ``Response``: for the
        protocol front (``read_front.py``), which builds its answer itself."""
        for endpoint in self._endpoints[name]:
            request = endpoint.create_endpoint_request(request)
            try:
                return endpoint(request)
            except ContinueIteration:
                continue
            except OAuth2Error as error:
                return error(self.get_error_uri(request, error))
        raise RuntimeError(f"no '{name}' endpoint answered")

    def get_authorization_grant(self, request):
        try:
            return super().get_authorization_grant(request)
        except ValueError as exc:
            # authlib passes an unknown response_type on as error_description and raises ValueError when
            # it holds characters RFC 6749 §4.1.2.1 forbids there; unsupported all the same, on our page.
            raise UnsupportedResponseTypeError(request.payload.response_type) from exc

    def create_token_response(self, request=None):
        request = self.create_oauth2_request(request)
        if any(len(values) > 1 for name, values in request.payload.datalist.items() if name != "resource"):
            # RFC 6749 §3.2: parameters MUST NOT be included more than once (§5.2: invalid_request), except
            # resource indicators (RFC 8707 §2.2: several name a token for several resources).
            error = InvalidRequestError("Repeated request parameter.")
            return self.handle_error_response(request, error)
        try:
            dpop.check_token_request(request.headers)
        except OAuth2Error as error:
            return self.handle_error_response(request, error)
        return super().create_token_response(request)

    def token_answer(self, request: OAuth2Request) -> tuple[int, Any, list]:
        """``create_token_response``'s status, payload and headers, without a Flask ``Response``: for the
        protocol front (``read_front.py``), which builds its answer itself."""
        g.setdefault(_RAW_ANSWERS, True)
        try:
            return self.create_token_response(request)
        finally:
            g.pop(_RAW_ANSWERS, None)

    def handle_response(self, status_code, payload, headers):
        if g.get(_RAW_ANSWERS):
            return status_code, payload, headers
        return super().handle_response(status_code, payload, headers)

    def error_redirect(self, error):
        """The redirect for an authorization error whose redirect_uri authlib has validated, with
        ``iss`` (RFC 9207 §2: error responses too); None when it must not redirect."""
        if not error.redirect_uri:
            return None
        _, _, headers = error()
        location = add_params_to_uri(dict(headers)["Location"], [("iss", settings().server.issuer)])
        return redirect(location, code=302)


class Issuer(IssuerParameter):
    def get_issuer(self) -> str:
        return settings().server.issuer


def authenticate_client_secret_basic(query_client, request):
    """authlib's client_secret_basic, except that a malformed Authorization header (nothing after
    "Basic", credentials that are not UTF-8) fails authentication (RFC 6749 §5.2: invalid_client)
    instead of raising."""
    try:
        return _basic_auth(query_client, request)
    except ValueError:
        return None


def init_oauth(app) -> None:
    server = AuthorizationServer()
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.register_token_generator("default", create_token_generator(of(app).settings))
    server.register_client_auth_method("client_secret_basic", authenticate_client_secret_basic)
    server.register_grant(
        AuthorizationCodeGrant,
        [S256CodeChallenge(required=True), OpenIDCode(require_nonce=False), TokenBinding()],
    )
    server.register_grant(RefreshTokenGrant, [OpenIDRefreshToken(), TokenBinding()])
    server.register_grant(ClientCredentialsGrant, [TokenBinding()])
    # RFC 8628: /device/authorize, the page /device, and polling at /token.
    server.register_endpoint(DeviceAuthorizationEndpoint)
    server.register_grant(DeviceCodeGrant, [OpenIDDeviceToken(), TokenBinding()])
    # RFC 7523 §2.2 client assertions (OIDC Core §9).
    server.register_client_auth_method("private_key_jwt", PrivateKeyJWT())
    server.register_client_auth_method("client_secret_jwt", ClientSecretJWT())
    server.register_extension(Issuer())
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(PushedAuthorizationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    server.register_endpoint(EndSessionEndpoint)
    # RFC 7591 / RFC 7592, each request authorised by a token an admin issued: registration is not open.
    server.register_endpoint(ClientRegistrationEndpoint)
    server.register_endpoint(ClientConfigurationEndpoint)
    protector = ResourceProtector()
    bearer = BearerTokenValidator()
    protector.register_token_validator(bearer)
    protector.register_token_validator(DPoPTokenValidator(bearer))
    server.register_endpoint(UserInfoEndpoint(resource_protector=protector))
    app.extensions["idp.authorization"] = server
