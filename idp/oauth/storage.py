"""authlib's storage hooks: clients, tokens, codes. Every code and token is stored as a digest."""

from __future__ import annotations

import weakref

from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from flask import g
from sqlalchemy import event
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..config import Settings
from ..crypto import digest
from ..crypto import new_secret
from ..extensions import db
from ..models import Account
from ..models import OAuth2Client
from ..models import Token
from ..runtime import current
from ..runtime import settings
from ..services.sessions import revoke_tokens
from . import client_cache
from . import live
from .access_tokens import JWTAccessTokens
from .access_tokens import current_binding
from .access_tokens import stored_resources
from .live import LiveAccount
from .live import LiveToken


def query_client(client_id) -> OAuth2Client | None:
    # No client_id is that long or holds a NUL byte (which PostgreSQL text cannot store, let alone match).
    if not isinstance(client_id, str) or len(client_id) > 64 or "\x00" in client_id:
        return None
    cache = current().clients
    snapshot = cache.get(client_id)
    if snapshot is not None:
        if g.get(_SNAPSHOTS):
            return snapshot
        return client_cache.attach(db.session, snapshot)
    client = db.session.scalar(select(OAuth2Client).filter_by(client_id=client_id))
    if client is None or not client.enabled:
        return None
    cache.put(client, db.session)
    return client


# g key: this request only reads the clients it looks up (``read_clients_only``).
_SNAPSHOTS = "idp_client_snapshots"


def read_clients_only() -> None:
    """For the rest of this request (the protocol front, ``idp.oauth.read_front``: the token route, whose
    client_credentials grant reads its client and writes nothing of it; introspection and UserInfo,
    which write nothing of a client either), ``query_client`` gives the cached snapshot itself, shared
    and detached, rather than a copy of it in the session: nothing to merge, and the session stays
    unused."""
    g.setdefault(_SNAPSHOTS, True)


def _opaque_token() -> str:
    # 288 bits from the OS in 48 characters; authlib's generate_token draws each character with its own
    # SystemRandom call (0.2 ms a token, issue 12).
    return new_secret(36)


def create_token_generator(settings: Settings) -> BearerTokenGenerator:
    def expires_in(client, grant_type):
        return client.lifetime("access_token_ttl", settings.oauth.access_token_ttl)

    def access_token(client, grant_type, user, scope):
        if client.access_token_format == "jwt":
            # RFC 9068; authlib's generator reads the expiry from the same function (expires_in).
            return jwt_tokens.access_token_generator(client, grant_type, user, scope)
        return _opaque_token()

    jwt_tokens = JWTAccessTokens(settings.server.issuer, expires_in)

    def refresh_token(*args, **kwargs):
        return _opaque_token()

    return _OfflineAwareGenerator(access_token, refresh_token, expires_in)


class _OfflineAwareGenerator(BearerTokenGenerator):
    """Issues a refresh token only with ``offline_access`` (OIDC Core §11), and always on rotation."""

    def __call__(
        self, grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True
    ):
        wanted = include_refresh_token and (
            grant_type == "refresh_token" or "offline_access" in scope_to_list(scope)
        )
        token = super().__call__(grant_type, client, user, scope, expires_in, wanted)
        binding = current_binding()
        if binding is not None and binding.jkt:
            # RFC 9449 §5: a DPoP-bound access token is of type DPoP.
            token["token_type"] = "DPoP"
        return token


# Compiled once per set of columns (SQLAlchemy's statement cache), not per token. Inline: without
# RETURNING the new row's id, which nothing reads (a result row less to fetch and process).
_INSERT_TOKEN = insert(Token.__table__).inline()


def save_token(token: dict, request) -> None:
    """Persist a freshly issued token, inheriting the session binding from the code or old refresh token.

    One INSERT, without building an ORM object and a unit of work for it (issue 12): nothing reads the
    row back in this request."""
    now = current().clock()
    refresh = token.get("refresh_token")
    row = {
        "client_id": request.client.client_id,
        "account_id": request.user.id if request.user else None,
        "token_type": token["token_type"],
        "access_token_hash": digest(token["access_token"]),
        "refresh_token_hash": digest(refresh) if refresh else None,
        "scope": token.get("scope", ""),
        "issued_at": now,
        "expires_in": token["expires_in"],
        "audience": None,
        "jkt": None,
        "jti": None,
        "claims": None,
        "resources": None,
        # The columns' defaults, given: the INSERT may be run without SQLAlchemy (_insert_alone).
        "access_token_revoked_at": 0,
        "refresh_token_revoked_at": 0,
    }
    binding = current_binding()
    if binding is not None:
        row.update(
            audience=binding.stored_audience,
            jkt=binding.jkt,
            jti=binding.jti,
            resources=stored_resources(binding.granted or []),
        )
    parent = request.refresh_token
    code = request.authorization_code
    if parent is not None and isinstance(parent, Token):
        row.update(
            family_id=parent.family_id,
            sid=parent.sid,
            auth_time=parent.auth_time,
            amr=parent.amr,
            claims=parent.claims,
            auth_code_id=parent.auth_code_id,
            rotated_from=parent.id,
            # RFC 9700 §4.14.2: rotation does not extend the family's lifetime.
            refresh_expires_at=parent.refresh_expires_at if refresh else None,
        )
    else:
        ttl = request.client.lifetime("refresh_token_ttl", settings().oauth.refresh_token_ttl)
        row.update(family_id=new_secret(24), refresh_expires_at=now + ttl if refresh else None)
        if code is not None:
            row.update(
                auth_code_id=code.id, sid=code.sid, auth_time=code.auth_time, amr=code.amr, claims=code.claims
            )
    if _nothing_pending():
        # Nothing of this request is pending in the session (client_credentials, with the client from the
        # cache): the INSERT alone, in autocommit, is one round trip instead of BEGIN, INSERT, COMMIT.
        _insert_alone(row)
    else:
        session = db.session()
        # The code's or the old refresh token's claim (still pending in the session) commits with it.
        session.flush()
        session.connection().execute(_INSERT_TOKEN, row)
        session.commit()
    current().metrics.token_issued(request.payload.grant_type)


def _insert_alone(row: dict) -> None:
    """The token's INSERT on a connection of its own in autocommit, with the driver's cursor
    (``live.run_alone``: SQLAlchemy's Connection cost more than the driver, issue 12), unless someone
    records the statements (bench/explain.py, tests) or a column needs SQLAlchemy's conversion."""
    engine = db.engine
    dispatch = engine.dispatch
    driver = None
    if not (dispatch.before_cursor_execute or dispatch.after_cursor_execute):
        driver = _driver_insert(engine.dialect, tuple(row))
    if driver is None:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(_INSERT_TOKEN, row)
        return
    sql, names = driver
    live.run_alone(engine, sql, row if names is None else tuple(row[name] for name in names), fetch=False)


# Per dialect and set of columns: the INSERT's SQL and, for a positional paramstyle, the order of its
# parameters (None: named, or not run with the driver's cursor at all).
_DRIVER_INSERTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _driver_insert(dialect, columns: tuple[str, ...]) -> tuple[str, tuple[str, ...] | None] | None:
    known = _DRIVER_INSERTS.setdefault(dialect, {})
    if columns not in known:
        table = Token.__table__
        compiled = _INSERT_TOKEN.compile(dialect=dialect, column_keys=list(columns))
        names = compiled.positiontup
        plain = set(compiled.binds) == set(columns) and all(
            table.c[name].type._cached_bind_processor(dialect) is None  # noqa: SLF001
            for name in columns
        )
        known[columns] = (str(compiled), None if names is None else tuple(names)) if plain else None
    return known[columns]


def _nothing_pending() -> bool:
    """Whether this request's session holds nothing that must commit with the token: no session at all
    (the front layer's requests, ``read_clients_only``), or one without a connection (nothing read or
    written in a transaction) and without unflushed changes."""
    if not db.session.registry.has():
        return True
    session = db.session()
    return not (_HOLDS_CONNECTION in session.info or session.new or session.dirty or session.deleted)


# session.info key: the session's transaction holds a database connection (something was read or
# written in it, perhaps a claim that must commit with the token).
_HOLDS_CONNECTION = "idp_holds_connection"


@event.listens_for(Session, "after_begin")
def _connection_begun(session: Session, transaction, connection) -> None:
    session.info[_HOLDS_CONNECTION] = True


@event.listens_for(Session, "after_transaction_end")
def _transaction_ended(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_HOLDS_CONNECTION, None)


def find_token(token_string, hint: str | None = None) -> Token | None:
    # 4096: a JWT access token (RFC 9068) is some 900 characters; an opaque one 64.
    if not isinstance(token_string, str) or not token_string or len(token_string) > 4096:
        return None
    hashed = digest(token_string)
    if hint == "access_token":
        condition = Token.access_token_hash == hashed
    elif hint == "refresh_token":
        condition = Token.refresh_token_hash == hashed
    else:
        condition = or_(Token.access_token_hash == hashed, Token.refresh_token_hash == hashed)
    return db.session.scalar(select(Token).where(condition))


def find_live_token(token_string, hint: str | None = None) -> LiveToken | None:
    """``find_token`` for the endpoints that use a token (introspection, UserInfo), in one statement
    outside the Session (``live.read``): the token's account comes with it, and a token whose client is
    disabled or gone is not found.

    The client check is here, in the database, because clients are cached per process for
    ``[oauth] client_cache_ttl``: a token issued in that window to a client just disabled elsewhere is
    refused where it is used."""
    if not isinstance(token_string, str) or not token_string or len(token_string) > 4096:
        return None
    return live.read(digest(token_string), access_only=hint == "access_token")


def end_read() -> None:
    """End a read-only request's transaction with COMMIT, after its answer is built (the rows read are
    expired by it), instead of leaving it to the teardown's ROLLBACK: psycopg forgets a connection's
    prepared statements on every ROLLBACK (and sends ``DEALLOCATE ALL``), which would wipe the token
    endpoint's prepared INSERT on the same connection (issue 12). Introspection and UserInfo read their
    token outside the Session (``live.read``) and their client from the cache (``read_clients_only``):
    the Session has a transaction only when the cache missed or client authentication wrote, and
    otherwise is not even made."""
    if db.session.registry.has() and db.session().in_transaction():
        db.session.commit()


def account_of(token: Token | LiveToken) -> Account | LiveAccount | None:
    """The token's account: the one read with it by ``find_live_token``, else from the session."""
    if isinstance(token, LiveToken):
        return token.account
    return token.get_user()


def client_of(token: Token | LiveToken) -> OAuth2Client | None:
    """The token's client, from the client cache (``Token.get_client`` queries it)."""
    return query_client(token.client_id)


def digest_matches_refresh(token: Token | LiveToken, presented) -> bool:
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
