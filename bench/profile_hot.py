"""CPU per request of the hot protocol endpoints, in-process and repeatable (issue 12).

``bench.load`` measures the servers under wrk, where the figures move with whatever else shares the
machine. This calls the WSGI app directly, the same production configuration and PostgreSQL, with no
server and no sockets in between, so that a change to the app shows in the figures on its own:

    .venv/bin/python -m bench.profile_hot                       # CPU µs per request, each workload
    .venv/bin/python -m bench.profile_hot --profile token       # + cProfile (CPU time) of one workload
    valgrind --tool=callgrind .venv/bin/python -m bench.profile_hot --plain --only token -n 200
                    # instruction counts: the total with -n 200 minus the total with -n 0, over 200

Under valgrind the start-up alone (imports, migrations) takes over ten minutes on a busy 2-core machine;
on such a machine compare the cProfile call counts (deterministic) and process_time of a baseline checkout
and the change run at the same time, so that both meet the same load.

It creates a PostgreSQL database of its own on 127.0.0.1:5432 (user postgres), migrates it, adds the
keys, the bench client and a few accounts with stored tokens (``bench.load.prepare_idp``,
``bench.fill``), and drops it at the end, whatever happens. Redis is the rate-limit storage, as in
production (``bench.load.write_config``); these endpoints never reach it. Only 127.0.0.1 is contacted.

CPU is ``time.process_time`` of this process around N calls (the app's work and the database
driver's, not PostgreSQL's). Each workload runs ``--rounds`` times interleaved; the report gives the
median and the range.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import json
import os
import pstats
import statistics
import tempfile
import time
from pathlib import Path

from . import fill
from . import load

ISSUER = "http://127.0.0.1:9"
WORKLOADS = ("token", "introspection", "userinfo", "healthz")


def _environ_factory(app, method: str, path: str, *, headers: dict, body: bytes = b""):
    """A function returning a fresh WSGI environ for the request (the body stream is consumed)."""
    from werkzeug.test import EnvironBuilder

    builder = EnvironBuilder(
        path=path,
        base_url=ISSUER,
        method=method,
        headers=headers,
        data=body or None,
        content_type="application/x-www-form-urlencoded" if body else None,
    )
    template = builder.get_environ()
    builder.close()
    template.pop("wsgi.input", None)

    def make() -> dict:
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(body)
        return environ

    return make


def _call(app, make_environ) -> tuple[str, bytes]:
    status_holder = []

    def start_response(status, headers, exc_info=None):
        status_holder.append(status)

    iterable = app(make_environ(), start_response)
    try:
        body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return status_holder[0], body


def build_requests(app, client_id: str, client_secret: str, user_token: str) -> dict:
    basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    token_request = _environ_factory(
        app, "POST", "/token", headers={"Authorization": basic}, body=b"grant_type=client_credentials"
    )
    status, body = _call(app, token_request)
    if not status.startswith("200"):
        raise SystemExit(f"token: {status} {body!r}")
    cc_token = json.loads(body)["access_token"]
    requests = {
        "token": token_request,
        "introspection": _environ_factory(
            app,
            "POST",
            "/introspect",
            headers={"Authorization": basic},
            body=f"token={cc_token}".encode(),
        ),
        "userinfo": _environ_factory(
            app, "GET", "/userinfo", headers={"Authorization": f"Bearer {user_token}"}
        ),
    }
    # The floor: a route that does nothing, through the same app and its hooks.
    requests["healthz"] = _environ_factory(app, "GET", "/healthz", headers={})
    checks = {
        "healthz": b"",
        "token": b'"access_token"',
        "introspection": b'"active":true',
        "userinfo": b'"sub"',
    }
    for name, make in requests.items():
        status, body = _call(app, make)
        if not status.startswith("200") or checks[name] not in body.replace(b" ", b""):
            raise SystemExit(f"{name}: {status} {body!r}")
    return requests


def measure(app, make_environ, n: int) -> float:
    """CPU µs per request over ``n`` calls."""
    started = time.process_time()
    for _ in range(n):
        _call(app, make_environ)
    return (time.process_time() - started) / n * 1e6


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=1000, help="requests per workload and round (1000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, interleaved (3)")
    parser.add_argument("--only", choices=WORKLOADS, action="append", help="only this workload (repeatable)")
    parser.add_argument("--profile", choices=WORKLOADS, help="print a cProfile of this workload")
    parser.add_argument("--profile-out", help="also write the cProfile data to this file (pstats)")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (tottime)")
    parser.add_argument("--top", type=int, default=40, help="cProfile lines (40)")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="only warm up and make the -n calls of each workload once, no report: for callgrind, whose "
        "total instruction count with -n N minus the count with -n 0 is N requests' worth",
    )
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/4")
    # Named so that nobody mistakes it for a bench.load one.
    parser.add_argument(
        "--database-prefix", default="idp_profile_hot", help="name of the database made: <prefix>_<pid>_<hex>"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="idp-profile-hot-"))
    database_url = app = None
    try:
        database_url = load.create_database(args.postgres, args.database_prefix)
        config_path = tmp / "idp.toml"
        load.write_config(
            config_path, issuer=ISSUER, database_url=database_url, redis_url=args.redis, bcrypt_rounds=4
        )
        os.environ["IDP_CONFIG"] = str(config_path)
        os.environ["IDP_INSTANCE_PATH"] = str(tmp / "instance")
        from idp import create_app

        app = create_app()
        client_id, client_secret = load.prepare_idp(app)
        filled = fill.fill(
            database_url,
            client_id=client_id,
            redirect_uri=load.REDIRECT_URI,
            accounts=10,
            tokens=10,
            codes=0,
            password=load.PASSWORD,
            rounds=4,
        )
        user_token = fill.ACCESS_PREFIX + str(filled["tokens"]["first"])
        requests = build_requests(app, client_id, client_secret, user_token)
        names = args.only or list(WORKLOADS)
        for name in names:  # warm-up: caches, compiled statements, pool
            measure(app, requests[name], 50 if args.plain else max(50, args.n // 10))
        if args.plain:
            for name in names:
                measure(app, requests[name], args.n)
            return {}
        figures: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.rounds):
            for name in names:
                figures[name].append(measure(app, requests[name], args.n))
        print(f"CPU µs per request (process_time, {args.n} requests x {args.rounds} rounds, in-process WSGI)")
        for name in names:
            values = figures[name]
            print(
                f"  {name:14s} median {statistics.median(values):7.0f}   range {min(values):.0f}–{max(values):.0f}"
            )
        if args.profile:
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            for _ in range(args.n):
                _call(app, requests[args.profile])
            profiler.disable()
            if args.profile_out:
                profiler.dump_stats(args.profile_out)
            stats = pstats.Stats(profiler)
            stats.sort_stats(args.sort).print_stats(args.top)
        return figures
    finally:
        if app is not None:
            from idp.extensions import db

            with app.app_context():
                db.engine.dispose()
        if database_url is not None:
            load.drop_database(database_url)


if __name__ == "__main__":
    main()
