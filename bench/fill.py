"""Fill idp's PostgreSQL database with N accounts, N stored tokens and a day of authorization codes.

Usage (the schema must exist: ``idp db upgrade``; ``bench.load --scale N`` calls this itself):

    .venv/bin/python -m bench.fill --database-url postgresql+psycopg://postgres@127.0.0.1:5432/idp_bench \\
        --client-id CLIENT_ID --accounts 10000 --tokens 10000 --codes 300000

Every row is valid, written by ``generate_series`` in one statement per table:

* accounts: logins ``99`` + 10 digits, no password change owed, all sharing one bcrypt hash of
  ``--password`` made once at the configured cost (12 by default), so any of them can sign in;
* tokens: one per account for ``--client-id``, live for a day, with access token
  ``bench-access-<account id>`` and refresh token ``bench-refresh-<account id>`` stored as SHA-256
  digests like idp's own (predictable on purpose: the benchmark introspects random ones);
* authorization codes: ``--codes`` rows spread over the last 24 hours, each used and expired, what
  ``idp purge`` keeps (it deletes codes a day after they expire), with random nonces and sids.

Then VACUUM ANALYZE, so the planner sees the real sizes. Prints one JSON line: the ranges written and
the seconds each table took. Loopback PostgreSQL only (the benchmark's own database).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from sqlalchemy import create_engine
from sqlalchemy import text

LOGIN_PREFIX = "99"
ACCESS_PREFIX = "bench-access-"
REFRESH_PREFIX = "bench-refresh-"
CODES_PER_DAY = 300_000

ACCOUNTS_SQL = """
INSERT INTO accounts (sub, login, surname, surname_folded, given_name, middle_name, phone, locale,
    password_hash, password_changed_at, status, failed_logins, locked_until,
    created_at, updated_at)
SELECT md5('sub' || i || CAST(:salt AS text)), CAST(:prefix AS text) || lpad(i::text, 10, '0'), 'Рахимов', 'рахимов', 'Алишер', NULL,
    '+7999' || lpad((i % 10000000)::text, 7, '0'), 'ru', CAST(:hash AS text), CAST(:now AS integer), 'active', 0, 0,
    CAST(:now AS integer), CAST(:now AS integer)
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS i
"""

TOKENS_SQL = """
INSERT INTO tokens (client_id, account_id, token_type, access_token_hash, refresh_token_hash, scope,
    issued_at, expires_in, refresh_expires_at, access_token_revoked_at, refresh_token_revoked_at,
    family_id, auth_code_id, sid, auth_time, amr)
SELECT CAST(:client_id AS text), a.id, 'Bearer',
    encode(sha256(convert_to(CAST(:access AS text) || a.id, 'UTF8')), 'hex'),
    encode(sha256(convert_to(CAST(:refresh AS text) || a.id, 'UTF8')), 'hex'),
    'openid profile phone', CAST(:now AS integer), 86400, CAST(:now AS integer) + 2592000, 0, 0,
    md5('family' || a.id), NULL, md5('sid' || a.id), CAST(:now AS integer), 'pwd'
FROM accounts a WHERE a.login LIKE CAST(:prefix AS text) || '%' ORDER BY a.id LIMIT CAST(:count AS integer)
"""

# One day of codes, oldest first, all redeemed 3 s after issue and expired 60 s after it.
CODES_SQL = """
INSERT INTO authorization_codes (code_hash, client_id, account_id, redirect_uri, scope, nonce, auth_time,
    amr, sid, code_challenge, code_challenge_method, created_at, expires_at, used_at)
SELECT encode(sha256(convert_to('bench-code-' || i || CAST(:salt AS text), 'UTF8')), 'hex'),
    CAST(:client_id AS text), CAST(:first_account AS integer) + (i % CAST(:accounts AS integer)),
    CAST(:redirect_uri AS text), 'openid profile phone', md5(random()::text || i),
    t, 'pwd', md5('code-sid' || i), md5(i::text) || md5(i::text), 'S256', t, t + 60, t + 3
FROM generate_series(1, CAST(:count AS integer)) AS i,
    LATERAL (SELECT (CAST(:now AS bigint) - 86400 + (i::bigint * 86400) / CAST(:count AS integer))::int - 61 AS t) AS c
"""


def fill(
    database_url: str,
    *,
    client_id: str,
    redirect_uri: str,
    accounts: int,
    tokens: int,
    codes: int,
    password: str,
    rounds: int,
) -> dict:
    """Write the rows; return what was written and how long each table took."""
    from idp.services import passwords

    password_hash = passwords.hash_password(password, rounds)
    now = int(time.time())
    salt = str(now)
    seconds: dict[str, float] = {}
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SET synchronous_commit = off"))
            started = time.perf_counter()
            first = 1 + (
                conn.scalar(
                    text("SELECT count(*) FROM accounts WHERE login LIKE CAST(:p AS text) || '%'"),
                    {"p": LOGIN_PREFIX},
                )
                or 0
            )
            last = first + accounts - 1
            if accounts:
                conn.execute(
                    text(ACCOUNTS_SQL),
                    {
                        "salt": salt,
                        "prefix": LOGIN_PREFIX,
                        "hash": password_hash,
                        "now": now,
                        "first": first,
                        "last": last,
                    },
                )
            seconds["accounts"] = time.perf_counter() - started
            ids = conn.execute(
                text("SELECT min(id), max(id) FROM accounts WHERE login LIKE CAST(:p AS text) || '%'"),
                {"p": LOGIN_PREFIX},
            ).one()
            started = time.perf_counter()
            if tokens:
                conn.execute(
                    text(TOKENS_SQL),
                    {
                        "client_id": client_id,
                        "access": ACCESS_PREFIX,
                        "refresh": REFRESH_PREFIX,
                        "now": now,
                        "prefix": LOGIN_PREFIX,
                        "count": tokens,
                    },
                )
            seconds["tokens"] = time.perf_counter() - started
            token_ids = conn.execute(
                text("SELECT min(account_id), max(account_id), count(*) FROM tokens WHERE client_id = :c"),
                {"c": client_id},
            ).one()
            started = time.perf_counter()
            if codes:
                if ids[0] is None:
                    raise SystemExit("codes need accounts: fill some with --accounts")
                conn.execute(
                    text(CODES_SQL),
                    {
                        "salt": salt,
                        "client_id": client_id,
                        "first_account": ids[0],
                        "accounts": ids[1] - ids[0] + 1,
                        "redirect_uri": redirect_uri,
                        "now": now,
                        "count": codes,
                    },
                )
            seconds["codes"] = time.perf_counter() - started
            started = time.perf_counter()
            for table in ("accounts", "tokens", "authorization_codes"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))
            seconds["vacuum_analyze"] = time.perf_counter() - started
            size = conn.scalar(text("SELECT pg_database_size(current_database())"))
    finally:
        engine.dispose()
    return {
        "accounts": {"login_prefix": LOGIN_PREFIX, "first_id": ids[0], "last_id": ids[1], "count": accounts},
        "tokens": {
            "access_prefix": ACCESS_PREFIX,
            "first": token_ids[0],
            "last": token_ids[1],
            "count": token_ids[2],
        },
        "codes": codes,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "database_bytes": size,
    }


def login_for(account_number: int) -> str:
    """The login of the ``account_number``-th bench account (1-based), as written by ``fill``."""
    return LOGIN_PREFIX + str(account_number).rjust(10, "0")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", required=True, help="SQLAlchemy URL of the bench database (loopback)"
    )
    parser.add_argument("--client-id", required=True, help="the client that owns the stored tokens and codes")
    parser.add_argument("--redirect-uri", default="http://127.0.0.1:9/cb")
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--tokens", type=int, default=None, help="default: as many as accounts")
    parser.add_argument("--codes", type=int, default=CODES_PER_DAY)
    parser.add_argument("--password", default="bench password 2024")
    parser.add_argument("--rounds", type=int, default=12, help="bcrypt cost of the shared hash")
    args = parser.parse_args(argv)
    if "127.0.0.1" not in args.database_url and "localhost" not in args.database_url:
        parser.error("the bench fills a loopback database only")
    result = fill(
        args.database_url,
        client_id=args.client_id,
        redirect_uri=args.redirect_uri,
        accounts=args.accounts,
        tokens=args.accounts if args.tokens is None else args.tokens,
        codes=args.codes,
        password=args.password,
        rounds=args.rounds,
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
