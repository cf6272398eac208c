"""Dynamic client registration (RFC 7591) and management (RFC 7592), minus the HTTP: the tokens that
admit them and the reading of a client's metadata. ``idp.oauth.registration`` wires this into authlib.

Registration is never open: each request carries an initial access token (RFC 7591 §3) that an admin
issued in the staff console — stored as a SHA-256 digest, expiring, and single-use unless the admin
chose otherwise. A registered client then manages itself with its registration access token
(RFC 7592 §1.2), also stored as a digest. Dynamically registered clients are never trusted: their
users always see the consent page.
"""

from __future__ import annotations

from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..crypto import digest
from ..crypto import new_secret
from ..errors import ClientDataError
from ..models import InitialAccessToken
from ..models import RegistrationAccessToken
from ..models.base import affected_rows
from . import audit
from .clients import ClientInput

MAX_TOKEN_LENGTH = 256
# RFC 7591 §2: authorization_code alone when grant_types is omitted; openid is all we assume of scope.
DEFAULT_GRANT_TYPES = ["authorization_code"]
DEFAULT_SCOPE = "openid"


def issue_initial_token(
    db: Session, ctx: audit.Context, *, label: str, ttl: int, single_use: bool
) -> tuple[InitialAccessToken, str]:
    """A new initial access token; return the row and the token in clear (shown once)."""
    label = (label or "").strip()[:100]
    if not label:
        raise ClientDataError("label", "required")
    token = new_secret()
    row = InitialAccessToken(
        token_hash=digest(token),
        label=label,
        single_use=single_use,
        created_by=ctx.actor.name,
        created_at=ctx.now,
        expires_at=ctx.now + ttl,
    )
    db.add(row)
    db.flush()
    details = {"label": label, "single_use": single_use, "expires_at": row.expires_at}
    audit.record(db, ctx, "registration.token_issued", details=details)
    return row, token


def revoke_initial_token(db: Session, ctx: audit.Context, row: InitialAccessToken) -> None:
    if row.revoked_at is None:
        row.revoked_at = ctx.now
    audit.record(db, ctx, "registration.token_revoked", details={"label": row.label})


def redeem_initial_token(db: Session, token: str | None, *, now: int) -> InitialAccessToken | None:
    """The live initial access token for ``token``, counted as used; None if unknown, expired, revoked,
    or single-use and already used. The claim is one UPDATE, so two requests cannot both use a
    single-use token; it commits with the registration, so a refused registration leaves it unused."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    hashed = digest(token)
    claimed = affected_rows(
        db,
        update(InitialAccessToken)
        .where(
            InitialAccessToken.token_hash == hashed,
            InitialAccessToken.revoked_at.is_(None),
            InitialAccessToken.expires_at > now,
            or_(InitialAccessToken.single_use.is_(False), InitialAccessToken.used_at.is_(None)),
        )
        .values(used_at=now, uses=InitialAccessToken.uses + 1)
        .execution_options(synchronize_session=False),
    )
    if not claimed:
        return None
    return db.scalar(select(InitialAccessToken).filter_by(token_hash=hashed))


def issue_registration_token(db: Session, client_id: str, *, now: int) -> str:
    token = new_secret()
    db.add(RegistrationAccessToken(client_id=client_id, token_hash=digest(token), issued_at=now))
    return token


def find_registration_token(db: Session, token: str | None) -> RegistrationAccessToken | None:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = db.scalar(select(RegistrationAccessToken).filter_by(token_hash=digest(token)))
    return row if row is not None and row.revoked_at is None else None


def _strings(metadata: dict, key: str) -> list[str]:
    value = metadata.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ClientDataError(key, "format")
    return value


def _string(metadata: dict, key: str, default: str | None) -> str | None:
    value = metadata.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ClientDataError(key, "format")
    return value


def client_input(metadata: dict) -> ClientInput:
    """RFC 7591 §2 metadata (as authlib's claim classes have checked it) as ClientInput; values the
    provider does not support are refused rather than silently replaced (RFC 7591 §3.2.2 allows either)."""
    method = _string(metadata, "token_endpoint_auth_method", "client_secret_basic")
    grant_types = _strings(metadata, "grant_types") or list(DEFAULT_GRANT_TYPES)
    response_types = _strings(metadata, "response_types") or (
        ["code"] if "authorization_code" in grant_types else []
    )
    # RFC 7591 §2.1: grant types and response types must agree; "code" is the only response type here.
    if set(response_types) - {"code"} or ("code" in response_types) != ("authorization_code" in grant_types):
        raise ClientDataError("response_types", "unknown")
    return ClientInput(
        name=_string(metadata, "client_name", "") or "",
        redirect_uris=_strings(metadata, "redirect_uris"),
        post_logout_redirect_uris=_strings(metadata, "post_logout_redirect_uris"),
        backchannel_logout_uri=_string(metadata, "backchannel_logout_uri", None),
        frontchannel_logout_uri=_string(metadata, "frontchannel_logout_uri", None),
        client_uri=_string(metadata, "client_uri", None),
        grant_types=grant_types,
        scope=_string(metadata, "scope", DEFAULT_SCOPE) or DEFAULT_SCOPE,
        public=method == "none",
        trusted=False,
        id_token_alg=_string(metadata, "id_token_signed_response_alg", "RS256") or "RS256",
        auth_method=method,
        dynamic=True,
        subject_type=_string(metadata, "subject_type", "public") or "public",
        sector_identifier_uri=_string(metadata, "sector_identifier_uri", None),
        jwks=_object(metadata, "jwks"),
        jwks_uri=_string(metadata, "jwks_uri", None),
        access_token_format=_string(metadata, "access_token_format", "opaque") or "opaque",
        resources=_strings(metadata, "allowed_resources"),
        require_par=_flag(metadata, "require_pushed_authorization_requests"),
        dpop_bound=_flag(metadata, "dpop_bound_access_tokens"),
    )


def _object(metadata: dict, key: str) -> dict | None:
    value = metadata.get(key)
    if value is not None and not isinstance(value, dict):
        raise ClientDataError(key, "format")
    return value


def _flag(metadata: dict, key: str) -> bool:
    value = metadata.get(key, False)
    if not isinstance(value, bool):
        raise ClientDataError(key, "format")
    return value
