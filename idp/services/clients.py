"""Relying parties (OAuth clients): the metadata rules, registration with a 256-bit secret shown once and
stored as a digest, and the later changes (edit, new secret, disable, delete).

The rules exist once, in ``check``: the command line (``idp clients create|update``), the staff console
and dynamic registration (RFC 7591, RFC 7592) all call it and get the same field-coded
``ClientDataError`` (the words are in ``idp.messages``). Every redirect, post-logout and logout URI
passes ``check_redirect_uri``; a URI the provider itself calls (the back-channel logout URI) passes
the outbound rules of ``services.outbound`` too, under the deployment's ``OutboundPolicy``. A client
that registers or renames itself may not take the name of one an admin registered (``client_names``).

Per-client lifetimes live in ``client_metadata`` (``access_token_ttl``, ``id_token_ttl``,
``refresh_token_ttl``) and can only shorten the ones in [oauth]: key rotation retires an old key
``[oauth] id_token_ttl`` after it stops signing, which must stay long enough for every ID token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..config import OAuthSettings
from ..crypto import digest
from ..crypto import new_secret
from ..errors import ClientDataError
from ..errors import UnsafeURLError
from ..models import AuthorizationCode
from ..models import Consent
from ..models import OAuth2Client
from ..models import RegistrationAccessToken
from ..models import Token
from . import audit
from . import client_names
from . import client_secrets
from . import outbound
from . import subjects
from .keys import ALGORITHMS
from .net import is_loopback
from .outbound import OutboundPolicy
from .outbound_http import OutboundClient
from .outbound_http import OutboundError
from .sessions import revoke_tokens

# What this provider supports, in the order pages and discovery list them.
SCOPES = ("openid", "profile", "phone", "email", "patent", "offline_access")
# The last is the device authorization grant (RFC 8628 §3.4).
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", DEVICE_CODE)
# private_key_jwt and client_secret_jwt: RFC 7523 §2.2 client assertions (OIDC Core §9).
CONFIDENTIAL_AUTH_METHODS = (
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
)
# The methods whose client has a shared secret; a private_key_jwt client has none.
SECRET_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")
# RFC 9068 JWT access tokens, or the random strings of RFC 6750 ("opaque", the default).
ACCESS_TOKEN_FORMATS = ("opaque", "jwt")
MAX_KEYS = 20
# Private members of a JWK (RFC 7518 §6): a client registers public keys only.
_PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
AUTH_METHODS = (*CONFIDENTIAL_AUTH_METHODS, "none")
SIGNING_ALGS = ALGORITHMS
LIFETIMES = ("access_token_ttl", "id_token_ttl", "refresh_token_ttl")
MIN_LIFETIME = 60
MAX_URIS = 20
MAX_NAME = 100
# GETs a sector_identifier_uri and returns the body (sector_fetch); raises OutboundError.
SectorFetch = Callable[[str], bytes]


@dataclass
class ClientInput:
    """A client's data as an admin, a command line or a registering client gives it."""

    name: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    backchannel_logout_uri: str | None = None
    frontchannel_logout_uri: str | None = None
    # RFC 7591 §2 client_uri: the site's home page; the provider's landing page links to it.
    client_uri: str | None = None
    grant_types: list[str] = field(default_factory=lambda: ["authorization_code", "refresh_token"])
    scope: str = "openid"
    public: bool = False
    trusted: bool = False
    id_token_alg: str = "RS256"
    # client_secret_basic or client_secret_post for a confidential client; "none" for a public one.
    auth_method: str | None = None
    lifetimes: dict[str, int | None] = field(default_factory=dict)
    # Registered by the client itself (RFC 7591) rather than by an admin (console, CLI).
    dynamic: bool = False
    # OIDC Core §8: "public" or "pairwise" (services.subjects); a pairwise client's sector is the host of
    # sector_identifier_uri, or of its redirect URIs.
    subject_type: str = "public"
    sector_identifier_uri: str | None = None
    # private_key_jwt: the client's public keys, given (RFC 7591 §2 "jwks") or fetched ("jwks_uri").
    jwks: dict | None = None
    jwks_uri: str | None = None
    # "opaque" or "jwt" (RFC 9068), and the resource indicators (RFC 8707) it may name as audience.
    access_token_format: str = "opaque"
    resources: list[str] = field(default_factory=list)
    # RFC 9126 §6 and RFC 9449 §5.2.
    require_par: bool = False
    dpop_bound: bool = False

    @property
    def method(self) -> str:
        return self.auth_method or ("none" if self.public else "client_secret_basic")


# -- the rules --------------------------------------------------------------------------------------------


def check_redirect_uri(
    uri: str, field_name: str = "redirect_uris", *, outbound_policy: OutboundPolicy | None = None
) -> None:
    """https anywhere, http only on loopback (RFC 8252 §7.3), absolute, no fragment (RFC 6749 §3.1.2).
    Post-logout and front-channel logout URIs follow the same rules (Front-Channel Logout §2). A URI the
    provider itself calls (the back-channel logout URI) is given the deployment's ``outbound_policy`` and
    must pass the outbound rules of ``services.outbound`` as well: the error's reason is then the
    outbound one, and the ``UnsafeURLError`` with its explanation is its cause."""
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise ClientDataError(field_name, "uri_syntax", uri) from exc
    if parts.fragment or "#" in uri:
        raise ClientDataError(field_name, "uri_fragment", uri)
    browser_rules = (parts.scheme == "https" and parts.hostname) or (
        parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname)
    )
    if not browser_rules:
        raise ClientDataError(field_name, "uri_scheme", uri)
    if outbound_policy is not None:
        try:
            outbound.check_url(uri, outbound_policy)
        except UnsafeURLError as error:
            raise ClientDataError(field_name, error.reason, uri) from error


def _origin(uri: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(uri)
    return parts.scheme, parts.hostname, parts.port


def check(
    data: ClientInput, limits: OAuthSettings, *, outbound_policy: OutboundPolicy = outbound.STRICT
) -> None:
    """Refuse bad client data with the field at fault; ``outbound_policy`` is the deployment's rule for
    the URIs the provider calls (strict, the production rule, unless the caller names the app's)."""
    name = (data.name or "").strip()
    if not name or len(name) > MAX_NAME:
        raise ClientDataError("name", "required")
    if not data.grant_types or not set(data.grant_types) <= set(GRANT_TYPES):
        raise ClientDataError("grant_types", "unknown")
    if data.public and "client_credentials" in data.grant_types:
        raise ClientDataError("grant_types", "public_client_credentials")
    scopes = (data.scope or "").split()
    if not scopes or not set(scopes) <= set(SCOPES):
        raise ClientDataError("scope", "unknown")
    if "authorization_code" in data.grant_types and not data.redirect_uris:
        raise ClientDataError("redirect_uris", "required")
    lists = {"redirect_uris": data.redirect_uris, "post_logout_redirect_uris": data.post_logout_redirect_uris}
    for field_name, uris in lists.items():
        if len(uris) > MAX_URIS:
            raise ClientDataError(field_name, "too_many")
        for uri in uris:
            check_redirect_uri(uri, field_name)
    if data.backchannel_logout_uri:
        check_redirect_uri(
            data.backchannel_logout_uri, "backchannel_logout_uri", outbound_policy=outbound_policy
        )
    if data.client_uri:
        check_redirect_uri(data.client_uri, "client_uri")
    if data.frontchannel_logout_uri:
        check_redirect_uri(data.frontchannel_logout_uri, "frontchannel_logout_uri")
        # Front-Channel Logout §2: the scheme, host and port of one of the redirect URIs.
        if _origin(data.frontchannel_logout_uri) not in {_origin(uri) for uri in data.redirect_uris}:
            raise ClientDataError("frontchannel_logout_uri", "origin", data.frontchannel_logout_uri)
    if data.id_token_alg not in SIGNING_ALGS:
        raise ClientDataError("id_token_alg", "unknown")
    if data.method not in AUTH_METHODS or (data.method == "none") != data.public:
        raise ClientDataError("auth_method", "unknown")
    _check_keys(data, outbound_policy)
    if data.access_token_format not in ACCESS_TOKEN_FORMATS:
        raise ClientDataError("access_token_format", "unknown")
    if len(data.resources) > MAX_URIS:
        raise ClientDataError("resources", "too_many")
    for uri in data.resources:
        # RFC 8707 §2: an absolute URI without a fragment; like a redirect URI, https or loopback http.
        check_redirect_uri(uri, "resources")
    for key in LIFETIMES:
        value = data.lifetimes.get(key)
        if value is not None and not MIN_LIFETIME <= value <= getattr(limits, key):
            raise ClientDataError(key, "range")
    if data.sector_identifier_uri:
        # The provider fetches it: the outbound rules apply (OIDC Registration §5 requires https).
        check_redirect_uri(
            data.sector_identifier_uri, "sector_identifier_uri", outbound_policy=outbound_policy
        )
    subjects.check_pairwise(data.subject_type, data.redirect_uris, data.sector_identifier_uri)


def verify_sector(data: ClientInput, fetch: SectorFetch | None) -> None:
    """OIDC Registration §5: fetch ``sector_identifier_uri`` and check that it lists every redirect URI.
    ``fetch`` GETs a URL under the outbound rules and returns the body (``outbound_http``); without it
    (a caller that cannot make requests) such a registration is refused."""
    uri = data.sector_identifier_uri
    if not uri:
        return
    if fetch is None:
        raise ClientDataError("sector_identifier_uri", "sector_unreachable", uri)
    try:
        body = fetch(uri)
    except OutboundError as error:
        raise ClientDataError("sector_identifier_uri", "sector_unreachable", uri) from error
    subjects.check_sector_document(body, data.redirect_uris, uri)


def sector_fetch(client: OutboundClient) -> SectorFetch:
    """A ``fetch`` for ``verify_sector`` through the provider's outbound client (deadline, size cap,
    address checks); anything but 200 is unreachable."""

    def fetch(uri: str) -> bytes:
        response = client.get(uri, headers={"Accept": "application/json"})
        if response.status != 200:
            raise OutboundError(f"HTTP {response.status}")
        return response.body

    return fetch


def _check_keys(data: ClientInput, outbound_policy: OutboundPolicy) -> None:
    """RFC 7591 §2: ``jwks`` and ``jwks_uri`` MUST NOT both be present; private_key_jwt needs one. Keys
    are public ones only; the URI is fetched by the provider, so it passes the outbound rules."""
    if data.jwks is not None and data.jwks_uri:
        raise ClientDataError("jwks", "both")
    if data.method == "private_key_jwt" and data.jwks is None and not data.jwks_uri:
        raise ClientDataError("jwks", "required")
    if data.jwks_uri:
        check_redirect_uri(data.jwks_uri, "jwks_uri", outbound_policy=outbound_policy)
    if data.jwks is not None:
        check_jwks(data.jwks)


def check_jwks(jwks) -> None:
    """A JWK Set (RFC 7517 §5) of at most ``MAX_KEYS`` public keys that joserfc can import."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys or len(keys) > MAX_KEYS:
        raise ClientDataError("jwks", "invalid")
    for key in keys:
        if not isinstance(key, dict) or any(member in key for member in _PRIVATE_JWK_MEMBERS):
            raise ClientDataError("jwks", "invalid")
    try:
        KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise ClientDataError("jwks", "invalid") from error


def _metadata(data: ClientInput) -> dict:
    """The stored metadata (RFC 7591 §2 names) of checked data."""
    metadata: dict = {
        "client_name": data.name.strip(),
        "redirect_uris": list(data.redirect_uris),
        "post_logout_redirect_uris": list(data.post_logout_redirect_uris),
        "grant_types": list(data.grant_types),
        "response_types": ["code"] if "authorization_code" in data.grant_types else [],
        "scope": " ".join(data.scope.split()),
        "token_endpoint_auth_method": data.method,
        "id_token_signed_response_alg": data.id_token_alg,
    }
    if data.client_uri:
        metadata["client_uri"] = data.client_uri
    if data.backchannel_logout_uri:
        # Back-Channel Logout §2.2: every logout token of ours carries sid, so say so.
        metadata.update(
            backchannel_logout_uri=data.backchannel_logout_uri, backchannel_logout_session_required=True
        )
    if data.frontchannel_logout_uri:
        # The iframe URL always carries iss and sid (Front-Channel Logout §2).
        metadata.update(
            frontchannel_logout_uri=data.frontchannel_logout_uri, frontchannel_logout_session_required=True
        )
    metadata.update({key: data.lifetimes[key] for key in LIFETIMES if data.lifetimes.get(key) is not None})
    metadata["subject_type"] = data.subject_type
    if data.sector_identifier_uri:
        metadata["sector_identifier_uri"] = data.sector_identifier_uri
    # Kept only when set, so a client that uses none of these reads as before.
    if data.jwks is not None:
        metadata["jwks"] = data.jwks
    if data.jwks_uri:
        metadata["jwks_uri"] = data.jwks_uri
    if data.access_token_format != "opaque":
        metadata["access_token_format"] = data.access_token_format
    if data.resources:
        metadata["allowed_resources"] = list(data.resources)
    if data.require_par:
        metadata["require_pushed_authorization_requests"] = True
    if data.dpop_bound:
        metadata["dpop_bound_access_tokens"] = True
    return metadata


# -- registering and changing -----------------------------------------------------------------------------


def _check_name_free(db: Session, data: ClientInput, client_id: str | None = None) -> None:
    # A client registering or renaming itself may not pass for one an admin registered.
    if client_names.reserved_by_admin(db, data.name, except_client_id=client_id):
        raise ClientDataError("name", "reserved", data.name)


def _new_client_id() -> str:
    """144 random bits, never starting with ``-``: a client id is typed as a command-line argument
    (``idp clients show ID``), where a leading dash reads as an option."""
    while True:
        client_id = new_secret(18)
        if not client_id.startswith("-"):
            return client_id


def create_client(
    db: Session,
    data: ClientInput,
    *,
    limits: OAuthSettings,
    now: int,
    outbound_policy: OutboundPolicy = outbound.STRICT,
    fetch: SectorFetch | None = None,
    sealing_key: bytes | None = None,
) -> tuple[OAuth2Client, str | None]:
    """Register a client; return it and its secret in clear (None for a public client and a
    private_key_jwt one), shown once. ``data.dynamic``: registered by the client itself (RFC 7591), not
    by an admin; the consent page says which. ``fetch``: how to read a ``sector_identifier_uri``
    (``sector_fetch``). ``sealing_key`` (``client_secrets.sealing_key``) seals the secret of a
    client_secret_jwt client, which needs it in clear to verify its assertions."""
    check(data, limits, outbound_policy=outbound_policy)
    verify_sector(data, fetch)
    if data.dynamic:
        _check_name_free(db, data)
    secret = new_secret(32) if data.method in SECRET_AUTH_METHODS else None
    client = OAuth2Client(
        client_id=_new_client_id(),
        secret_hash=digest(secret) if secret else None,
        secret_sealed=_sealed(data.method, secret, sealing_key),
        client_id_issued_at=now,
        client_secret_expires_at=0,
        trusted=data.trusted,
        dynamically_registered=data.dynamic,
        client_metadata=_metadata(data),
    )
    db.add(client)
    db.flush()
    return client, secret


def _sealed(method: str, secret: str | None, sealing_key: bytes | None) -> str | None:
    if method != "client_secret_jwt":
        return None
    if secret is None or sealing_key is None:
        # client_secret_jwt cannot work without the secret in clear: a new secret is needed.
        raise ClientDataError("auth_method", "needs_new_secret")
    return client_secrets.seal(secret, sealing_key)


def create(
    db: Session,
    ctx: audit.Context,
    data: ClientInput,
    *,
    limits: OAuthSettings,
    outbound_policy: OutboundPolicy = outbound.STRICT,
    fetch: SectorFetch | None = None,
    sealing_key: bytes | None = None,
) -> tuple[OAuth2Client, str | None]:
    """``create_client`` on behalf of someone (a staff member, a registering client, a command), audited."""
    client, secret = create_client(
        db,
        data,
        limits=limits,
        now=ctx.now,
        outbound_policy=outbound_policy,
        fetch=fetch,
        sealing_key=sealing_key,
    )
    record_created(db, ctx, client)
    return client, secret


def record_created(db: Session, ctx: audit.Context, client: OAuth2Client) -> None:
    """The audit event of a registration, however the client was created."""
    audit.record(db, ctx, "client.created", client_id=client.client_id, details=_summary(client))


def input_of(client: OAuth2Client) -> ClientInput:
    """The client's registration as it stands, as ``update_client`` takes it (to change a few fields)."""
    metadata = client.client_metadata
    return ClientInput(
        name=client.client_name,
        redirect_uris=list(client.redirect_uris),
        post_logout_redirect_uris=list(client.post_logout_redirect_uris),
        backchannel_logout_uri=client.backchannel_logout_uri,
        frontchannel_logout_uri=client.frontchannel_logout_uri,
        client_uri=client.client_uri,
        grant_types=list(client.grant_types),
        scope=client.scope,
        public=client.is_public,
        trusted=client.trusted,
        id_token_alg=client.id_token_signed_response_alg,
        auth_method=client.token_endpoint_auth_method,
        lifetimes={key: metadata.get(key) for key in LIFETIMES},
        dynamic=client.dynamically_registered,
        subject_type=client.subject_type,
        sector_identifier_uri=client.sector_identifier_uri,
        jwks=client.jwks,
        jwks_uri=client.jwks_uri,
        access_token_format=client.access_token_format,
        resources=list(client.allowed_resources),
        require_par=client.require_pushed_authorization_requests,
        dpop_bound=client.dpop_bound_access_tokens,
    )


def update_client(
    db: Session,
    ctx: audit.Context,
    client: OAuth2Client,
    data: ClientInput,
    *,
    limits: OAuthSettings,
    outbound_policy: OutboundPolicy = outbound.STRICT,
    fetch: SectorFetch | None = None,
) -> None:
    """Replace the client's data. Public or confidential stays as registered: turning one into the other
    would need a secret made or thrown away, so that is a new registration. So does who registered it."""
    if data.public != client.is_public:
        raise ClientDataError("public", "fixed")
    check(data, limits, outbound_policy=outbound_policy)
    verify_sector(data, fetch)
    if data.method == "client_secret_jwt" and not client.secret_sealed:
        # The secret exists as a digest only: the switch needs a new secret, sealed (rotate_secret).
        raise ClientDataError("auth_method", "needs_new_secret")
    if data.method in SECRET_AUTH_METHODS and not client.secret_hash:
        raise ClientDataError("auth_method", "needs_new_secret")
    if data.method != "client_secret_jwt":
        client.secret_sealed = None
    if client.dynamically_registered:
        _check_name_free(db, data, client.client_id)
    # A new dict, so SQLAlchemy sees the JSON column change.
    client.client_metadata = _metadata(data)
    client.trusted = data.trusted
    audit.record(db, ctx, "client.updated", client_id=client.client_id, details=_summary(client))


def rotate_secret(
    db: Session, ctx: audit.Context, client: OAuth2Client, *, sealing_key: bytes | None = None
) -> str:
    """A new secret, shown once; the old one stops working at once. Tokens already issued stay valid.
    A client_secret_jwt client's is sealed too (``sealing_key``)."""
    if client.is_public:
        raise ClientDataError("public", "no_secret")
    secret = new_secret(32)
    client.secret_hash = digest(secret)
    method = client.token_endpoint_auth_method
    client.secret_sealed = _sealed(method, secret, sealing_key) if method == "client_secret_jwt" else None
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


def delete_client(
    db: Session, ctx: audit.Context, client: OAuth2Client, *, reason: str | None = None
) -> None:
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


def find_client(db: Session, client_id: str | None) -> OAuth2Client | None:
    return db.scalar(select(OAuth2Client).filter_by(client_id=client_id)) if client_id else None


def all_clients(db: Session) -> list[OAuth2Client]:
    """Every client, the newest first."""
    return list(db.scalars(select(OAuth2Client).order_by(OAuth2Client.client_id_issued_at.desc())))


def _summary(client: OAuth2Client) -> dict:
    """What the audit log keeps of a client's data: the metadata, never the secret."""
    metadata = client.client_metadata
    return {
        "name": client.client_name,
        "redirect_uris": metadata.get("redirect_uris", []),
        "post_logout_redirect_uris": metadata.get("post_logout_redirect_uris", []),
        "backchannel_logout_uri": metadata.get("backchannel_logout_uri"),
        "frontchannel_logout_uri": metadata.get("frontchannel_logout_uri"),
        "client_uri": metadata.get("client_uri"),
        "grant_types": metadata.get("grant_types", []),
        "scope": metadata.get("scope", ""),
        "public": client.is_public,
        "trusted": client.trusted,
        "subject_type": client.subject_type,
        "sector_identifier_uri": client.sector_identifier_uri,
        **{
            key: metadata[key]
            for key in (
                "jwks_uri",
                "access_token_format",
                "allowed_resources",
                "require_pushed_authorization_requests",
                "dpop_bound_access_tokens",
            )
            if key in metadata
        },
        **{key: metadata[key] for key in LIFETIMES if key in metadata},
    }
