"""What an access token is for and to whom it is bound: resource indicators (RFC 8707), JWT access tokens
(RFC 9068) and the DPoP key binding (RFC 9449 §6), on authlib's token generator and grant hooks.

* ``resource`` at the token endpoint names the audience. The rule: each must be one of the client's
  ``allowed_resources`` (RFC 8707 §2: the server decides which resources a client may ask for); it may
  be repeated (§2.2, at most ``MAX_RESOURCES``), and then ``aud`` is their list; otherwise
  ``invalid_target``. Without it the audience is ``[access_tokens] audience``, or the issuer when that
  is empty. A refresh without ``resource`` keeps the audience of the token it refreshes.
* ``resource`` at /authorize, in a pushed request and at /device/authorize: one or more, each checked
  by the same rule (``invalid_target``, to the redirect URI where there is one), bound to the code (or
  device code) and kept by the tokens of its family. They are then the audience when the token request
  names none, and the ``resource`` values at the token endpoint (for the code, or a refresh) must be
  among them (§2.2): naming a subset narrows the token.
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

    audience: str | list[str]
    jkt: str | None = None
    jti: str | None = None
    stored_audience: str | None = None
    # RFC 8707 §2.2: the resources granted at /authorize, kept with the tokens for their refreshes.
    granted: list[str] | None = None


# Bounds how many resources one request (authorization, device authorization or token) may name.
MAX_RESOURCES = 10


def default_audience() -> str:
    return settings().access_tokens.audience or settings().server.issuer


def _checked_resource(resource, client, **error) -> str:
    parts = urlsplit(resource) if isinstance(resource, str) else None
    if parts is None or not parts.scheme or not parts.netloc or parts.fragment or "#" in resource:
        raise InvalidTargetError("'resource' must be an absolute URI without a fragment.", **error)
    if resource not in client.allowed_resources:
        raise InvalidTargetError("The client may not request tokens for this resource.", **error)
    return resource


def authorization_resources(grant, redirect_uri: str) -> list[str]:
    """The ``resource`` values of an authorization request (RFC 8707 §2), checked as at the token
    endpoint; ``invalid_target`` is sent to the client's redirect URI (§2)."""
    error = {"redirect_uri": redirect_uri, "state": grant.request.payload.state}
    return checked_resources(grant.request, grant.request.client, **error)


def checked_resources(request, client, **error) -> list[str]:
    """The ``resource`` values of a request, each checked, without duplicates (the order kept)."""
    values = request.payload.datalist.get("resource") or []
    if len(values) > MAX_RESOURCES:
        raise InvalidTargetError("Too many 'resource' values.", **error)
    checked = [_checked_resource(value, client, **error) for value in values]
    return list(dict.fromkeys(checked))


def stored_resources(resources: list[str]) -> str | None:
    return " ".join(resources) or None


def loaded_resources(value: str | None) -> list[str]:
    return value.split() if value else []


def audience_claim(value: str) -> str | list[str]:
    """A stored audience (space-separated) as the ``aud`` claim: a string for one, a list for more."""
    audiences = value.split()
    return audiences[0] if len(audiences) == 1 else audiences


def requested_audience(
    request, client, inherited: str | None = None, granted: list[str] | None = None
) -> str | list[str]:
    """The audience of the token a token request asks for (RFC 8707 §2.2), or ``invalid_target``."""
    values = request.payload.datalist.get("resource") or []
    if not values:
        if inherited:
            return audience_claim(inherited)
        if granted:
            # §2.2: without a resource at the token endpoint, the token is for all those granted.
            return granted[0] if len(granted) == 1 else list(granted)
        return default_audience()
    resources = checked_resources(request, client)
    if granted and any(resource not in granted for resource in resources):
        # §2.2: only resources granted with the authorization (the code, or the refresh token's family);
        # several name a token for all of them, a subset narrows it.
        raise InvalidTargetError("The resource was not granted with this authorization.")
    return resources[0] if len(resources) == 1 else resources


class TokenBinding:
    """Grant extension: once a token request is valid, and before authlib generates the token, decide
    its audience (RFC 8707) and DPoP key (RFC 9449, ``dpop.bind_token_request``)."""

    def __call__(self, grant):
        grant.register_hook("before_create_token_response", self.bind)

    def bind(self, grant) -> None:
        request = grant.request
        parent = request.refresh_token
        code = request.authorization_code
        inherited = getattr(parent, "audience", None) if parent is not None else None
        source = parent if parent is not None else code
        granted = loaded_resources(getattr(source, "resources", None)) if source is not None else []
        explicit = bool(request.payload.datalist.get("resource"))
        audience = requested_audience(request, request.client, inherited, granted)
        binding = Binding(audience=audience, granted=granted or None)
        # Stored (and reported by introspection) when it was chosen: a resource named now or before,
        # or a JWT whose aud says it. Otherwise an opaque token's audience stays its client.
        chosen = explicit or inherited or granted or request.client.access_token_format == "jwt"
        binding.stored_audience = (
            (" ".join(audience) if isinstance(audience, list) else audience) if chosen else None
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
