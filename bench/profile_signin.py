"""The server's CPU per full code flow beyond bcrypt, in-process and repeatable (issue 12).

Usage (from the repository root; PostgreSQL on 127.0.0.1:5432, user ``postgres``; Redis optional):

    .venv/bin/python -m bench.profile_signin                     # 40 flows, bcrypt cost 4
    .venv/bin/python -m bench.profile_signin --flows 100 --profile 30

``make bench-load`` measures the sign-in under a real server and concurrency, where the figure moves
with whatever else the machine is running. This drives the same flow (``codeflow.run``: authorize →
sign-in form → POST → code → token) through the WSGI app in this process (Werkzeug's test client), one
flow at a time, on a PostgreSQL database of its own (created, migrated, filled with ``bench.fill``,
dropped at the end), with a production configuration. The CPU counted is ``time.process_time``
inside the app's ``wsgi_app`` only (not the test client's side), per flow; bcrypt verification at the
same cost, timed alone, is subtracted. It also counts the SQL statements each flow sends, and with
``--profile N`` prints cProfile's N heaviest functions for the server side.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event

from . import codeflow
from . import explain
from . import fill
from . import load

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class _Meter:
    """Wraps ``app.wsgi_app``: CPU seconds spent inside it, optionally under a profiler."""

    def __init__(self, app):
        self.inner = app.wsgi_app
        self.cpu = 0.0
        self.profiler: cProfile.Profile | None = None
        self.trace: list[str] | None = None
        # CPU seconds per request kind ("POST /login", "GET /authorize/continue/…").
        self.by_request: dict[str, list[float]] = {}
        # Profile only this kind of request (empty: all).
        self.only = ""
        app.wsgi_app = self

    def __call__(self, environ, start_response):
        if self.trace is not None:
            self.trace.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        started = time.process_time()
        kind = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}"
        if kind.startswith("GET /authorize/continue/"):
            kind = "GET /authorize/continue/…"
        profiled = self.profiler is not None and (not self.only or kind == self.only)
        if profiled:
            self.profiler.enable()
        try:
            # The body is produced inside the timed span (Flask's responses are already rendered), and
            # closed there as a server closes it (PEP 3333): admission control counts a page in flight
            # until then (idp.admission), so an unclosed one was refused 429 after a few flows.
            iterable = self.inner(environ, start_response)
            try:
                return list(iterable)
            finally:
                close = getattr(iterable, "close", None)
                if close is not None:
                    close()
        finally:
            if profiled:
                self.profiler.disable()
            spent = time.process_time() - started
            self.cpu += spent
            self.by_request.setdefault(kind, []).append(spent * 1000)


def bcrypt_ms(rounds: int, runs: int) -> float:
    """Median CPU ms of one bcrypt verification at ``rounds``, as the sign-in runs it."""
    from idp.services import passwords

    stored = passwords.hash_password(load.PASSWORD, rounds)
    samples = []
    for _ in range(runs):
        started = time.process_time()
        passwords.verify_password(load.PASSWORD, stored)
        samples.append((time.process_time() - started) * 1000)
    return statistics.median(samples)


def measure(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="idp-profile-signin-"))
    database_url = load.create_database(args.postgres, args.database_prefix)
    try:
        issuer = "http://127.0.0.1:5000"
        config = tmp / "idp.toml"
        load.write_config(
            config,
            issuer=issuer,
            database_url=database_url,
            redis_url=args.redis,
            bcrypt_rounds=args.bcrypt_rounds,
        )
        os.environ.update({"IDP_CONFIG": str(config), "IDP_INSTANCE_PATH": str(tmp / "instance")})
        from idp import create_app
        from idp.extensions import db

        app = create_app()
        client_id, client_secret = load.prepare_idp(app)
        fill.fill(
            database_url,
            client_id=client_id,
            redirect_uri=load.REDIRECT_URI,
            accounts=args.accounts,
            tokens=args.tokens,
            codes=args.codes,
            password=load.PASSWORD,
            rounds=args.bcrypt_rounds,
        )
        meta = app.test_client().get("/.well-known/openid-configuration", base_url=issuer).get_json()
        provider = codeflow.Provider(
            issuer,
            meta["authorization_endpoint"],
            meta["token_endpoint"],
            client_id,
            client_secret,
            load.REDIRECT_URI,
            load.SCOPE,
        )
        meter = _Meter(app)
        statements = [0]

        def count(conn, cursor, statement, *_):
            statements[0] += 1
            if meter.trace is not None:
                meter.trace.append("    " + " ".join(statement.split())[: args.sql_width])

        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", count)

        def flow(number: int) -> tuple[float, int]:
            before_cpu, before_sql = meter.cpu, statements[0]
            login = fill.login_for(number % args.accounts + 1)
            codeflow.run(provider, login, load.PASSWORD, session=explain.TestClientSession(app, issuer))
            return (meter.cpu - before_cpu) * 1000, statements[0] - before_sql

        for n in range(args.warmup):
            flow(n)
        meter.by_request = {}
        samples = [flow(n) for n in range(args.flows)]
        by_request = {kind: round(statistics.median(ms), 2) for kind, ms in meter.by_request.items()}
        profile_text = None
        if args.profile:
            # CPU time, not wall time: round trips to PostgreSQL are not the server's CPU.
            meter.profiler = cProfile.Profile(time.process_time)
            meter.only = args.profile_only
            for n in range(args.flows):
                flow(n)
            meter.profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(meter.profiler, stream=out)
            stats.sort_stats(args.sort).print_stats(args.profile)
            if args.callers:
                stats.print_callers(args.callers)
            profile_text = out.getvalue()
            meter.profiler = None
        trace = None
        if args.show_sql:
            meter.trace = []
            flow(0)
            trace, meter.trace = meter.trace, None
        event.remove(engine, "before_cursor_execute", count)
        plans = None
        if args.explain:

            def landing(session: explain.TestClientSession) -> None:
                if session.client.get("/", base_url=issuer).status_code != 200:
                    raise RuntimeError("the landing page did not answer 200")

            def sign_in(session: explain.TestClientSession) -> None:
                codeflow.run(provider, fill.login_for(args.accounts), load.PASSWORD, session=session)

            plans = explain.capture_and_explain(
                app,
                issuer,
                {
                    "codeflow": explain.code_flow(
                        provider, fill.login_for(args.accounts // 2 + 1), load.PASSWORD
                    ),
                    "landing page after sign-in": (sign_in, landing),
                },
            )
        bcrypt = bcrypt_ms(args.bcrypt_rounds, max(7, args.flows // 4))
        cpu = [c for c, _ in samples]
        sql = sorted({s for _, s in samples})
        return {
            "flows": args.flows,
            "bcrypt_rounds": args.bcrypt_rounds,
            "bcrypt_ms": round(bcrypt, 2),
            "cpu_ms_median": round(statistics.median(cpu), 2),
            "cpu_ms_min": round(min(cpu), 2),
            "beyond_bcrypt_ms_median": round(statistics.median(cpu) - bcrypt, 2),
            "beyond_bcrypt_ms_min": round(min(cpu) - bcrypt, 2),
            "sql_per_flow": sql,
            "profile": profile_text,
            "trace": trace,
            "cpu_ms_median_by_request": by_request,
            "plans": plans,
        }
    finally:
        load.drop_database(database_url)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres", default=DEFAULT_POSTGRES, help="server URL; a database of its own is made"
    )
    parser.add_argument("--redis", default="memory://", help="rate-limit storage (load.py uses Redis db 4)")
    parser.add_argument(
        "--database-prefix", default="idp_bench", help="name of the database made: <prefix>_<pid>_<hex>"
    )
    parser.add_argument("--flows", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument(
        "--tokens", type=int, default=0, help="stored tokens of the bench client (bench.fill)"
    )
    parser.add_argument("--codes", type=int, default=0, help="used, expired authorization codes (bench.fill)")
    parser.add_argument(
        "--explain", action="store_true", help="PostgreSQL's plan of each statement (bench.explain)"
    )
    parser.add_argument("--bcrypt-rounds", type=int, default=4)
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="print cProfile's N heaviest functions"
    )
    parser.add_argument("--profile-only", default="", help='profile one kind of request, e.g. "POST /token"')
    parser.add_argument("--callers", default="", help="also print the callers of functions matching this")
    parser.add_argument(
        "--show-sql", action="store_true", help="print the requests and statements of one flow"
    )
    parser.add_argument("--sql-width", type=int, default=160)
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumulative)")
    args = parser.parse_args(argv)
    result = measure(args)
    if result["profile"]:
        print(result["profile"])
    for workload, found in (result["plans"] or {}).items():
        print(f"{workload}: {found['statement_count']} statements")
        for item in found["statements"]:
            paths = "; ".join(explain.access_paths(item["plan"])) or "-"
            flagged = f"  FLAGGED: {', '.join(item['findings'])}" if item["findings"] else ""
            print(f"  {item['verb']} {','.join(explain.tables(item['statement']))}: {paths}{flagged}")
    if result["trace"]:
        print("\n".join(result["trace"]))
    for kind, ms in result["cpu_ms_median_by_request"].items():
        print(f"  {kind:32s} {ms:7.2f} ms CPU (median)", file=sys.stderr)
    print(
        f"{result['flows']} flows, bcrypt cost {result['bcrypt_rounds']} ({result['bcrypt_ms']} ms alone): "
        f"server CPU per flow median {result['cpu_ms_median']} ms (min {result['cpu_ms_min']}), "
        f"beyond bcrypt median {result['beyond_bcrypt_ms_median']} ms (min {result['beyond_bcrypt_ms_min']}); "
        f"SQL statements per flow {result['sql_per_flow']}",
        file=sys.stderr,
    )
    return result


if __name__ == "__main__":
    main()
