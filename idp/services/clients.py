"""Registering relying parties: validated metadata, a 256-bit secret shown once and stored as a digest."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from ..errors import ClientDataError
from ..models import OAuth2Client
from .tokens import digest
from .net import is_loopback
from .tokens import new_secret

SCOPES = {"openid", "profile", "phone", "email", "patent", "offline_access"}
GRANT_TYPES = {"authorization_code", "refresh_token", "client_credentials"}
SIGNING_ALGS = {"RS256", "ES256"}


def check_redirect_uri(uri: str, kind: str = "redirect URI") -> None:
    """https anywhere, http only on loopback (RFC 8252 §7.3), absolute, no fragment (RFC 6749 §3.1.2).
    Logout URIs follow the same rules (Back-Channel Logout §2.2, Front-Channel Logout §2)."""
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise ClientDataError(f"{kind} {uri!r} is not a URL") from exc
    if parts.fragment or "#" in uri:
        raise ClientDataError(f"{kind} {uri!r} must not contain a fragment")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return
    raise ClientDataError(f"{kind} {uri!r} must use https (http only on loopback)")


def _origin(uri: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(uri)
    return parts.scheme, parts.hostname, parts.port


def _logout_metadata(backchannel: str | None, frontchannel: str | None, redirect_uris: list[str]) -> dict:
    """The logout members of a client's metadata, checked."""
    metadata: dict = {}
    if backchannel:
        check_redirect_uri(backchannel, "back-channel logout URI")
        # Back-Channel Logout §2.2: every logout token of ours carries sid, so say so.
        metadata.update(backchannel_logout_uri=backchannel, backchannel_logout_session_required=True)
    if frontchannel:
        check_redirect_uri(frontchannel, "front-channel logout URI")
        # Front-Channel Logout §2: same scheme, host and port as a registered redirect URI.
        if _origin(frontchannel) not in {_origin(uri) for uri in redirect_uris}:
            message = "must have the scheme, host and port of a redirect URI"
            raise ClientDataError(f"front-channel logout URI {frontchannel!r} {message}")
        # The iframe URL always carries iss and sid (Front-Channel Logout §2).
        metadata.update(frontchannel_logout_uri=frontchannel, frontchannel_logout_session_required=True)
    return metadata


def create_client(
    db: Session,
    *,
    name: str,
    redirect_uris: list[str],
    post_logout_redirect_uris: list[str],
    scope: str,
    public: bool,
    trusted: bool,
    grant_types: list[str] | None,
    id_token_alg: str,
    now: int,
    backchannel_logout_uri: str | None = None,
    frontchannel_logout_uri: str | None = None,
) -> tuple[OAuth2Client, str | None]:
    """Return the new client and its secret in clear (None for a public client)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ClientDataError("name is required (at most 100 characters)")
    grant_types = grant_types or ["authorization_code", "refresh_token"]
    if not set(grant_types) <= GRANT_TYPES:
        raise ClientDataError(f"grant types must be among {sorted(GRANT_TYPES)}")
    if public and "client_credentials" in grant_types:
        raise ClientDataError("a public client cannot use client_credentials")
    scopes = scope.split()
    if not scopes or not set(scopes) <= SCOPES:
        raise ClientDataError(f"scopes must be among {sorted(SCOPES)}")
    if "authorization_code" in grant_types and not redirect_uris:
        raise ClientDataError("at least one redirect URI is needed")
    for uri in [*redirect_uris, *post_logout_redirect_uris]:
        check_redirect_uri(uri)
    if id_token_alg not in SIGNING_ALGS:
        raise ClientDataError(f"ID token algorithm must be among {sorted(SIGNING_ALGS)}")
    logout_metadata = _logout_metadata(backchannel_logout_uri, frontchannel_logout_uri, redirect_uris)
    secret = None if public else new_secret(32)
    client = OAuth2Client(
        client_id=new_secret(18),
        secret_hash=digest(secret) if secret else None,
        client_id_issued_at=now,
        client_secret_expires_at=0,
        trusted=trusted,
        client_metadata={
            "client_name": name,
            "redirect_uris": list(redirect_uris),
            "post_logout_redirect_uris": list(post_logout_redirect_uris),
            "grant_types": grant_types,
            "response_types": ["code"] if "authorization_code" in grant_types else [],
            "scope": " ".join(scopes),
            "token_endpoint_auth_method": "none" if public else "client_secret_basic",
            "id_token_signed_response_alg": id_token_alg,
            **logout_metadata,
        },
    )
    db.add(client)
    db.flush()
    return client, secret
