"""Issue 12's scale bar measured in one run: the same workloads against a small and a large database,
interleaved, at a fixed light load, and the large database's plans.

Usage (from the repository root; ``make bench-scale`` installs wrk first):

    make bench-scale                                   # 10,000 against 1,000,000: bench/RESULTS-scale.md
    make bench-scale BENCH_ARGS="--rounds 4 --duration 3"
    .venv/bin/python -m bench.scale --help

What it does, in order (``bench.load`` does each step; this module only arranges them):

1. creates one PostgreSQL database per scale (``scale_<N>_<pid>_<hex>``), migrates it, adds signing
   keys and the bench client, and fills it with ``bench.fill``: N accounts, N stored tokens and the
   same day of authorization codes (300,000) in each;
2. serves each database with ``idp serve --production`` (granian, the same code, the same generated
   production configuration apart from the database and the issuer's port), both up at once;
3. checks every workload on both, warms both up, then runs ``--rounds`` rounds; in each round one
   client sends every workload to both servers alternately, request by request (A B B A A B ...), one
   request in flight: two consecutive requests meet the same machine, and each request's latency is
   its service time, not time spent queueing behind others (``--pairing`` concurrent or sequential
   runs wrk instead, against both at once or one after the other);
4. the workloads: discovery, JWKS, token (client_credentials), introspection and UserInfo of a random
   stored token on each request (uniform over the whole table), the code flow (authorize → sign-in →
   code → token) for random accounts spread over the whole table;
5. reports, per workload and scale, the p50 and p99 of all requests, the large ÷ small ratio of the
   p50s (and its range over the rounds), the server's CPU per request, the shared-buffer hits and
   reads of each database over the run, random token lookups as EXPLAIN (ANALYZE, BUFFERS), and the
   plan of every statement of one request of each workload on the large database (``bench.explain``);
6. writes ``bench/RESULTS-scale.md`` and ``bench/results/<date>-scale-compare.json``; stops the
   servers and drops the databases whatever happened (``--keep`` leaves the databases).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import http.client
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from sqlalchemy import create_engine
from sqlalchemy import make_url
from sqlalchemy import text

from . import codeflow
from . import fill
from . import load
from . import procstat
from .load import STORED
from .load import STORED_USERINFO

WORKLOADS = ("discovery", "jwks", "token", STORED, STORED_USERINFO, "codeflow")
# Issue 12: "from 10k to 1M accounts and tokens, each workload's median latency grows by at most 10 %"
BAR = 1.10
DEFAULT_SCALES = (10_000, 1_000_000)
# The sign-in's bcrypt cost: 4 (bcrypt about 1 ms) so that the flow's median is the provider's own work,
# what the data size can change; at the production cost of 12 a 240 ms hash would hide a slower query.
BCRYPT_ROUNDS = 4


PAIRING = {
    "alternate": "one client (Python, http.client, kept-alive connections) alternates between the two "
    "servers request by request, A B B A A B …, so that two consecutive requests meet the same machine",
    "concurrent": "in each round every workload runs against both databases at the same moment, one wrk "
    "(one code-flow driver) each, the two started in alternating order",
    "sequential": "the scales one after the other per workload, A B then B A",
}


def log(message: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def label(scale: int) -> str:
    """10000 → "10k", 1000000 → "1M"."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if scale >= size and scale % size == 0:
            return f"{scale // size}{suffix}"
    return str(scale)


@dataclass
class Instance:
    """One scale: its database, app (for the set-up and the plans), server and bench side."""

    scale: int
    database_url: str
    port: int
    env: dict
    app: object = None
    filled: dict | None = None
    side: load.Side | None = None
    running: load.Running | None = None

    @property
    def name(self) -> str:
        return label(self.scale)


def build_app(env: dict):
    """An app of this scale's configuration: create_app reads IDP_CONFIG when it is called."""
    from idp import create_app

    os.environ.update({"IDP_CONFIG": env["IDP_CONFIG"], "IDP_INSTANCE_PATH": env["IDP_INSTANCE_PATH"]})
    return create_app()


def prepare(instance: Instance, args, tmp: Path) -> None:
    """Schema, keys, the client, then the rows: what ``bench.load`` does for its one database."""
    instance.app = build_app(instance.env)
    client_id, secret = load.prepare_idp(instance.app)
    log(f"{instance.name}: filling {instance.scale:,} accounts and tokens, {args.codes:,} codes")
    instance.filled = fill.fill(
        instance.database_url,
        client_id=client_id,
        redirect_uri=load.REDIRECT_URI,
        accounts=instance.scale,
        tokens=instance.scale,
        codes=args.codes,
        password=load.PASSWORD,
        rounds=args.bcrypt_rounds,
    )
    instance.filled["client_id"] = client_id
    instance.filled["client_secret"] = secret
    log(
        f"{instance.name}: filled in {sum(instance.filled['seconds'].values()):.1f} s, "
        f"{instance.filled['database_bytes'] / load.MIB:,.0f} MiB"
    )


def spread_logins(scale: int, count: int) -> list[str]:
    """Logins drawn uniformly from the whole table, not a hot few at its start."""
    return [fill.login_for(n) for n in random.sample(range(1, scale + 1), min(scale, count))]


def block_counters(pg_engine, databases: list[str]) -> dict[str, dict[str, int]]:
    """pg_stat_database's shared-buffer hits and reads (pages found outside shared_buffers) per database."""
    with pg_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT datname, blks_hit, blks_read FROM pg_stat_database WHERE datname = ANY(:d)"),
            {"d": databases},
        )
        return {row[0]: {"hit": row[1], "read": row[2]} for row in rows}


def settings_of(pg_engine) -> dict[str, str]:
    names = ("shared_buffers", "effective_cache_size", "work_mem", "random_page_cost", "max_connections")
    with pg_engine.connect() as conn:
        return {name: conn.scalar(text(f"SHOW {name}")) for name in names}


def measure(instance: Instance, workload: str, round_no: int, args, pg_engine) -> dict:
    side = instance.side
    if workload == "codeflow":
        row = load.measure_codeflow(
            side,
            round_no=round_no,
            concurrency=args.connections,
            duration=args.duration,
            pg_engine=pg_engine,
        )
        row.update(
            p50_ms=row["latency_ms"]["p50"],
            p99_ms=row["latency_ms"]["p99"],
            requests=row["flows"],
            errors_total=row["errors"],
            cpu_ms_per_req=row["cpu_ms_per_flow"],
            pg_cpu_ms_per_req=row["pg_cpu_ms_per_flow"],
        )
    else:
        row = load.measure_wrk(
            side,
            workload,
            connections=args.connections,
            round_no=round_no,
            args=args,
            pg_engine=pg_engine,
            stored=instance.filled["tokens"],
        )
    row["scale"] = instance.scale
    return row


class Sender:
    """One request of a workload at a time to one server, over a kept-alive connection (http.client: a
    few tens of µs of client work, the same for both sides), with a fresh random stored token or account
    each time; ``send()`` says whether the answer was a 200."""

    def __init__(self, instance: Instance, workload: str):
        self.instance, self.workload = instance, workload
        side = instance.side
        self.stored = instance.filled["tokens"]
        self.connection = http.client.HTTPConnection("127.0.0.1", instance.port, timeout=60)
        self.method, self.body, self.headers = "GET", None, {}
        url = {
            "discovery": side.origin + "/.well-known/openid-configuration",
            "jwks": side.meta["jwks_uri"],
            "token": side.meta["token_endpoint"],
            STORED: side.meta["introspection_endpoint"],
            STORED_USERINFO: side.meta["userinfo_endpoint"],
        }.get(workload)
        self.path = urlsplit(url).path if url else None
        if workload in ("token", STORED):
            self.method = "POST"
            self.headers = {"Authorization": side.basic, "Content-Type": "application/x-www-form-urlencoded"}
            self.body = "grant_type=client_credentials"

    def _token(self) -> str:
        return f"{self.stored['access_prefix']}{random.randint(self.stored['first'], self.stored['last'])}"

    def send(self) -> bool:
        if self.workload == "codeflow":
            side = self.instance.side
            try:
                codeflow.run(side.provider, random.choice(side.logins), load.PASSWORD)
            except (codeflow.FlowError, requests.RequestException, ValueError, KeyError):
                return False
            return True
        headers, body = self.headers, self.body
        if self.workload == STORED:
            body = "token=" + self._token()
        elif self.workload == STORED_USERINFO:
            headers = {"Authorization": "Bearer " + self._token()}
        try:
            self.connection.request(self.method, self.path, body=body, headers=headers)
            response = self.connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            return False
        return response.status == 200

    def close(self) -> None:
        self.connection.close()


def _percentile(values: list[float], fraction: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else None


PROBE_SQL = """
EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
SELECT tokens.id, tokens.scope, accounts.sub, accounts.surname FROM tokens
JOIN oauth2_clients ON oauth2_clients.client_id = tokens.client_id AND oauth2_clients.enabled
LEFT OUTER JOIN accounts ON accounts.id = tokens.account_id
WHERE tokens.access_token_hash = :digest
"""


def probe_lookups(instance: Instance, count: int) -> dict:
    """The pages that finding one random stored token and its account costs, from PostgreSQL itself:
    UserInfo's and introspection's lookup (the same indexes and rows) as EXPLAIN (ANALYZE, BUFFERS) for
    ``count`` random tokens. A read is a page that was not in shared_buffers."""
    engine = create_engine(instance.database_url)
    stored = instance.filled["tokens"]
    hits, reads, times = [], [], []
    try:
        with engine.connect() as conn:
            for _ in range(count):
                token = f"{stored['access_prefix']}{random.randint(stored['first'], stored['last'])}"
                digest = hashlib.sha256(token.encode()).hexdigest()
                plan = conn.scalar(text(PROBE_SQL), {"digest": digest})[0]
                hits.append(plan["Plan"]["Shared Hit Blocks"])
                reads.append(plan["Plan"]["Shared Read Blocks"])
                times.append(plan["Execution Time"])
    finally:
        engine.dispose()
    return {
        "lookups": count,
        "hit_per_lookup": round(statistics.mean(hits), 2),
        "read_per_lookup": round(statistics.mean(reads), 2),
        "lookups_with_a_read": sum(1 for r in reads if r),
        "execution_ms_p50": round(statistics.median(times), 4),
        "execution_ms_p90": round(_percentile(times, 0.9), 4),
    }


def measure_alternating(
    instances: list[Instance], workload: str, round_no: int, args, pg_engine, pooled: dict
) -> list[dict]:
    """One client, one request at a time, alternating between the scales request by request (A B, B A,
    A B, …): two consecutive requests a few milliseconds apart meet the same machine, whatever else
    runs on it. Each request's latency goes into ``pooled[(workload, scale)]`` too."""
    senders = [Sender(instance, workload) for instance in instances]
    watches = [
        (procstat.Watch(i.running.proc.pid).start(), load.PgWatch(pg_engine, i.side.pg_database).start())
        for i in instances
    ]
    latencies: list[list[float]] = [[] for _ in instances]
    errors = [0 for _ in instances]
    order = list(range(len(instances)))
    if round_no % 2 == 0:
        order.reverse()
    started = time.perf_counter()
    deadline = started + args.duration
    while time.perf_counter() < deadline:
        for k in order:
            t0 = time.perf_counter()
            ok = senders[k].send()
            elapsed = time.perf_counter() - t0
            if ok:
                latencies[k].append(elapsed * 1000)
            else:
                errors[k] += 1
        order.reverse()
    seconds = time.perf_counter() - started
    rows = []
    for k, instance in enumerate(instances):
        watch, pg = watches[k]
        watch.stop()
        pg.stop()
        senders[k].close()
        done = max(len(latencies[k]), 1)
        pooled.setdefault((workload, instance.scale), []).extend(latencies[k])
        row = {
            "workload": workload,
            "side": instance.name,
            "scale": instance.scale,
            "connections": 1,
            "round": round_no,
            "requests": len(latencies[k]),
            "seconds": round(seconds, 3),
            "p50_ms": statistics.median(latencies[k]) if latencies[k] else None,
            "p99_ms": _percentile(latencies[k], 0.99),
            "errors_total": errors[k],
            "cpu_ms_per_req": round(watch.cpu * 1000 / done, 3),
            "pg_cpu_ms_per_req": None if pg.cpu is None else round(pg.cpu * 1000 / done, 3),
            "rss_worker_max_mib": round(watch.worker_rss_max() / load.MIB, 1),
            "loadavg_1min": os.getloadavg()[0],
        }
        rows.append(row)
        load.log(
            f"{workload:>20} {instance.name:<4} r{round_no}: {row['requests']:>6} requests  "
            f"p50 {_ms(row['p50_ms'])} ms  p99 {_ms(row['p99_ms'])} ms  cpu {row['cpu_ms_per_req']:.3f} ms/req  "
            f"errors {errors[k]}"
        )
    return rows


def measure_together(instances: list[Instance], workload: str, round_no: int, args, pg_engine) -> list[dict]:
    """The same workload against every scale at the same moment, each with its own client: whatever
    else the machine runs meanwhile slows both alike, which one after the other it does not."""
    rows: list[dict | None] = [None] * len(instances)
    errors: list[BaseException] = []

    def one(index: int, instance: Instance) -> None:
        try:
            rows[index] = measure(instance, workload, round_no, args, pg_engine)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread below
            errors.append(error)

    threads = [threading.Thread(target=one, args=pair) for pair in enumerate(instances)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [row for row in rows if row is not None]


def run(args) -> dict:
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="idp-scale-"))
    instances: list[Instance] = []
    pg_engine = None
    try:
        pg_engine = load.admin_engine(args.postgres)
        for scale in args.scales:
            database_url = load.create_database(args.postgres, prefix=f"{args.database_prefix}_{scale}")
            port = load.free_port()
            config_path = tmp / f"idp-{scale}.toml"
            load.write_config(
                config_path,
                issuer=f"http://127.0.0.1:{port}",
                database_url=database_url,
                redis_url=args.redis,
                bcrypt_rounds=args.bcrypt_rounds,
                threads=args.threads,
            )
            env = {
                **os.environ,
                "IDP_CONFIG": str(config_path),
                "IDP_INSTANCE_PATH": str(tmp / f"instance-{scale}"),
            }
            instance = Instance(scale, database_url, port, env)
            instances.append(instance)
            prepare(instance, args, tmp)
        context = load.machine_and_versions(args, pg_engine)
        context["pg_settings"] = settings_of(pg_engine)

        for instance in instances:
            instance.running = load.start(
                instance.name,
                load.idp_server_command("production", args.workers, args.threads, instance.port),
                instance.env,
                tmp / f"idp-{instance.scale}.log",
            )
        for instance in instances:
            origin = f"http://127.0.0.1:{instance.port}"
            load.wait_until_up(instance.running, origin + "/.well-known/openid-configuration")
            instance.side = load.Side(
                instance.name,
                instance.running,
                origin,
                instance.filled["client_id"],
                instance.filled["client_secret"],
                spread_logins(instance.scale, args.logins),
                pg_database=make_url(instance.database_url).database,
            )
            instance.side.discover()

        wrk_workloads = [w for w in args.workloads if w != "codeflow"]
        for instance in instances:
            for workload in wrk_workloads:
                load.check_workload(instance.side, workload, instance.filled["tokens"])
            if "codeflow" in args.workloads:
                codeflow.run(instance.side.provider, random.choice(instance.side.logins), load.PASSWORD)
        log("every workload answers correctly at every scale")
        if args.warmup:
            for instance in instances:
                for workload in wrk_workloads:
                    url, wenv = load.workload_request(instance.side, workload, instance.filled["tokens"])
                    load.run_wrk(url, wenv, connections=args.connections, threads=1, duration=args.warmup)
            log("warmed up")

        databases = [instance.side.pg_database for instance in instances]
        blocks_before = block_counters(pg_engine, databases)
        loadavg_before = os.getloadavg()
        rows: list[dict] = []
        pooled: dict[tuple[str, int], list[float]] = {}
        for round_no in range(1, args.rounds + 1):
            # A B, then B A: a drift of the machine's load over a round does not favour one side.
            order = instances if round_no % 2 else list(reversed(instances))
            for workload in args.workloads:
                if args.pairing == "alternate":
                    rows += measure_alternating(instances, workload, round_no, args, pg_engine, pooled)
                elif args.pairing == "concurrent":
                    rows += measure_together(order, workload, round_no, args, pg_engine)
                else:
                    for instance in order:
                        rows.append(measure(instance, workload, round_no, args, pg_engine))
        loadavg_after = os.getloadavg()
        blocks_after = block_counters(pg_engine, databases)

        results = {
            "context": context,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "fill": {
                str(i.scale): {k: v for k, v in i.filled.items() if k != "client_secret"} for i in instances
            },
            "databases": databases,
            "servers": {
                str(i.scale): {"pid": i.running.proc.pid, "command": i.running.proc.args} for i in instances
            },
            "rows": rows,
            # Every request's latency of a workload and scale, all rounds together (alternate pairing).
            "pooled": [
                {
                    "workload": workload,
                    "scale": scale,
                    "requests": len(values),
                    "p50_ms": statistics.median(values) if values else None,
                    "p99_ms": _percentile(values, 0.99),
                }
                for (workload, scale), values in pooled.items()
            ],
            "loadavg": {"before": loadavg_before, "after": loadavg_after},
            "blocks": {
                str(i.scale): {
                    key: blocks_after.get(i.side.pg_database, {}).get(key, 0)
                    - blocks_before.get(i.side.pg_database, {}).get(key, 0)
                    for key in ("hit", "read")
                }
                for i in instances
            },
        }
        if args.probe:
            results["probe"] = {str(i.scale): probe_lookups(i, args.probe) for i in instances}
        if not args.no_explain:
            big = instances[-1]
            log(f"recording SQL and plans on {big.name}")
            os.environ.update(
                {"IDP_CONFIG": big.env["IDP_CONFIG"], "IDP_INSTANCE_PATH": big.env["IDP_INSTANCE_PATH"]}
            )
            try:
                results["explain"] = load.explain_idp(
                    big.app, big.side, big.filled["tokens"], userinfo_stored=True
                )
            except Exception as error:  # noqa: BLE001 - the measurements above are kept whatever happens here
                log(f"SQL and plans not recorded: {type(error).__name__}: {error}")
        results["elapsed_s"] = round(time.perf_counter() - started, 1)
        return results
    finally:
        t0 = time.perf_counter()
        for instance in instances:
            load.stop(instance.running)
        log(f"servers stopped in {time.perf_counter() - t0:.1f} s")
        if pg_engine is not None:
            pg_engine.dispose()
        for instance in instances:
            with contextlib.suppress(Exception):
                from idp.extensions import db

                with instance.app.app_context():
                    db.engine.dispose()
            if args.keep:
                log(f"kept {instance.database_url}")
            else:
                load.drop_database(instance.database_url)
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"cleaned up in {time.perf_counter() - t0:.1f} s")


# ---------------------------------------------------------------------------------------------------
# Report


def summarize(results: dict) -> list[dict]:
    """Per workload: each scale's medians over the rounds, and the large ÷ small p50 ratio per round."""
    scales = results["settings"]["scales"]
    small, big = scales[0], scales[-1]
    rows = results["rows"]
    table = []
    for workload in results["settings"]["workloads"]:
        mine = {s: [r for r in rows if r["workload"] == workload and r["scale"] == s] for s in scales}
        by_round = {s: {r["round"]: r for r in mine[s]} for s in scales}
        ratios = [
            by_round[big][n]["p50_ms"] / by_round[small][n]["p50_ms"]
            for n in by_round[small]
            if n in by_round[big] and by_round[small][n]["p50_ms"] and by_round[big][n]["p50_ms"]
        ]

        def median(scale, key, mine=mine):
            values = [r[key] for r in mine[scale] if r.get(key) is not None]
            return statistics.median(values) if values else None

        entry = {"workload": workload, "ratios": ratios}
        for s in scales:
            entry[str(s)] = {
                "p50_ms": median(s, "p50_ms"),
                "p99_ms": median(s, "p99_ms"),
                "cpu_ms": median(s, "cpu_ms_per_req"),
                "pg_cpu_ms": median(s, "pg_cpu_ms_per_req"),
                "requests": sum(r["requests"] for r in mine[s]),
                "errors": sum(r["errors_total"] for r in mine[s]),
            }
        pooled = {p["scale"]: p for p in results.get("pooled", []) if p["workload"] == workload}
        if small in pooled and big in pooled and pooled[small]["p50_ms"] and pooled[big]["p50_ms"]:
            # Alternate pairing: every request of the run in one median per scale.
            for s in scales:
                entry[str(s)].update(p50_ms=pooled[s]["p50_ms"], p99_ms=pooled[s]["p99_ms"])
            entry["ratio"] = pooled[big]["p50_ms"] / pooled[small]["p50_ms"]
        else:
            entry["ratio"] = statistics.median(ratios) if ratios else None
        table.append(entry)
    return table


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def markdown(results: dict) -> str:
    ctx = results["context"]
    settings = results["settings"]
    scales = settings["scales"]
    small, big = scales[0], scales[-1]
    names = {s: label(s) for s in scales}
    summary = summarize(results)
    pg = ctx["pg_settings"]
    loads = [r["loadavg_1min"] for r in results["rows"]]
    before, after = results["loadavg"]["before"], results["loadavg"]["after"]
    fills = results["fill"]
    data = "; ".join(
        f"{names[s]}: {fills[str(s)]['accounts']['count']:,} accounts, {fills[str(s)]['tokens']['count']:,} "
        f"stored tokens, {fills[str(s)]['codes']:,} authorization codes, "
        f"{fills[str(s)]['database_bytes'] / load.MIB:,.0f} MiB"
        for s in scales
    )
    lines = [
        f"# idp at {names[small]} and {names[big]} accounts and tokens: `make bench-scale`",
        "",
        "Written by `bench/scale.py` (see bench/README.md); do not edit by hand. Raw numbers: "
        f"`{results.get('json_path', '?')}`.",
        "",
        f"- Date: {ctx['date']}; machine: {ctx['nproc']} × {ctx['cpu_model']}, Linux {ctx['kernel']}",
        f"- idp code of {ctx['idp_code_commit']} (the last commit to idp/; worktree at {ctx['idp_commit']}) "
        f"on Python {ctx['python']}, served by {ctx['server']} ({settings['workers']} workers, "
        f"{settings['threads']} threads each), one server per database, both up for the whole run",
        f"- PostgreSQL {ctx['postgresql']}, one server for both databases: "
        + ", ".join(f"{k} {v}" for k, v in pg.items()),
        f"- Data: {data}",
        f"- Load: {ctx['wrk']}, 1 thread, {settings['connections']} connection(s) (closed loop: the next "
        f"request leaves when the answer is in), {settings['duration']:g} s per run, {settings['rounds']} "
        f"rounds; {PAIRING[settings.get('pairing', 'sequential')]}; code flow: "
        f"{settings['connections']} flow(s) at a time, bcrypt cost {settings['bcrypt_rounds']}",
        f"- Load average (1, 5, 15 min) at the start of the measured rounds {before[0]:.1f}, {before[1]:.1f}, "
        f"{before[2]:.1f}; at their end {after[0]:.1f}, {after[1]:.1f}, {after[2]:.1f}; 1-minute load "
        f"after each run {min(loads):.1f}–{max(loads):.1f} (other work shares the {ctx['nproc']} cores)",
        f"- Whole run {results['elapsed_s'] / 60:.1f} min, filling included",
        "",
        (
            f"p50 and p99: over every request of the run (all rounds). **{names[big]}/{names[small]}**: "
            f"the ratio of those p50s; in brackets the range of the same ratio within each round. "
            if results.get("pooled")
            else f"p50 and p99: the median over the rounds of each run's percentile (wrk's, or the code "
            f"flow's own timing). **{names[big]}/{names[small]}**: the ratio of the p50s of the two runs of "
            f"the same round, median over the rounds (range in brackets). "
        )
        + f"Issue 12's bar is ≤ {BAR:.2f}. Latency is the client's: send to last byte, loopback included. "
        "CPU: the server's whole process tree per request (per flow), PG: the database's backends, "
        "medians over the rounds.",
        "",
        f"| workload | p50 ms {names[small]} | p50 ms {names[big]} | **{names[big]}/{names[small]}** p50 "
        f"| p99 ms {names[small]} / {names[big]} | CPU ms {names[small]} / {names[big]} "
        f"| PG CPU ms {names[small]} / {names[big]} | requests | errors | ≤ {BAR:.2f} |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in summary:
        a, b = entry[str(small)], entry[str(big)]
        ratio = entry["ratio"]
        spread = (
            f" ({min(entry['ratios']):.2f}–{max(entry['ratios']):.2f})" if len(entry["ratios"]) > 1 else ""
        )
        lines.append(
            f"| {entry['workload']} | {_ms(a['p50_ms'])} | {_ms(b['p50_ms'])} "
            f"| **{'–' if ratio is None else f'{ratio:.3f}'}**{spread} "
            f"| {_ms(a['p99_ms'])} / {_ms(b['p99_ms'])} | {_ms(a['cpu_ms'])} / {_ms(b['cpu_ms'])} "
            f"| {_ms(a['pg_cpu_ms'])} / {_ms(b['pg_cpu_ms'])} | {a['requests']:,} / {b['requests']:,} "
            f"| {a['errors'] + b['errors']} | {'–' if ratio is None else 'yes' if ratio <= BAR else '**no**'} |"
        )
    lines += ["", "## Shared buffers over the measured rounds (pg_stat_database)", ""]
    lines += [
        "| database | pages hit in shared_buffers | pages read from outside (OS cache or disk) | read share |",
        "|---|---|---|---|",
    ]
    for s in scales:
        blocks = results["blocks"][str(s)]
        total = blocks["hit"] + blocks["read"]
        share = f"{100 * blocks['read'] / total:.2f} %" if total else "–"
        lines.append(f"| {names[s]} | {blocks['hit']:,} | {blocks['read']:,} | {share} |")
    if results.get("probe"):
        lines += [
            "",
            f"## One random stored token and its account, {settings['probe']} times per database",
            "",
            "What introspection and UserInfo ask PostgreSQL (the token by its digest's unique index, its "
            "client, its account by primary key), as `EXPLAIN (ANALYZE, BUFFERS)` of random stored tokens "
            "after the measured rounds: pages per lookup found in shared_buffers (hit) and outside (read: "
            "the OS cache or the disk), and the time inside PostgreSQL.",
            "",
            "| database | pages hit / lookup | pages read / lookup | lookups with a read | execution p50 / p90 ms |",
            "|---|---|---|---|---|",
        ]
        for s in scales:
            probe = results["probe"][str(s)]
            lines.append(
                f"| {names[s]} | {probe['hit_per_lookup']:.2f} | {probe['read_per_lookup']:.2f} "
                f"| {probe['lookups_with_a_read']} of {probe['lookups']} "
                f"| {probe['execution_ms_p50']:.3f} / {probe['execution_ms_p90']:.3f} |"
            )
    plans = load.explain_markdown(results.get("explain"))
    if plans:
        # After the section's heading: which database the plans are of.
        plans[3:3] = [f"On the {names[big]} database, after the measured rounds.", ""]
    lines += plans
    return "\n".join(lines) + "\n"


def report(results: dict, args, write_json: bool = True) -> None:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    json_path = Path(args.json_out or load.BENCH / "results" / f"{stamp}-scale-compare.json")
    if write_json:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(ValueError):
            results["json_path"] = str(json_path.resolve().relative_to(load.ROOT))
        results.setdefault("json_path", str(json_path))
        json_path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    text_out = markdown(results)
    print(text_out)
    if not args.no_markdown:
        md_path = args.markdown_out or load.BENCH / "RESULTS-scale.md"
        md_path.write_text(text_out, encoding="utf-8")
        log(f"wrote {md_path} and {json_path}")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scales",
        type=lambda s: [int(x) for x in s.split(",")],
        default=list(DEFAULT_SCALES),
        help="the small and the large count of accounts and stored tokens (default 10000,1000000)",
    )
    parser.add_argument(
        "--codes", type=int, default=fill.CODES_PER_DAY, help="authorization codes in each database"
    )
    parser.add_argument("--rounds", type=int, default=12, help="rounds (default 12)")
    parser.add_argument("--duration", type=int, default=5, help="whole seconds per run (default 5)")
    parser.add_argument(
        "--connections", type=int, default=1, help="wrk connections, concurrent code flows (default 1)"
    )
    parser.add_argument(
        "--pairing",
        choices=("alternate", "concurrent", "sequential"),
        default="alternate",
        help="alternate: one client, A B B A request by request (default); concurrent: a wrk against each at "
        "the same moment; sequential: a wrk against one, then the other",
    )
    parser.add_argument("--warmup", type=int, default=2, help="whole seconds of unrecorded load per workload")
    parser.add_argument(
        "--workloads",
        type=lambda s: s.split(","),
        default=list(WORKLOADS),
        help=f"comma-separated subset of {', '.join(WORKLOADS)}",
    )
    parser.add_argument("--workers", type=int, default=2, help="idp worker processes per server (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="[server] threads per worker (default 4)")
    parser.add_argument(
        "--bcrypt-rounds",
        type=int,
        default=BCRYPT_ROUNDS,
        help=f"[passwords] bcrypt_rounds of both servers (default {BCRYPT_ROUNDS}: see bench/README.md)",
    )
    parser.add_argument(
        "--logins", type=int, default=5000, help="accounts the code flow signs in, spread over the table"
    )
    parser.add_argument(
        "--probe", type=int, default=500, help="random token lookups explained per database (default 500)"
    )
    parser.add_argument("--no-explain", action="store_true")
    parser.add_argument("--keep", action="store_true", help="leave the databases (drop them yourself)")
    parser.add_argument(
        "--database-prefix", default="scale", help="names of the databases made: <prefix>_<N>_<pid>_<hex>"
    )
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/4")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--markdown-out", type=Path, default=None, help="default bench/RESULTS-scale.md")
    parser.add_argument("--no-markdown", action="store_true")
    parser.add_argument(
        "--render", type=Path, default=None, metavar="JSON", help="run nothing: write the markdown again"
    )
    args = parser.parse_args(argv)
    if len(args.scales) != 2 or args.scales[0] >= args.scales[1] or args.scales[0] < 1:
        parser.error("--scales takes two counts, the smaller first")
    unknown = set(args.workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    for url in (args.postgres, args.redis):
        if "127.0.0.1" not in url and "localhost" not in url:
            parser.error(f"the benchmark talks to 127.0.0.1 only: {url}")
    # What bench.load's helpers read from their own arguments.
    args.server, args.wrk_threads = "production", 1
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.render:
        results = json.loads(args.render.read_text(encoding="utf-8"))
        args.json_out = args.render
        report(results, args, write_json=False)
        return results
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (make bench-scale does it)")
    results = run(args)
    report(results, args)
    return results


if __name__ == "__main__":
    main()
