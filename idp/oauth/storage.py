"""authlib's storage hooks: clients, tokens, codes. Every code and token is stored as a digest."""

from __future__ import annotations

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from ..config import OAuthSettings
from ..crypto import digest
from ..crypto import new_secret
from ..extensions import db
from ..models import OAuth2Client
from ..models import Token
from ..runtime import current
from ..runtime import settings
from ..services.sessions import revoke_tokens


def query_client(client_id) -> OAuth2Client | None:
    # No client_id is that long or holds a NUL byte (which PostgreSQL text cannot store, let alone match).
    if not isinstance(client_id, str) or len(client_id) > 64 or "\x00" in client_id:
        return None
    client = db.session.scalar(select(OAuth2Client).filter_by(client_id=client_id))
    return client if client is not None and client.enabled else None


def create_token_generator(settings: OAuthSettings) -> BearerTokenGenerator:
    def expires_in(client, grant_type):
        return client.lifetime("access_token_ttl", settings.access_token_ttl)

    def access_token(*args, **kwargs):
        return generate_token(48)

    return _OfflineAwareGenerator(access_token, access_token, expires_in)


class _OfflineAwareGenerator(BearerTokenGenerator):
    """Issues a refresh token only with ``offline_access`` (OIDC Core §11), and always on rotation."""

    def __call__(
        self, grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True
    ):
        wanted = include_refresh_token and (
            grant_type == "refresh_token" or "offline_access" in scope_to_list(scope)
        )
        return super().__call__(grant_type, client, user, scope, expires_in, wanted)


def save_token(token: dict, request) -> None:
    """Persist a freshly issued token, inheriting the session binding from the code or old refresh token."""
    now = current().clock()
    refresh = token.get("refresh_token")
    row = Token(
        client_id=request.client.client_id,
        account_id=request.user.id if request.user else None,
        token_type=token["token_type"],
        access_token_hash=digest(token["access_token"]),
        refresh_token_hash=digest(refresh) if refresh else None,
        scope=token.get("scope", ""),
        issued_at=now,
        expires_in=token["expires_in"],
    )
    parent = request.refresh_token
    code = request.authorization_code
    if parent is not None and isinstance(parent, Token):
        row.family_id, row.sid, row.auth_time, row.amr, row.claims = (
            parent.family_id,
            parent.sid,
            parent.auth_time,
            parent.amr,
            parent.claims,
        )
        row.auth_code_id = parent.auth_code_id
        row.rotated_from = parent.id
        # RFC 9700 §4.14.2: rotation does not extend the family's lifetime.
        row.refresh_expires_at = parent.refresh_expires_at if refresh else None
    else:
        row.family_id = new_secret(24)
        ttl = request.client.lifetime("refresh_token_ttl", settings().oauth.refresh_token_ttl)
        row.refresh_expires_at = now + ttl if refresh else None
        if code is not None:
            row.auth_code_id, row.sid, row.auth_time, row.amr = code.id, code.sid, code.auth_time, code.amr
            row.claims = code.claims
    db.session.add(row)
    db.session.commit()
    current().metrics.token_issued(request.payload.grant_type)


def find_token(token_string, hint: str | None = None) -> Token | None:
    if not isinstance(token_string, str) or not token_string or len(token_string) > 512:
        return None
    hashed = digest(token_string)
    if hint == "access_token":
        condition = Token.access_token_hash == hashed
    elif hint == "refresh_token":
        condition = Token.refresh_token_hash == hashed
    else:
        condition = or_(Token.access_token_hash == hashed, Token.refresh_token_hash == hashed)
    return db.session.scalar(select(Token).where(condition))


def digest_matches_refresh(token: Token, presented) -> bool:
    """Whether the string a client presented is this row's refresh token (not its access token)."""
    return (
        bool(token.refresh_token_hash)
        and isinstance(presented, str)
        and digest(presented) == token.refresh_token_hash
    )


def revoke_family(family_id: str, now: int) -> None:
    revoke_tokens(db.session, Token.family_id == family_id, now=now)


def revoke_code_tokens(auth_code_id: int, now: int) -> None:
    families = db.session.scalars(select(Token.family_id).filter_by(auth_code_id=auth_code_id).distinct())
    for family_id in list(families):
        revoke_family(family_id, now)


def unused_successor(token: Token, *, now: int, grace: int) -> Token | None:
    """The token a rotated-out refresh token was rotated into, if that happened at most ``grace`` seconds
    ago and the successor has been neither used nor revoked since (RFC 9700 §4.14.2's grace)."""
    if not grace or now - token.refresh_token_revoked_at > grace:
        return None
    return db.session.scalar(
        select(Token).where(
            Token.rotated_from == token.id,
            Token.family_id == token.family_id,
            Token.refresh_token_hash.is_not(None),
            Token.refresh_token_revoked_at == 0,
        )
    )


def claim_refresh_token(token: Token, now: int) -> bool:
    """Mark a refresh token used, atomically: of two concurrent refreshes exactly one wins."""
    result = db.session.execute(
        update(Token)
        .where(Token.id == token.id, Token.refresh_token_revoked_at == 0)
        .values(refresh_token_revoked_at=now, access_token_revoked_at=now)
    )
    return result.rowcount == 1
