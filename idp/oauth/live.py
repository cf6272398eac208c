"""The token that introspection (RFC 7662) and UserInfo (OIDC Core §5.3) read, with its account: plain
read-only values from one Core statement on a connection in autocommit (issue 12), not ORM rows from
the Session. Loading a Token and an Account through the ORM, in a transaction of the Session, cost
those endpoints more CPU than everything else they do.

They carry what those endpoints read: authlib's ``TokenMixin`` (what its bearer-token validator and
introspection endpoint call) and the attributes of ``Token`` and ``Account`` read by endpoints.py,
dpop.py, claims.py, subjects.py and access_tokens.py. Nothing here can be written back."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import literal_column
from sqlalchemy import select
from sqlalchemy import union_all
from sqlalchemy.exc import DBAPIError

from ..extensions import db
from ..models import Account
from ..models import OAuth2Client
from ..models import Token
from ..models.account import AccountRules
from ..models.oauth import AccessTokenRules


@dataclass(frozen=True, slots=True)
class LiveAccount(AccountRules):
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
# Either token: the access token's index first, the refresh token's only when that finds nothing (the
# LIMIT stops PostgreSQL's Append at the first row). An OR read both indexes on every introspection, and
# at a million tokens, when the indexes outgrow shared_buffers, that second lookup was what made
# introspection 11 % slower than at 10,000 (bench/RESULTS-scale.md).
# LIMIT and OFFSET as literals: the driver's statement binds the digest alone (_driver_statement), and
# SQLite's compiler would add a bound OFFSET to a LIMIT.
_ANY = (
    union_all(_ACCESS, _statement(_tokens.c.refresh_token_hash == _DIGEST))
    .limit(literal_column("1"))
    .offset(literal_column("0"))
)

_TOKEN_WIDTH = len(_TOKEN_COLUMNS)


def read(digest: str, *, access_only: bool) -> LiveToken | None:
    """The token with this digest (of its access token, or with ``access_only`` False of either), with
    its account. One round trip: a connection of its own in autocommit, no BEGIN and no COMMIT or
    ROLLBACK (as keys.read_stamp_alone), and nothing of the Session's."""
    statement = _ACCESS if access_only else _ANY
    engine = db.engine
    dispatch = engine.dispatch
    if dispatch.before_cursor_execute or dispatch.after_cursor_execute:
        # Someone records the statements (bench/explain.py, tests): through a Connection, which tells them.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            row = connection.execute(statement, {"digest": digest}).first()
    else:
        row = _read_driver(engine, statement, digest)
    if row is None:
        return None
    values = tuple(row)
    account_values = values[_TOKEN_WIDTH:]
    # The account's id is NULL only when the outer join found none (client_credentials, or deleted).
    account = LiveAccount(*account_values) if account_values[0] is not None else None
    return LiveToken(*values[:_TOKEN_WIDTH], account=account)


def _read_driver(engine, statement, digest: str):
    """The row, read with the driver's own cursor on a pooled connection: SQLAlchemy's Connection and
    result machinery cost these endpoints more than the driver itself (issue 12). What the Connection
    does that matters here is kept: autocommit set and reset as ``execution_options`` does, and a driver
    error raised as SQLAlchemy's (the outage handling knows those: 503), the connection invalidated and,
    when the database went away, every connection of the pool made before (Connection does the same)."""
    sql, positions = _driver_statement(engine.dialect, statement)
    parameters: dict | tuple = {"digest": digest} if positions is None else (digest,) * positions
    return run_alone(engine, sql, parameters, fetch=True)


def run_alone(engine, sql: str, parameters: dict | tuple, *, fetch: bool):
    """Run ``sql`` (in the driver's paramstyle) on a pooled connection in autocommit with the driver's own
    cursor, as ``_read_driver`` says; the first row if ``fetch``. Also the token endpoint's INSERT
    (``storage.save_token``)."""
    dialect = engine.dialect
    error_class = dialect.loaded_dbapi.Error
    try:
        pooled = engine.raw_connection()
    except error_class as error:
        raise _wrapped(engine, None, None, error, dialect.is_disconnect(error, None, None)) from error
    try:
        connection = pooled.dbapi_connection
        cursor = None
        try:
            dialect.set_isolation_level(connection, "AUTOCOMMIT")
            cursor = connection.cursor()
            cursor.execute(sql, parameters)
            row = cursor.fetchone() if fetch else None
            cursor.close()
            dialect.reset_isolation_level(connection)
        except error_class as error:
            disconnected = dialect.is_disconnect(error, connection, cursor)
            if disconnected:
                engine.pool._invalidate(pooled, error)  # noqa: SLF001 - as Connection does
            else:
                # Its isolation level is not known any more: never handed out again.
                pooled.invalidate(error)
            raise _wrapped(engine, sql, parameters, error, disconnected) from error
    finally:
        pooled.close()
    return row


def _wrapped(engine, sql, parameters, error, disconnected: bool) -> DBAPIError:
    return DBAPIError.instance(
        sql,
        parameters,
        error,
        engine.dialect.loaded_dbapi.Error,
        hide_parameters=engine.hide_parameters,
        connection_invalidated=disconnected,
        dialect=engine.dialect,
    )


# Per dialect: the SQL of each statement and, for a positional paramstyle, how many parameters it has
# (all of them the digest); None for a named one.
_DRIVER_STATEMENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _driver_statement(dialect, statement) -> tuple[str, int | None]:
    known = _DRIVER_STATEMENTS.setdefault(dialect, {})
    if id(statement) not in known:
        compiled = statement.compile(dialect=dialect)
        names = compiled.positiontup
        if names is not None and set(names) != {"digest"}:
            raise RuntimeError(f"unexpected parameters {names}")
        # The values are used as the driver returns them: no column may need SQLAlchemy's conversion.
        for column in statement.selected_columns:
            if column.type._cached_result_processor(dialect, None) is not None:  # noqa: SLF001
                raise RuntimeError(f"{column} needs a result processor on {dialect.name}")
        known[id(statement)] = (str(compiled), None if names is None else len(names))
    return known[id(statement)]
