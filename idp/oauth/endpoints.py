"""Revocation (RFC 7009), introspection (RFC 7662), UserInfo (OIDC Core §5.3), RP-initiated logout
(OIDC RP-Initiated Logout 1.0) and the bearer-token validator behind UserInfo."""

from __future__ import annotations

from authlib._joserfc_helpers import import_any_key
from authlib.consts import default_json_headers
from authlib.integrations.flask_oauth2 import ResourceProtector as _ResourceProtector
from authlib.integrations.flask_oauth2 import current_token
from authlib.integrations.flask_oauth2 import token_authenticated
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6750 import BearerTokenValidator as _BearerTokenValidator
from authlib.oauth2.rfc6750 import InsufficientScopeError
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from authlib.oidc.core import UserInfoEndpoint as _UserInfoEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint
from flask import g
from joserfc import jwt
from werkzeug.http import parse_options_header

from ..extensions import db
from ..runtime import current
from ..runtime import settings
from . import keys
from . import storage
from .access_tokens import audience_claim
from .claims import loaded
from .claims import requested_claims
from .claims import user_info
from .grants import ALL_AUTH_METHODS
from .grants import CONFIDENTIAL_AUTH_METHODS
from .subjects import subject


class _InsufficientScopeError(InsufficientScopeError):
    def __init__(self, scopes):
        super().__init__()
        self.scopes = scopes

    def get_headers(self):
        # RFC 6750 §3: an error response MUST carry WWW-Authenticate (authlib sends none for this one).
        challenge = f'Bearer error="{self.error}", scope="{" ".join(self.scopes)}"'
        return super().get_headers() + [("WWW-Authenticate", challenge)]


class ResourceProtector(_ResourceProtector):
    """authlib's, plus the bearer token in a form-encoded body (RFC 6750 §2.2), which relying parties
    that cannot set headers (an HTML form, some SDKs) use at UserInfo. authlib reads the Authorization
    header only."""

    def parse_request_authorization(self, request):
        in_body = _form_body_token(request)
        if in_body is None:
            return super().parse_request_authorization(request)
        if request.headers.get("Authorization"):
            # RFC 6750 §3.1: a request that "uses more than one method for including an access token"
            # is an invalid_request.
            raise InvalidRequestError("The access token was sent in more than one way.")
        return self.get_token_validator("bearer"), in_body

    def acquire_token_of(self, request, scopes: list[str]):
        """authlib's ``acquire_token`` for the ``request`` given (Flask's, or the one the protocol front
        builds from the WSGI environ: ``read_front.FrontRequest``) rather than Flask's global one."""
        token = self.validate_request(scopes, request)
        token_authenticated.send(self, token=token)
        g.authlib_server_oauth2_token = token
        return token


def _form_body_token(request) -> str | None:
    # RFC 6750 §2.2: only a single-part application/x-www-form-urlencoded body, and never with GET.
    if request.method == "GET":
        return None
    mimetype = parse_options_header(request.headers.get("Content-Type", ""))[0].lower()
    if mimetype != "application/x-www-form-urlencoded":
        return None
    values = request.form.getlist("access_token")
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequestError("Repeated 'access_token' parameter.")
    return values[0]


class BearerTokenValidator(_BearerTokenValidator):
    def authenticate_token(self, token_string):
        return storage.find_live_token(token_string, "access_token")

    def validate_token(self, token, scopes, request):
        self.check(token, scopes, request)
        if token.jkt:
            # RFC 9449 §7.2: a DPoP-bound token presented as a bearer token is refused.
            raise InvalidTokenError(
                description="This access token is bound to a DPoP key: use the DPoP scheme.", realm=self.realm
            )

    def check(self, token, scopes, request):
        """The checks of any access token, whatever the scheme it came with (``dpop.DPoPTokenValidator``)."""
        try:
            super().validate_token(token, scopes, request)
        except InsufficientScopeError as error:
            raise _InsufficientScopeError(scopes or []) from error
        account = storage.account_of(token)
        if account is None or not account.is_active:
            # A blocked account's tokens stop working at once, not when they expire.
            raise InvalidTokenError(realm=self.realm)


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

    def check_params(self, request, client):
        # RFC 7009 §2.2: "An invalid token type hint value is ignored by the authorization server and
        # does not influence the revocation response" (authlib answers 401 unsupported_token_type).
        if "token" not in request.form:
            raise InvalidRequestError("Missing 'token' parameter.")

    def query_token(self, token_string, token_type_hint):
        # RFC 7009 §2.2: the hint is only a hint; one query searches both kinds.
        return storage.find_token(token_string)

    def revoke_token(self, token, request):
        now = current().clock()
        if storage.digest_matches_refresh(token, request.form.get("token")):
            # RFC 7009 §2.1: revoking a refresh token also invalidates the access tokens of that grant.
            storage.revoke_family(token.family_id, now)
        else:
            token.access_token_revoked_at = token.access_token_revoked_at or now
        db.session.commit()


class IntrospectionEndpoint(_IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def check_params(self, request, client):
        # RFC 7662 §2.1: token_type_hint is only a hint that the server MAY ignore; an unknown value is
        # not an error (authlib answers 401 unsupported_token_type).
        if "token" not in request.form:
            raise InvalidRequestError("Missing 'token' parameter.")

    def query_token(self, token_string, token_type_hint):
        return storage.find_live_token(token_string)

    def check_permission(self, token, client, request):
        # A client learns about its own tokens only (RFC 7662 §4: do not leak other clients' tokens).
        return token.client_id == client.client_id

    def create_endpoint_response(self, request):
        # authlib's, except that the payload is built from the request too: whether the string presented
        # was the row's refresh token or its access token decides the answer. The endpoint object is
        # shared by every request of the app, so nothing of one request is kept on it.
        # Nothing of a client is written here: the cached snapshot, not a copy in the session.
        storage.read_clients_only()
        client = self.authenticate_endpoint_client(request)
        token = self.authenticate_token(request, client)
        payload = self.introspection_payload(token, request.form.get("token"))
        storage.end_read()
        return 200, payload, default_json_headers

    def introspection_payload(self, token, presented: str | None) -> dict:
        if token is None:
            return {"active": False}
        if storage.digest_matches_refresh(token, presented):
            now = current().clock()
            if (
                token.refresh_token_revoked_at
                or not token.refresh_expires_at
                or token.refresh_expires_at <= now
            ):
                return {"active": False}
            return self._payload(token, token.refresh_expires_at, "refresh_token")
        if token.is_expired(now=current().clock()) or token.is_revoked():
            return {"active": False}
        return self._payload(token, token.issued_at + token.expires_in, "access_token")

    def _payload(self, token, expires_at: int, kind: str) -> dict:
        # Loaded with the token (storage.find_live_token): no query.
        account = storage.account_of(token)
        payload = {
            "active": True,
            "scope": token.scope,
            "client_id": token.client_id,
            # RFC 9449 §6.2: a DPoP-bound token says so, with the thumbprint of its key.
            "token_type": ("DPoP" if token.jkt else "Bearer") if kind == "access_token" else "refresh_token",
            "exp": expires_at,
            "iat": token.issued_at,
            "iss": settings().server.issuer,
            # RFC 8707: the resource it was issued for (a JWT's aud); otherwise the client.
            "aud": audience_claim(token.audience) if token.audience else token.client_id,
        }
        if token.jti:
            payload["jti"] = token.jti
        if token.jkt:
            payload["cnf"] = {"jkt": token.jkt}
        if account is not None:
            payload["sub"] = subject(account, storage.client_of(token))
        return payload


class UserInfoEndpoint(_UserInfoEndpoint):
    def __call__(self, request):
        # authlib's, with the client from the client cache and the account loaded with the token
        # (storage.find_live_token): one statement in all (authlib's reads the client and the account).
        # Nothing of a client is written here: the cached snapshot, not a copy in the session.
        storage.read_clients_only()
        token = self.resource_protector.acquire_token_of(request, ["openid"])
        client = storage.query_client(token.client_id)
        if client is None:
            raise InvalidTokenError()
        user_info = self.generate_user_info(storage.account_of(token), token.scope)
        if alg := client.client_metadata.get("userinfo_signed_response_alg"):
            user_info["iss"] = self.get_issuer()
            user_info["aud"] = client.client_id
            key = import_any_key(self.resolve_private_key())
            data = jwt.encode({"alg": alg}, user_info, key, self.get_supported_algorithms())
            storage.end_read()
            return 200, data, [("Content-Type", "application/jwt")]
        storage.end_read()
        return 200, user_info, default_json_headers

    def get_issuer(self):
        return settings().server.issuer

    def generate_user_info(self, user, scope):
        # authlib passes the user and the scope only; the sub (pairwise per client) and the claims asked
        # for with the claims parameter (OIDC Core §5.5) need the token the resource protector has just
        # validated for this request.
        token = current_token._get_current_object()
        result = user_info(user, scope)
        result.update(requested_claims(user, scope, loaded(token.claims, "userinfo")))
        result["sub"] = subject(user, storage.client_of(token))
        return result

    def resolve_private_key(self):
        return keys.cache().signing_key("RS256")


class EndSessionEndpoint(_EndSessionEndpoint):
    """Validation only: ending the session is done by the logout view with the services layer."""

    def get_server_jwks(self):
        return keys.cache().verification_keyset()

    def get_algorithms(self):
        return list(keys.ALGORITHMS)

    def _validate_id_token_hint(self, id_token_hint):
        claims = super()._validate_id_token_hint(id_token_hint)
        # rpinitiated §2: the OP MUST validate that it was the issuer of the ID Token.
        if claims.get("iss") != settings().server.issuer:
            raise InvalidRequestError("'id_token_hint' was not issued by this provider")
        return claims

    def resolve_client_from_id_token_claims(self, id_token_claims):
        aud = id_token_claims.get("aud")
        if isinstance(aud, list) and len(aud) == 1:
            aud = aud[0]
        return self.server.query_client(aud) if isinstance(aud, str) else None

    def end_session(self, end_session_request):
        # why: the view ends the server-side session itself, after the user confirmed where needed.
        pass
