"""Authorization codes, tokens and remembered consent. Codes and tokens are stored as SHA-256 digests
(RFC 9700 §4.14 / indico's hashed tokens): a database leak yields nothing that can be redeemed."""

import time

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin
from authlib.oauth2.rfc6749 import TokenMixin
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from ..extensions import Model
from ..extensions import db
from .account import Account
from .client import OAuth2Client

# The one authentication context class of this provider (OIDC Core §2 acr): the person signed in with a
# login and a password (a temporary password replaced at once counts the same). Advertised in discovery
# (acr_values_supported) and put in every ID token; README "Authentication context".
ACR_PASSWORD = "urn:idp:acr:password"


class AuthorizationCode(Model, AuthorizationCodeMixin):
    __tablename__ = "authorization_codes"
    # The nonce replay check (oauth.grants.OpenIDCode.exists_nonce) looks codes up by nonce; a day of codes
    # is kept (``idp purge``), 300,000 rows at the expected peak, so without an index every sign-in with a
    # nonce scans them all (issue 12). A hash index on PostgreSQL: equality is all it serves, and a
    # B-tree would refuse a nonce longer than a third of a page.
    __table_args__ = (Index("ix_authorization_codes_nonce", "nonce", postgresql_using="hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    # Indexed: the landing page lists the sites a person uses (services.sessions.account_clients) from
    # their codes, which scanned a day of everyone's codes at each visit (issue 12).
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    redirect_uri: Mapped[str] = mapped_column(Text, nullable=False)
    scope: Mapped[str] = mapped_column(Text, nullable=False, default="")
    nonce: Mapped[str | None] = mapped_column(Text)
    auth_time: Mapped[int] = mapped_column(Integer, nullable=False)
    amr: Mapped[str] = mapped_column(String(64), nullable=False, default="pwd")
    # The session's relying parties (services.sessions.session_clients: the landing page, logout).
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[int] = mapped_column(Integer, nullable=False)
    used_at: Mapped[int | None] = mapped_column(Integer)
    # The claims request parameter (OIDC Core §5.5), as JSON {"id_token": [names], "userinfo": [names]}.
    claims: Mapped[str | None] = mapped_column(Text)
    # RFC 9449 §10: the thumbprint of the DPoP key that alone may redeem this code (dpop_jkt, or the key
    # of the proof sent to the PAR endpoint).
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))
    # RFC 8707: the resource indicators of the authorization request (space-separated absolute URIs).
    resources: Mapped[str | None] = mapped_column(Text)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return ACR_PASSWORD

    def get_amr(self) -> list[str]:
        return self.amr.split()


class AccessTokenRules:
    """What authlib asks of an access token (``TokenMixin``), from its columns alone: shared by the row
    (``Token``) and the read-only copy the introspection and UserInfo endpoints load (``idp.oauth.live``)."""

    __slots__ = ()
    client_id: str
    scope: str
    issued_at: int
    expires_in: int
    access_token_revoked_at: int

    def check_client(self, client) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self, now: int | None = None) -> bool:
        return self.issued_at + self.expires_in < (now or time.time())

    def is_revoked(self) -> bool:
        return bool(self.access_token_revoked_at)


class Token(Model, AccessTokenRules, TokenMixin):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    token_type: Mapped[str] = mapped_column(String(16), nullable=False, default="Bearer")
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(Text, nullable=False, default="")
    issued_at: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_in: Mapped[int] = mapped_column(Integer, nullable=False)
    refresh_expires_at: Mapped[int | None] = mapped_column(Integer)
    access_token_revoked_at: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    refresh_token_revoked_at: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # All tokens descending from one authorization code share a family: a replayed refresh token
    # or a replayed code revokes the whole family (RFC 9700 §4.14.2, RFC 6749 §4.1.2).
    family_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    auth_code_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # The refresh token (row id) this one was rotated from: the refresh-token grace looks up the unused
    # successor of a rotated-out token by it (idp/oauth/grants.py).
    rotated_from: Mapped[int | None] = mapped_column(Integer, index=True)
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    auth_time: Mapped[int | None] = mapped_column(Integer)
    amr: Mapped[str | None] = mapped_column(String(64))
    # Inherited from the code (or the rotated refresh token): the claims request parameter, as JSON.
    claims: Mapped[str | None] = mapped_column(Text)
    # DPoP (RFC 9449 §6.1): the JWK SHA-256 thumbprint (RFC 7638) of the key the access and refresh
    # tokens are bound to; None for bearer tokens.
    jkt: Mapped[str | None] = mapped_column(String(64))
    # RFC 9068: the jti of a JWT access token (its digest is access_token_hash, as for opaque ones).
    jti: Mapped[str | None] = mapped_column(String(64))
    # RFC 8707: the resource a token was issued for, when one was named (or the aud of a JWT); introspection
    # reports it as aud, and a refresh without resource keeps it. None: the client is the audience.
    audience: Mapped[str | None] = mapped_column(Text)
    # RFC 8707 §2.2: the resources granted at /authorize (space-separated), kept through refreshes; a
    # resource named at the token endpoint must be one of them. None: none was named there.
    resources: Mapped[str | None] = mapped_column(Text)

    # -- authlib TokenMixin: the rest in AccessTokenRules --
    def get_user(self) -> Account | None:
        return db.session.get(Account, self.account_id) if self.account_id else None

    def get_client(self) -> OAuth2Client | None:
        return db.session.scalar(db.select(OAuth2Client).filter_by(client_id=self.client_id))


class Consent(Model):
    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("account_id", "client_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False)
    scope: Mapped[str] = mapped_column(Text, nullable=False)
    granted_at: Mapped[int] = mapped_column(Integer, nullable=False)
