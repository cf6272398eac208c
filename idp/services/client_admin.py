"""Relying parties managed after registration: by an admin in the staff console, or by the client itself
through dynamic registration (RFC 7591) and its management protocol (RFC 7592). Each change is audited.

Creation goes through ``clients.create_client`` (the rules of ``idp clients create``, logout URIs
included); this module adds per-client token lifetimes, the ``client_secret_post`` method a registering
client may ask for, and the later changes: edit, new secret, disable, delete.

Per-client lifetimes live in ``client_metadata`` (``access_token_ttl``, ``id_token_ttl``,
``refresh_token_ttl``) and can only shorten the ones in [oauth]: key rotation retires an old key
``[oauth] id_token_ttl`` after it stops signing, which must stay long enough for every ID token.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from urllib.parse import urlsplit

from sqlalchemy import delete as sql_delete
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..errors import ClientDataError
from ..models import AuthorizationCode
from ..models import Consent
from ..models import OAuth2Client
from ..models import RegistrationAccessToken
from ..models import Token
from . import audit
from .clients import GRANT_TYPES
from .clients import SCOPES
from .clients import SIGNING_ALGS
from .clients import _logout_metadata
from .clients import check_redirect_uri
from .clients import create_client
from .sessions import revoke_tokens
from .tokens import digest
from .tokens import new_secret

LIFETIMES = ("access_token_ttl", "id_token_ttl", "refresh_token_ttl")
LOGOUT_METADATA = (
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "frontchannel_logout_uri",
    "frontchannel_logout_session_required",
)
MIN_LIFETIME = 60
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
MAX_URIS = 20


class ClientFieldError(ClientDataError):
    """One field of a client's data is refused; ``field`` and ``reason`` are keys for the page's message."""

    def __init__(self, field: str, reason: str, value: str | None = None):
        super().__init__(f"{field}: {reason}" + (f" ({value!r})" if value else ""))
        self.field = field
        self.reason = reason
        self.value = value


@dataclass
class ClientInput:
    """A client's data as an admin or a registering client gives it."""

    name: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    backchannel_logout_uri: str | None = None
    frontchannel_logout_uri: str | None = None
    grant_types: list[str] = field(default_factory=lambda: ["authorization_code", "refresh_token"])
    scope: str = "openid"
    public: bool = False
    trusted: bool = False
    id_token_alg: str = "RS256"
    # client_secret_basic or client_secret_post for a confidential client; "none" for a public one.
    auth_method: str | None = None
    lifetimes: dict[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class LifetimeLimits:
    """The [oauth] lifetimes: a client's own can only be shorter."""

    access_token_ttl: int
    id_token_ttl: int
    refresh_token_ttl: int


def check(data: ClientInput, limits: LifetimeLimits) -> None:
    """Refuse bad client data with the field at fault (the same rules as ``clients.create_client``)."""
    name = (data.name or "").strip()
    if not name or len(name) > 100:
        raise ClientFieldError("name", "required")
    if not data.grant_types or not set(data.grant_types) <= GRANT_TYPES:
        raise ClientFieldError("grant_types", "unknown")
    if data.public and "client_credentials" in data.grant_types:
        raise ClientFieldError("grant_types", "public_client_credentials")
    scopes = (data.scope or "").split()
    if not scopes or not set(scopes) <= SCOPES:
        raise ClientFieldError("scope", "unknown")
    if "authorization_code" in data.grant_types and not data.redirect_uris:
        raise ClientFieldError("redirect_uris", "required")
    lists = {"redirect_uris": data.redirect_uris, "post_logout_redirect_uris": data.post_logout_redirect_uris}
    for field_name, uris in lists.items():
        if len(uris) > MAX_URIS:
            raise ClientFieldError(field_name, "too_many")
        for uri in uris:
            _check_uri(field_name, uri)
    if data.backchannel_logout_uri:
        _check_uri("backchannel_logout_uri", data.backchannel_logout_uri)
    if data.frontchannel_logout_uri:
        _check_uri("frontchannel_logout_uri", data.frontchannel_logout_uri)
        # Front-Channel Logout §2: the scheme, host and port of one of the redirect URIs.
        if _origin(data.frontchannel_logout_uri) not in {_origin(uri) for uri in data.redirect_uris}:
            raise ClientFieldError("frontchannel_logout_uri", "origin", data.frontchannel_logout_uri)
    if data.id_token_alg not in SIGNING_ALGS:
        raise ClientFieldError("id_token_alg", "unknown")
    method = data.auth_method or ("none" if data.public else "client_secret_basic")
    if method not in AUTH_METHODS or (method == "none") != data.public:
        raise ClientFieldError("auth_method", "unknown")
    for key in LIFETIMES:
        value = data.lifetimes.get(key)
        if value is not None and not MIN_LIFETIME <= value <= getattr(limits, key):
            raise ClientFieldError(key, "range")


def _check_uri(field_name: str, uri: str) -> None:
    try:
        check_redirect_uri(uri)
    except ClientDataError as error:
        raise ClientFieldError(field_name, "invalid_uri", uri) from error


def _origin(uri: str) -> tuple:
    parts = urlsplit(uri)
    return parts.scheme, parts.hostname, parts.port


def _apply_extras(client: OAuth2Client, data: ClientInput) -> None:
    """What create_client does not set: the auth method and the lifetimes."""
    metadata = dict(client.client_metadata)
    metadata["token_endpoint_auth_method"] = data.auth_method or ("none" if data.public else "client_secret_basic")
    for key in LIFETIMES:
        if data.lifetimes.get(key) is not None:
            metadata[key] = data.lifetimes[key]
        else:
            metadata.pop(key, None)
    # A new dict, so SQLAlchemy sees the JSON column change.
    client.client_metadata = metadata


def create(
    db: Session, ctx: audit.Context, data: ClientInput, *, limits: LifetimeLimits
) -> tuple[OAuth2Client, str | None]:
    """Register a client; return it and its secret in clear (None for a public client), shown once."""
    check(data, limits)
    client, secret = create_client(
        db,
        name=data.name,
        redirect_uris=list(data.redirect_uris),
        post_logout_redirect_uris=list(data.post_logout_redirect_uris),
        scope=" ".join(data.scope.split()),
        public=data.public,
        trusted=data.trusted,
        grant_types=list(data.grant_types),
        id_token_alg=data.id_token_alg,
        now=ctx.now,
        backchannel_logout_uri=data.backchannel_logout_uri,
        frontchannel_logout_uri=data.frontchannel_logout_uri,
    )
    _apply_extras(client, data)
    audit.record(db, ctx, "client.created", client_id=client.client_id, details=_summary(client))
    return client, secret


def update_client(
    db: Session, ctx: audit.Context, client: OAuth2Client, data: ClientInput, *, limits: LifetimeLimits
) -> None:
    """Replace the client's data. Public or confidential stays as registered: turning one into the other
    would need a secret made or thrown away, so that is a new registration."""
    if data.public != client.is_public:
        raise ClientFieldError("public", "fixed")
    check(data, limits)
    metadata = {key: value for key, value in client.client_metadata.items() if key not in LOGOUT_METADATA}
    logout = _logout_metadata(data.backchannel_logout_uri, data.frontchannel_logout_uri, data.redirect_uris)
    metadata.update(
        client_name=data.name.strip(),
        redirect_uris=list(data.redirect_uris),
        post_logout_redirect_uris=list(data.post_logout_redirect_uris),
        grant_types=list(data.grant_types),
        response_types=["code"] if "authorization_code" in data.grant_types else [],
        scope=" ".join(data.scope.split()),
        id_token_signed_response_alg=data.id_token_alg,
    )
    # The logout members as create_client writes them (the same rules; check() has applied them).
    metadata.update(logout)
    client.client_metadata = metadata
    client.trusted = data.trusted
    _apply_extras(client, data)
    audit.record(db, ctx, "client.updated", client_id=client.client_id, details=_summary(client))


def rotate_secret(db: Session, ctx: audit.Context, client: OAuth2Client) -> str:
    """A new secret, shown once; the old one stops working at once. Tokens already issued stay valid."""
    if client.is_public:
        raise ClientFieldError("public", "no_secret")
    secret = new_secret(32)
    client.secret_hash = digest(secret)
    audit.record(db, ctx, "client.secret_rotated", client_id=client.client_id)
    return secret


def set_enabled(
    db: Session, ctx: audit.Context, client: OAuth2Client, enabled: bool, *, reason: str | None = None
) -> None:
    """A disabled client is unknown to every endpoint, and the tokens it holds die at once."""
    client.enabled = enabled
    if not enabled:
        revoke_tokens(db, Token.client_id == client.client_id, now=ctx.now)
    event = "client.enabled" if enabled else "client.disabled"
    audit.record(db, ctx, event, client_id=client.client_id, reason=reason)


def delete_client(db: Session, ctx: audit.Context, client: OAuth2Client, *, reason: str | None = None) -> None:
    """Remove the client with its codes, tokens, consents and registration access tokens
    (RFC 7592 §2.3: the client_id, secret and registration access token stop working)."""
    client_id = client.client_id
    name = client.client_name
    for model in (AuthorizationCode, Token, Consent, RegistrationAccessToken):
        db.execute(sql_delete(model).where(model.client_id == client_id))
    db.delete(client)
    audit.record(db, ctx, "client.deleted", client_id=client_id, reason=reason, details={"name": name})


def revoke_registration_tokens(db: Session, client_id: str, *, now: int) -> None:
    db.execute(
        update(RegistrationAccessToken)
        .where(RegistrationAccessToken.client_id == client_id, RegistrationAccessToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def _summary(client: OAuth2Client) -> dict:
    """What the audit log keeps of a client's data: the metadata, never the secret."""
    metadata = client.client_metadata
    return {
        "name": client.client_name,
        "redirect_uris": metadata.get("redirect_uris", []),
        "post_logout_redirect_uris": metadata.get("post_logout_redirect_uris", []),
        "backchannel_logout_uri": metadata.get("backchannel_logout_uri"),
        "frontchannel_logout_uri": metadata.get("frontchannel_logout_uri"),
        "grant_types": metadata.get("grant_types", []),
        "scope": metadata.get("scope", ""),
        "public": client.is_public,
        "trusted": client.trusted,
        **{key: metadata[key] for key in LIFETIMES if key in metadata},
    }
