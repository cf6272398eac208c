"""The token that introspection (RFC 7662) and UserInfo (OIDC Core §5.3) read, with its account: plain
read-only values from one Core statement on a connection in autocommit (issue 12), not ORM rows from
the Session. Loading a Token and an Account through the ORM, in a transaction of the Session, cost
those endpoints more CPU than everything else they do.

They carry what those endpoints read: authlib's ``TokenMixin`` (what its bearer-token validator and
introspection endpoint call) and the attributes of ``Token`` and ``Account`` read by endpoints.py,
dpop.py, claims.py, subjects.py and access_tokens.py. Nothing here can be written back."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import or_
from sqlalchemy import select

from ..extensions import db
from ..models import Account
from ..models import OAuth2Client
from ..models import Token
from ..models.account import STATUS_ACTIVE
from ..models.oauth import AccessTokenRules


@dataclass(frozen=True, slots=True)
class LiveAccount:
    """What UserInfo's claims (claims.user_info), the ``sub`` (subjects.subject) and the blocked-account
    check read from an ``Account``."""

    id: int
    sub: str
    login: str
    surname: str
    given_name: str
    middle_name: str | None
    phone: str
    email: str | None
    locale: str
    updated_at: int
    status: str

    @property
    def is_active(self) -> bool:
        return self.status == STATUS_ACTIVE

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.surname, self.given_name, self.middle_name) if part)

    def get_user_id(self) -> str:
        # As Account.get_user_id: the public subject, never the row id.
        return self.sub


@dataclass(frozen=True, slots=True)
class LiveToken(AccessTokenRules):
    """A token row as introspection and UserInfo use it, with its account (None for client_credentials)."""

    id: int
    client_id: str
    account_id: int | None
    scope: str
    issued_at: int
    expires_in: int
    access_token_revoked_at: int
    refresh_token_hash: str | None
    refresh_expires_at: int | None
    refresh_token_revoked_at: int
    sid: str | None
    claims: str | None
    jkt: str | None
    jti: str | None
    audience: str | None
    resources: str | None
    account: LiveAccount | None

    # -- authlib TokenMixin: the rest in AccessTokenRules --
    def get_user(self) -> LiveAccount | None:
        return self.account


_TOKEN_COLUMNS = [field for field in LiveToken.__dataclass_fields__ if field != "account"]
_ACCOUNT_COLUMNS = list(LiveAccount.__dataclass_fields__)


_tokens = Token.__table__
_accounts = Account.__table__
_clients = OAuth2Client.__table__


def _statement(condition):
    return (
        select(
            *(_tokens.c[name] for name in _TOKEN_COLUMNS),
            *(_accounts.c[name].label(f"account_{name}") for name in _ACCOUNT_COLUMNS),
        )
        # A token whose client is disabled or gone is not found (see storage.find_live_token).
        .join(_clients, and_(_clients.c.client_id == _tokens.c.client_id, _clients.c.enabled))
        .outerjoin(_accounts, _accounts.c.id == _tokens.c.account_id)
        .where(condition)
    )


# Built once: only the digest changes from one request to the next.
_DIGEST = bindparam("digest")
_ACCESS = _statement(_tokens.c.access_token_hash == _DIGEST)
_ANY = _statement(or_(_tokens.c.access_token_hash == _DIGEST, _tokens.c.refresh_token_hash == _DIGEST))

_TOKEN_WIDTH = len(_TOKEN_COLUMNS)


def read(digest: str, *, access_only: bool) -> LiveToken | None:
    """The token with this digest (of its access token, or with ``access_only`` False of either), with
    its account. One round trip: a connection of its own in autocommit, no BEGIN and no COMMIT or
    ROLLBACK (as keys.read_stamp_alone), and nothing of the Session's."""
    statement = _ACCESS if access_only else _ANY
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        row = connection.execute(statement, {"digest": digest}).first()
    if row is None:
        return None
    values = tuple(row)
    account_values = values[_TOKEN_WIDTH:]
    # The account's id is NULL only when the outer join found none (client_credentials, or deleted).
    account = LiveAccount(*account_values) if account_values[0] is not None else None
    return LiveToken(*values[:_TOKEN_WIDTH], account=account)
