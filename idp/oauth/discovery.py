"""OpenID Provider metadata (OIDC Discovery 1.0 §3) and OAuth 2.0 Authorization Server Metadata
(RFC 8414). Lists what works, and nothing else."""

from __future__ import annotations

from flask import url_for

from ..models.oauth import ACR_PASSWORD
from ..runtime import settings
from ..services import clients
from . import keys
from . import response_modes
from .claims import CLAIMS_SUPPORTED
from .claims import SCOPES_SUPPORTED
from .grants import ALL_AUTH_METHODS
from .grants import CONFIDENTIAL_AUTH_METHODS


def _url(endpoint: str) -> str:
    # Built from the configured issuer, never from the request's Host header.
    return settings().server.issuer + url_for(endpoint)


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
        # RFC 8414 §2: open to holders of an initial access token from an admin (RFC 7591 §3), not to all.
        "registration_endpoint": _url("oauth.register"),
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        # OAuth 2.0 Form Post Response Mode (idp/oauth/response_modes.py).
        "response_modes_supported": list(response_modes.SUPPORTED),
        "grant_types_supported": list(clients.GRANT_TYPES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(keys.ALGORITHMS),
        "token_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
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
        "ui_locales_supported": ["ru"],
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
