"""OpenID Provider metadata (OIDC Discovery 1.0 §3) and OAuth 2.0 Authorization Server Metadata
(RFC 8414). Lists what works, and nothing else."""

from __future__ import annotations

from flask import current_app

from ..languages import available
from ..models.oauth import ACR_PASSWORD
from ..runtime import settings
from ..services import clients
from ..services import subjects
from ..urls import public_url
from . import dpop
from . import keys
from . import response_modes
from .claims import CLAIMS_SUPPORTED
from .claims import SCOPES_SUPPORTED
from .client_auth import ASYMMETRIC_ALGORITHMS
from .client_auth import HMAC_ALGORITHMS
from .grants import ALL_AUTH_METHODS
from .grants import CONFIDENTIAL_AUTH_METHODS
from .keys import Document
from .keys import document

_DOCUMENT = "idp.discovery_document"

ASSERTION_ALGORITHMS = ASYMMETRIC_ALGORITHMS + HMAC_ALGORITHMS


def _url(endpoint: str) -> str:
    # Built from the configured issuer, never from the request's Host header.
    return public_url(endpoint)


def _par_metadata() -> dict:
    # RFC 9126 §5: only when /par is served.
    par = settings().par
    if not par.enabled:
        return {}
    return {
        "pushed_authorization_request_endpoint": _url("oauth.par_endpoint"),
        "require_pushed_authorization_requests": par.required,
    }


def provider_metadata() -> dict:
    return {
        "issuer": settings().server.issuer,
        "authorization_endpoint": _url("oauth.authorize"),
        "token_endpoint": _url("oauth.token"),
        "userinfo_endpoint": _url("oauth.userinfo"),
        "jwks_uri": _url("oauth.jwks"),
        "end_session_endpoint": _url("logout.end_session"),
        "revocation_endpoint": _url("oauth.revoke"),
        "introspection_endpoint": _url("oauth.introspect"),
        **_par_metadata(),
        # RFC 9449 §5.1: only when DPoP proofs are accepted.
        **({"dpop_signing_alg_values_supported": list(dpop.ALGORITHMS)} if settings().dpop.enabled else {}),
        # RFC 8414 §2: open to holders of an initial access token from an admin (RFC 7591 §3), not to all.
        "registration_endpoint": _url("oauth.register"),
        # RFC 8628 §4: the device authorization grant, for clients registered for its grant type.
        "device_authorization_endpoint": _url("oauth.device_authorize"),
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        # OAuth 2.0 Form Post Response Mode (idp/oauth/response_modes.py).
        "response_modes_supported": list(response_modes.SUPPORTED),
        "grant_types_supported": list(clients.GRANT_TYPES),
        # OIDC Core §8: per client (README "Pairwise subjects").
        "subject_types_supported": list(subjects.SUBJECT_TYPES),
        "id_token_signing_alg_values_supported": list(keys.ALGORITHMS),
        "token_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
        # RFC 8414 §2: present because private_key_jwt and client_secret_jwt are (idp/oauth/client_auth.py).
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": CLAIMS_SUPPORTED
        + ["iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "sid"],
        # OIDC Core §5.5: honoured for the ID token and UserInfo (idp/oauth/claims.py).
        "claims_parameter_supported": True,
        # OIDC Core §2: the one context class, password sign-in (README "Authentication context").
        "acr_values_supported": [ACR_PASSWORD],
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        # select_account shows the sign-in page again, where the person continues as anyone they like.
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        # OIDC Core §3.1.2.1 ui_locales: the pages speak these (idp.languages, views/locale.py).
        "ui_locales_supported": available(),
        "claims_locales_supported": ["ru"],
        "authorization_response_iss_parameter_supported": True,
        # Back-Channel Logout 1.0 §2.1 and Front-Channel Logout 1.0 §3: every logout token and every
        # logout iframe URL carries iss and sid.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
    }


def authorization_server_metadata() -> dict:
    """RFC 8414 §2: the same document. Its OpenID members are registered metadata too (RFC 8414 §7.1.2
    lists OIDC Discovery's), so an OAuth-only client reads what it knows and ignores the rest."""
    return provider_metadata()


def metadata_document() -> Document:
    """``provider_metadata`` as served, built on the app's first request for it: it depends on the
    settings and the URL map only, both fixed for the app's life."""
    built = current_app.extensions.get(_DOCUMENT)
    if built is None:
        built = current_app.extensions[_DOCUMENT] = document(provider_metadata())
    return built
