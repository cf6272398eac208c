"""What an access token is for and to whom it is bound: resource indicators (RFC 8707), JWT access tokens
(RFC 9068) and the DPoP key binding (RFC 9449 §6), on authlib's token generator and grant hooks.

* ``resource`` at the token endpoint names the audience. The rule: it must be one of the client's
  ``allowed_resources`` (RFC 8707 §2: the server decides which resources a client may ask for), exactly
  one per request; otherwise ``invalid_target``. Without it the audience is ``[access_tokens] audience``,
  or the issuer when that is empty. A refresh without ``resource`` keeps the audience of the token it
  refreshes.
* A client registered with ``access_token_format = "jwt"`` gets RFC 9068 tokens signed by the provider's
  current RS256 key (``typ: at+jwt``, ``kid``): ``iss``, ``aud``, ``sub``, ``client_id``, ``scope``,
  ``jti``, ``iat``, ``exp`` (and ``cnf.jkt`` when DPoP-bound). They are stored like opaque ones, as a
  digest (and their ``jti``), so introspection answers from the store and revocation works.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from authlib.common.security import generate_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from flask import g
from joserfc.jwk import KeySet

from ..runtime import settings
from . import dpop
from . import keys
from .subjects import subject

JWT_ALG = "RS256"


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: the requested resource is invalid, unknown, or not one this client may name."""

    error = "invalid_target"
    status_code = 400


@dataclass
class Binding:
    """The audience and DPoP key thumbprint of the token being issued in this request."""

    audience: str
    jkt: str | None = None
    jti: str | None = None
    stored_audience: str | None = None


def default_audience() -> str:
    return settings().access_tokens.audience or settings().server.issuer


def requested_audience(request, client, inherited: str | None = None) -> str:
    """The audience of the token a token request asks for (RFC 8707 §2.2), or ``invalid_target``."""
    values = request.payload.datalist.get("resource") or []
    if not values:
        return inherited or default_audience()
    resource = values[0]
    parts = urlsplit(resource) if isinstance(resource, str) else None
    if parts is None or not parts.scheme or not parts.netloc or parts.fragment or "#" in resource:
        raise InvalidTargetError("'resource' must be an absolute URI without a fragment.")
    if resource not in client.allowed_resources:
        raise InvalidTargetError("The client may not request tokens for this resource.")
    return resource


class TokenBinding:
    """Grant extension: once a token request is valid, and before authlib generates the token, decide
    its audience (RFC 8707) and DPoP key (RFC 9449, ``dpop.bind_token_request``)."""

    def __call__(self, grant):
        grant.register_hook("before_create_token_response", self.bind)

    def bind(self, grant) -> None:
        request = grant.request
        parent = request.refresh_token
        inherited = getattr(parent, "audience", None) if parent is not None else None
        explicit = bool(request.payload.datalist.get("resource"))
        audience = requested_audience(request, request.client, inherited)
        binding = Binding(audience=audience)
        # Stored (and reported by introspection) when it was chosen: a resource named now or before,
        # or a JWT whose aud says it. Otherwise an opaque token's audience stays its client.
        binding.stored_audience = (
            audience if explicit or inherited or request.client.access_token_format == "jwt" else None
        )
        set_binding(binding)
        dpop.bind_token_request(grant, binding)


def set_binding(binding: Binding) -> None:
    g.idp_token_binding = binding


def current_binding() -> Binding | None:
    return g.get("idp_token_binding")


class JWTAccessTokens(JWTBearerTokenGenerator):
    """authlib's RFC 9068 generator with this provider's keys, subjects and audience."""

    def __init__(self, issuer: str, expires_in):
        super().__init__(issuer, alg=JWT_ALG, expires_generator=expires_in)

    def get_jwks(self):
        # A set of the one key that signs now, so joserfc puts its kid in the header (the resource
        # server picks the key from the JWKS by it).
        return KeySet([keys.cache().signing_key(JWT_ALG)])

    def get_audiences(self, client, user, scope):
        binding = current_binding()
        return binding.audience if binding else default_audience()

    def get_jti(self, client, grant_type, user, scope) -> str:
        jti = generate_token(32)
        binding = current_binding()
        if binding is not None:
            # save_token stores it with the token's digest.
            binding.jti = jti
        return jti

    def get_extra_claims(self, client, grant_type, user, scope):
        claims: dict = {}
        if user is not None:
            # RFC 9068 §2.2: the subject identifier of the resource owner, as the client knows it (pairwise
            # or public, OIDC Core §8).
            claims["sub"] = subject(user, client)
        binding = current_binding()
        if binding is not None and binding.jkt:
            # RFC 9449 §6.1: the thumbprint of the key the token is bound to.
            claims["cnf"] = {"jkt": binding.jkt}
        return claims
