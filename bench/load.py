"""Side-by-side load benchmark: idp on PostgreSQL under a production WSGI server against
node-oidc-provider, the same workloads interleaved in one run (issue 12).

Usage (from the repository root; ``make bench-load`` installs wrk and the node modules first):

    make bench-load                              # baseline: 2 rounds at 16 and 64 connections
    make bench-load SCALE=10000                  # the same with 10,000 accounts and tokens, a day of codes
    make bench-load BENCH_ARGS="--server granian"
    .venv/bin/python -m bench.load --help        # every option

What it does, in order:

1. creates a PostgreSQL database of its own on 127.0.0.1:5432, migrates it, adds signing keys and
   one confidential, trusted client (client_secret_basic; authorization_code and client_credentials),
   and fills it with ``bench.fill`` (100 accounts and tokens, or ``--scale N`` of each plus 300,000
   authorization codes);
2. serves idp with ``--server`` (gunicorn sync by default, ``--workers`` 2) from a generated
   production configuration (``IDP_CONFIG``; Redis rate-limit storage ``redis://127.0.0.1:6379/4``),
   and node-oidc-provider 9.13.3 (``bench/node/server.mjs``, one process, in-memory store);
3. checks that every workload answers correctly on both sides, warms both up, then for each round,
   each connection count and each workload runs wrk against idp, then node (A, B, A, B ...), reading
   the CPU time of each server's whole process tree from /proc before and after (and the CPU of
   idp's PostgreSQL backends), and sampling each process's resident memory;
4. runs the full code flow (``bench.codeflow``: authorize → sign-in form → code → token) with a few
   concurrent flows on each side, and a few sign-ins one at a time; measures bcrypt verification
   alone at idp's cost in this process;
5. records the SQL each idp workload sends and PostgreSQL's plan of each statement (``bench.explain``);
6. prints a table and writes it to ``bench/RESULTS.md`` (``bench/RESULTS-scale-N.md`` with
   ``--scale``), the raw numbers to ``bench/results/<date>[-scale-N]-<server>.json``; then stops
   both servers and drops the database, whatever happened.

Every request goes to 127.0.0.1. The workloads: discovery, JWKS, token (client_credentials),
introspection (of a fresh client_credentials token), UserInfo (with an access token from a real code
flow), the code flow; with ``--scale``, also introspection of random stored tokens.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import requests
from sqlalchemy import create_engine
from sqlalchemy import make_url
from sqlalchemy import text

from . import codeflow
from . import explain
from . import fill
from . import procstat

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
NODE_DIR = BENCH / "node"
LUA = BENCH / "wrk" / "request.lua"
VENV_BIN = Path(sys.executable).parent

# "production" is ``idp serve --production`` itself (idp/serving.py: granian, the provider's access log
# and metrics), with [server] threads = --threads; the others start a bare server on the same app, for
# comparison ("granian" is granian without what idp serve adds).
SERVERS = ("production", "gunicorn-sync", "gunicorn-gthread", "granian")
WRK_WORKLOADS = ("discovery", "jwks", "token", "introspection", "userinfo")
STORED = "introspection-stored"
# UserInfo with a random one of the stored tokens as the bearer on each request (bench.scale)
STORED_USERINFO = "userinfo-stored"
# Port 9 is "discard": nothing listens there, and the flow never requests the redirect URI anyway.
REDIRECT_URI = "http://127.0.0.1:9/cb"
SCOPE = "openid profile phone"
PASSWORD = "bench password 2024"
BCRYPT_ROUNDS = 12
# bcrypt verifications timed alone right before, and as many right after, each round of idp's code flows.
BCRYPT_RUNS_AROUND = 4
SMALL_FILL = 100
MIB = 1024 * 1024


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------------------------------
# Servers


def idp_server_command(server: str, workers: int, threads: int, port: int) -> list[str]:
    """How idp is served: the one place to change when ``idp serve --production`` exists."""
    bind = f"127.0.0.1:{port}"
    if server == "production":
        return [
            str(VENV_BIN / "idp"),
            "serve",
            "--production",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
    if server == "gunicorn-sync":
        return [
            str(VENV_BIN / "gunicorn"),
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--bind",
            bind,
            "--log-level",
            "warning",
            "idp:create_app()",
        ]
    if server == "gunicorn-gthread":
        return [
            str(VENV_BIN / "gunicorn"),
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--bind",
            bind,
            "--log-level",
            "warning",
            "idp:create_app()",
        ]
    if server == "granian":
        return [
            str(VENV_BIN / "granian"),
            "--interface",
            "wsgi",
            "--factory",
            "--workers",
            str(workers),
            "--blocking-threads",
            str(threads),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "idp:create_app",
        ]
    raise ValueError(f"unknown server {server}")


def server_version(server: str) -> str:
    name = "granian" if server in ("production", "granian") else "gunicorn"
    version = f"{name} {importlib.metadata.version(name)}"
    return f"idp serve --production: {version}" if server == "production" else version


@dataclass
class Running:
    name: str
    proc: subprocess.Popen
    log_path: Path

    def tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def start(name: str, command: list[str], env: dict, log_path: Path, cwd: Path = ROOT) -> Running:
    # A session of its own: stop() ends the server's whole process group (master and workers).
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Running(name, proc, log_path)


def stop(running: Running | None) -> None:
    if running is None or running.proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(running.proc.pid, signal.SIGTERM)
    try:
        running.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(running.proc.pid, signal.SIGKILL)
        running.proc.wait(timeout=15)


def wait_until_up(running: Running, url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.proc.poll() is not None:
            raise RuntimeError(f"{running.name} exited with {running.proc.returncode}:\n{running.tail()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{running.name} did not answer {url} within {timeout:.0f} s:\n{running.tail()}")


# ---------------------------------------------------------------------------------------------------
# The database and idp's own set-up


def admin_engine(server_url: str):
    return create_engine(make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def create_database(server_url: str, prefix: str = "idp_bench") -> str:
    """A database of its own, ``<prefix>_<pid>_<hex>``: several people benchmarking on one PostgreSQL
    server each give their own prefix (``--database-prefix``), so that nobody drops another's."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    engine = admin_engine(server_url)
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str) -> None:
    name = make_url(database_url).database
    engine = admin_engine(database_url)
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def write_config(
    path: Path, *, issuer: str, database_url: str, redis_url: str, bcrypt_rounds: int, threads: int = 4
) -> None:
    """A production configuration; the two departures from the defaults are explained inline."""
    path.write_text(
        "\n".join(
            [
                "[server]",
                'environment = "production"',
                f'issuer = "{issuer}"',
                f'secret_key = "{secrets.token_urlsafe(48)}"',
                f"threads = {threads}",
                "[database]",
                f'url = "{database_url}"',
                "[rate_limits]",
                f'storage_uri = "{redis_url}"',
                "[passwords]",
                f"bcrypt_rounds = {bcrypt_rounds}",
                "[oauth]",
                "# node-oidc-provider's access token lifetime in this bench (bench/node/server.mjs)",
                "access_token_ttl = 3600",
                "[login]",
                "# every sign-in comes from 127.0.0.1: the limit is still checked in Redis, never reached",
                'rate_limit = "1000000/minute"',
                "[limits]",
                "# the concurrent code flows stand for many people, all from 127.0.0.1: the per-address",
                "# cap and rate of pages (idp.admission) would refuse them",
                "pages_in_flight = 0",
                "pages_per_second = 0",
                "",
            ]
        ),
        encoding="utf-8",
    )


def prepare_idp(app) -> tuple[str, str]:
    """Schema, signing keys and the bench client, through idp's own code; returns its id and secret."""
    from flask_migrate import upgrade

    from idp.extensions import db
    from idp.runtime import of
    from idp.services import clients
    from idp.services import keys

    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        keys.ensure_keys(db.session, now=int(time.time()))
        data = clients.ClientInput(
            name="Bench",
            redirect_uris=[REDIRECT_URI],
            scope=SCOPE,
            trusted=True,
            grant_types=["authorization_code", "client_credentials"],
        )
        client, secret = clients.create_client(
            db.session, data, limits=of(app).settings.oauth, now=int(time.time())
        )
        db.session.commit()
        return client.client_id, secret


# ---------------------------------------------------------------------------------------------------
# Sides and their tokens


@dataclass
class Side:
    name: str
    running: Running
    origin: str
    client_id: str
    client_secret: str
    logins: list[str]
    meta: dict = field(default_factory=dict)
    pg_database: str | None = None

    @property
    def basic(self) -> str:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def discover(self) -> None:
        self.meta = requests.get(self.origin + "/.well-known/openid-configuration", timeout=10).json()

    @property
    def provider(self) -> codeflow.Provider:
        return codeflow.Provider(
            self.origin,
            self.meta["authorization_endpoint"],
            self.meta["token_endpoint"],
            self.client_id,
            self.client_secret,
            REDIRECT_URI,
            SCOPE,
        )

    def client_credentials_token(self) -> str:
        response = requests.post(
            self.meta["token_endpoint"],
            data={"grant_type": "client_credentials"},
            headers={"Authorization": self.basic},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def user_token(self) -> str:
        """An access token bound to a user, from a real code flow with a real sign-in."""
        return codeflow.run(self.provider, random.choice(self.logins), PASSWORD)["access_token"]


def workload_request(side: Side, workload: str, stored: dict | None) -> tuple[str, dict]:
    """The URL and the wrk environment of one workload on one side (tokens are minted here, fresh)."""
    meta = side.meta
    if workload == "discovery":
        return side.origin + "/.well-known/openid-configuration", {}
    if workload == "jwks":
        return meta["jwks_uri"], {}
    if workload == "token":
        return meta["token_endpoint"], {
            "BENCH_METHOD": "POST",
            "BENCH_BODY": "grant_type=client_credentials",
            "BENCH_AUTHORIZATION": side.basic,
        }
    if workload == "introspection":
        return meta["introspection_endpoint"], {
            "BENCH_METHOD": "POST",
            "BENCH_AUTHORIZATION": side.basic,
            "BENCH_BODY": "token=" + side.client_credentials_token(),
        }
    if workload == STORED:
        return meta["introspection_endpoint"], {
            "BENCH_METHOD": "POST",
            "BENCH_AUTHORIZATION": side.basic,
            "BENCH_RANDOM_TOKEN": f"{stored['access_prefix']}:{stored['first']}:{stored['last']}",
        }
    if workload == STORED_USERINFO:
        return meta["userinfo_endpoint"], {
            "BENCH_RANDOM_TOKEN": f"{stored['access_prefix']}:{stored['first']}:{stored['last']}",
            "BENCH_RANDOM_TOKEN_IN": "bearer",
        }
    if workload == "userinfo":
        return meta["userinfo_endpoint"], {"BENCH_AUTHORIZATION": "Bearer " + side.user_token()}
    raise ValueError(workload)


def check_workload(side: Side, workload: str, stored: dict | None) -> None:
    """One request as wrk will send it, with its answer checked: the load must measure successes."""
    url, env = workload_request(side, workload, stored)
    headers = {}
    if env.get("BENCH_AUTHORIZATION"):
        headers["Authorization"] = env["BENCH_AUTHORIZATION"]
    body = env.get("BENCH_BODY")
    if env.get("BENCH_RANDOM_TOKEN"):
        prefix, first, last = env["BENCH_RANDOM_TOKEN"].rsplit(":", 2)
        token = f"{prefix}{random.randint(int(first), int(last))}"
        if env.get("BENCH_RANDOM_TOKEN_IN") == "bearer":
            headers["Authorization"] = "Bearer " + token
        else:
            body = f"token={token}"
    if env.get("BENCH_METHOD") == "POST":
        response = requests.post(
            url,
            data=body,
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
            timeout=30,
        )
    else:
        response = requests.get(url, headers=headers, timeout=30)
    ok = response.status_code == 200
    data = response.json() if ok else {}
    expected = {
        "discovery": lambda: data.get("issuer") == side.origin,
        "jwks": lambda: bool(data.get("keys")),
        "token": lambda: bool(data.get("access_token")),
        "introspection": lambda: data.get("active") is True,
        STORED: lambda: data.get("active") is True,
        "userinfo": lambda: bool(data.get("sub")) and "name" in data,
        STORED_USERINFO: lambda: bool(data.get("sub")) and "name" in data,
    }[workload]
    if not ok or not expected():
        raise RuntimeError(f"{side.name} {workload}: HTTP {response.status_code} {response.text[:300]}")


# ---------------------------------------------------------------------------------------------------
# Measurements


def pg_backends(engine, database: str) -> list[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
            {"d": database},
        )
        return [row[0] for row in rows]


class PgWatch:
    """CPU of the PostgreSQL backends serving one database, between start() and stop(). Backends that
    appear during the run count whole; one that exits during the run takes its time with it."""

    def __init__(self, engine, database: str | None):
        self.engine, self.database = engine, database
        self.cpu = None

    def start(self) -> PgWatch:
        if self.database:
            self._before = procstat.pids_cpu_seconds(pg_backends(self.engine, self.database))
        return self

    def stop(self) -> PgWatch:
        if self.database:
            after = procstat.pids_cpu_seconds(pg_backends(self.engine, self.database))
            self.cpu = sum(seconds - self._before.get(pid, 0.0) for pid, seconds in after.items())
        return self


def run_wrk(url: str, env: dict, *, connections: int, threads: int, duration: float) -> dict:
    command = [
        "wrk",
        "-t",
        str(min(threads, connections)),
        "-c",
        str(connections),
        "-d",
        f"{duration:g}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
    ]
    done = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=duration + 60
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT ") :])
    raise RuntimeError(
        f"wrk gave no result (exit {done.returncode}):\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    )


def measure_wrk(
    side: Side, workload: str, *, connections: int, round_no: int, args, pg_engine, stored
) -> dict:
    url, env = workload_request(side, workload, stored)
    watch, pg = procstat.Watch(side.running.proc.pid).start(), PgWatch(pg_engine, side.pg_database).start()
    result = run_wrk(url, env, connections=connections, threads=args.wrk_threads, duration=args.duration)
    watch.stop()
    pg.stop()
    requests_done = max(result["requests"], 1)
    seconds = result["duration_us"] / 1e6
    errors = result["errors"]
    row = {
        "workload": workload,
        "side": side.name,
        "connections": connections,
        "round": round_no,
        "requests": result["requests"],
        "seconds": round(seconds, 3),
        "rps": round(result["requests"] / seconds, 1),
        "p50_ms": result["latency_us"]["p50"] / 1000,
        "p90_ms": result["latency_us"]["p90"] / 1000,
        "p99_ms": result["latency_us"]["p99"] / 1000,
        "max_ms": result["latency_us"]["max"] / 1000,
        "errors": errors,
        "errors_total": sum(errors.values()),
        "cpu_s": round(watch.cpu, 3),
        "cpu_ms_per_req": round(watch.cpu * 1000 / requests_done, 3),
        "pg_cpu_ms_per_req": None if pg.cpu is None else round(pg.cpu * 1000 / requests_done, 3),
        "rss_worker_max_mib": round(watch.worker_rss_max() / MIB, 1),
        "processes": len(watch.max_rss),
        "loadavg_1min": os.getloadavg()[0],
    }
    log(
        f"{workload:>20} {side.name:<4} c={connections:<3} r{round_no}: {row['rps']:>8.1f} req/s  "
        f"cpu {row['cpu_ms_per_req']:.3f} ms/req  p99 {row['p99_ms']:.1f} ms  errors {row['errors_total']}"
    )
    return row


def measure_codeflow(
    side: Side,
    *,
    round_no: int,
    concurrency: int,
    duration: float,
    pg_engine,
    max_flows: int | None = None,
    kind: str = "codeflow",
) -> dict:
    logins = side.logins
    checks_before = password_checks(side)
    watch, pg = procstat.Watch(side.running.proc.pid).start(), PgWatch(pg_engine, side.pg_database).start()
    result = codeflow.load(
        side.provider,
        lambda: random.choice(logins),
        PASSWORD,
        concurrency=concurrency,
        duration=duration,
        max_flows=max_flows,
    )
    watch.stop()
    pg.stop()
    checks_after = password_checks(side)
    summary = result.summary()
    flows = max(result.flows, 1)
    row = {
        "workload": kind,
        "side": side.name,
        "connections": concurrency,
        "round": round_no,
        **summary,
        "cpu_s": round(watch.cpu, 3),
        "cpu_ms_per_flow": round(watch.cpu * 1000 / flows, 2),
        "pg_cpu_ms_per_flow": None if pg.cpu is None else round(pg.cpu * 1000 / flows, 2),
        "rss_worker_max_mib": round(watch.worker_rss_max() / MIB, 1),
        "loadavg_1min": os.getloadavg()[0],
    }
    if checks_before is not None and checks_after is not None and checks_after[1] > checks_before[1]:
        seconds, count = checks_after[0] - checks_before[0], checks_after[1] - checks_before[1]
        row["server_bcrypt_checks"] = int(count)
        row["server_bcrypt_cpu_ms_per_check"] = round(seconds * 1000 / count, 2)
        row["server_bcrypt_cpu_ms_per_flow"] = round(seconds * 1000 / flows, 2)
    log(
        f"{kind:>20} {side.name:<4} c={concurrency:<3} r{round_no}: {summary['flows_per_s']:>8.2f} flows/s  "
        f"cpu {row['cpu_ms_per_flow']:.1f} ms/flow  p50 {summary['latency_ms']['p50']} ms  errors {result.errors}"
        + (f" ({result.first_error})" if result.first_error else "")
    )
    return row


def password_checks(side: Side) -> tuple[float, float] | None:
    """idp's own count of its sign-ins' bcrypt checks and their CPU seconds (``idp_password_check_cpu_seconds``
    on /metrics, which loopback may read), all workers added up; None for node or when unreadable."""
    if side.name != "idp":
        return None
    try:
        text = requests.get(side.origin + "/metrics", timeout=10).text
    except requests.RequestException:
        return None
    found = dict(re.findall(r"^idp_password_check_cpu_seconds_(sum|count) (\S+)$", text, re.M))
    if set(found) != {"sum", "count"}:
        return None
    return float(found["sum"]), float(found["count"])


def measure_bcrypt(rounds: int, runs: int) -> dict:
    """bcrypt verification alone at idp's cost, as idp's sign-in calls it (pre-hash included)."""
    from idp.services import passwords

    stored = passwords.hash_password(PASSWORD, rounds)
    cpu, wall = [], []
    for _ in range(runs):
        c0, w0 = time.thread_time(), time.perf_counter()
        assert passwords.verify_password(PASSWORD, stored)
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    return {
        "rounds": rounds,
        "runs": runs,
        "cpu_ms": [round(c * 1000, 2) for c in cpu],
        "cpu_ms_median": round(statistics.median(cpu) * 1000, 2),
        "cpu_ms_min": round(min(cpu) * 1000, 2),
        "wall_ms_median": round(statistics.median(wall) * 1000, 2),
    }


# ---------------------------------------------------------------------------------------------------
# Context of the run


def _command_output(command: list[str], cwd: Path = ROOT) -> str:
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def idp_code_commit() -> str:
    """The last commit that changed idp/ itself: what was measured, whatever bench/ commits came after."""
    return _command_output(["git", "log", "-1", "--format=%h", "--", "idp"])


def machine_and_versions(args, pg_engine) -> dict:
    cpu_model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    dirty = _command_output(["git", "status", "--porcelain", "--untracked-files=no"])
    with pg_engine.connect() as conn:
        pg_version = conn.scalar(text("SHOW server_version"))
        shared_buffers = conn.scalar(text("SHOW shared_buffers"))
    node_pkg = NODE_DIR / "node_modules" / "oidc-provider" / "package.json"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "idp_commit": _command_output(["git", "rev-parse", "--short", "HEAD"])
        + (" (with local changes)" if dirty else ""),
        "idp_code_commit": idp_code_commit(),
        "node": _command_output(["node", "--version"]),
        "oidc_provider": json.loads(node_pkg.read_text())["version"] if node_pkg.exists() else None,
        "server": server_version(args.server),
        "wrk": _command_output(["wrk", "-v"]).split(" [")[0] or "wrk",
        "postgresql": pg_version,
        "shared_buffers": shared_buffers,
    }


# ---------------------------------------------------------------------------------------------------
# Report


def _range(values: list[float], digits: int) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    lo, hi = min(values), max(values)
    fmt = f"{{:.{digits}f}}"
    return fmt.format(lo) if round(lo, digits) == round(hi, digits) else f"{fmt.format(lo)}–{fmt.format(hi)}"


def _digits(value: float) -> int:
    return 3 if value < 1 else 2 if value < 10 else 1 if value < 100 else 0


def _times(ratios: list[float]) -> str:
    return f"{_range(ratios, 1)}×" if ratios else "–"


def _cell(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    return _range(values, _digits(max(values))) if values else "–"


def summarize(results: dict) -> dict:
    """Per workload and connection count: the range over rounds of each figure, ratios taken per round."""
    rows = results["wrk"]
    table = []
    keys = []
    for row in rows:
        key = (row["workload"], row["connections"])
        if key not in keys:
            keys.append(key)
    for workload, connections in keys:
        idp = [
            r
            for r in rows
            if r["workload"] == workload and r["connections"] == connections and r["side"] == "idp"
        ]
        node = [
            r
            for r in rows
            if r["workload"] == workload and r["connections"] == connections and r["side"] == "node"
        ]
        by_round = {r["round"]: r for r in node}
        pairs = [(a, by_round[a["round"]]) for a in idp if a["round"] in by_round]

        def ratio(field_name, pairs=pairs):
            return [a[field_name] / b[field_name] for a, b in pairs if b[field_name]]

        table.append(
            {
                "workload": workload,
                "connections": connections,
                "idp_cpu": [r["cpu_ms_per_req"] for r in idp],
                "node_cpu": [r["cpu_ms_per_req"] for r in node],
                "cpu_ratio": ratio("cpu_ms_per_req"),
                "idp_rps": [r["rps"] for r in idp],
                "node_rps": [r["rps"] for r in node],
                "rps_ratio": ratio("rps"),
                "idp_p50": [r["p50_ms"] for r in idp],
                "node_p50": [r["p50_ms"] for r in node],
                "idp_p99": [r["p99_ms"] for r in idp],
                "node_p99": [r["p99_ms"] for r in node],
                "p99_ratio": ratio("p99_ms"),
                "idp_errors": sum(r["errors_total"] for r in idp),
                "node_errors": sum(r["errors_total"] for r in node),
                "pg_cpu": [r["pg_cpu_ms_per_req"] for r in idp],
            }
        )
    return {"wrk": table}


def markdown(results: dict, args) -> str:
    ctx = results["context"]
    summary = summarize(results)
    lines = [
        f"# idp against node-oidc-provider: `make bench-load`{' SCALE=' + str(args.scale) if args.scale else ''}",
        "",
        "Written by `bench/load.py` (see bench/README.md); do not edit by hand. Raw numbers: "
        f"`{results['json_path']}`.",
        "",
        f"- Date: {ctx['date']}; machine: {ctx['nproc']} × {ctx['cpu_model']}, Linux {ctx['kernel']}",
        f"- idp code of {ctx.get('idp_code_commit') or idp_code_commit()} (the last commit to idp/; worktree at "
        f"{ctx['idp_commit']}) on Python {ctx['python']}, served by {ctx['server']} "
        f"({args.workers} workers{'' if args.server == 'gunicorn-sync' else f', {args.threads} threads each'}); "
        f"PostgreSQL {ctx['postgresql']} (shared_buffers {ctx['shared_buffers']}), Redis rate-limit storage",
        f"- node-oidc-provider {ctx['oidc_provider']} on Node {ctx['node']}, one process, in-memory store",
        f"- Load: {ctx['wrk']}, {args.wrk_threads} threads, {args.duration:g} s per run, connections "
        f"{', '.join(map(str, args.connections))}, {args.rounds} rounds, idp and node interleaved per workload; "
        f"code flow: {args.flow_concurrency} concurrent flows for {args.flow_duration:g} s per side and round",
        f"- Data: {results['fill']['accounts']['count']:,} accounts, {results['fill']['tokens']['count']:,} stored tokens, "
        f"{results['fill']['codes']:,} authorization codes "
        f"(database {results['fill']['database_bytes'] / MIB:,.0f} MiB, filled in "
        f"{sum(results['fill']['seconds'].values()):.0f} s)",
        f"- Whole run: {results['elapsed_s'] / 60:.1f} min; the machine's 1-minute load average at the end of "
        f"each measured run: {_range([r.get('loadavg_1min') for r in results['wrk'] + results['codeflow']], 1)} "
        f"(other work shares the {ctx['nproc']} cores: absolute figures move with it, ratios much less)",
        "",
        "Each cell is the range over the rounds; ratios are idp ÷ node within the same round. "
        "CPU is utime+stime of the server's whole process tree (master and workers) from /proc, per "
        "request; idp's PostgreSQL backends are counted apart (PG CPU). Errors: socket errors plus "
        "non-2xx answers, all rounds.",
        "",
        "| workload | conns | idp CPU ms/req | node CPU ms/req | CPU idp/node | idp req/s | node req/s | req/s idp/node "
        "| idp p50 / p99 ms | node p50 / p99 ms | p99 idp/node | errors idp / node | idp PG CPU ms/req |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary["wrk"]:
        lines.append(
            f"| {r['workload']} | {r['connections']} | {_cell(r['idp_cpu'])} | {_cell(r['node_cpu'])} "
            f"| {_times(r['cpu_ratio'])} | {_range(r['idp_rps'], 0)} | {_range(r['node_rps'], 0)} "
            f"| {_range(r['rps_ratio'], 2)} | {_cell(r['idp_p50'])} / {_cell(r['idp_p99'])} "
            f"| {_cell(r['node_p50'])} / {_cell(r['node_p99'])} | {_times(r['p99_ratio'])} "
            f"| {r['idp_errors']} / {r['node_errors'] if r['node_cpu'] else '–'} | {_cell(r['pg_cpu'])} |"
        )
    flows = results["codeflow"]
    bcrypt = results["bcrypt"]
    lines += [
        "",
        "## The full code flow",
        "",
        f"authorize → sign-in form → code → token, {args.flow_concurrency} concurrent flows, each a fresh session "
        "(no SSO). idp verifies a bcrypt hash of cost "
        f"{bcrypt['rounds']}; node-oidc-provider's sign-in (bench/node/server.mjs) compares the password without a hash. "
        f"bcrypt verification alone, in this process: {bcrypt['cpu_ms_median']} ms CPU (median of {bcrypt['runs']} "
        "at the end); "
        + (
            f'"beyond bcrypt" subtracts the median of {2 * BCRYPT_RUNS_AROUND} verifications timed right before '
            "and right after each round's flows, so "
            f"that both meet the same load ({_cell([r['bcrypt_cpu_ms'] for r in flows if 'bcrypt_cpu_ms' in r])} ms)."
            if any("bcrypt_cpu_ms" in r for r in flows)
            else '"beyond bcrypt" subtracts that median.'
        ),
        "",
        "| side | flows/s | p50 / p99 ms | server CPU ms/flow | CPU beyond bcrypt ms/flow | PG CPU ms/flow | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for side in ("idp", "node"):
        mine = [r for r in flows if r["side"] == side and r["workload"] == "codeflow"]
        if not mine:
            continue
        beyond = (
            [r["cpu_ms_per_flow"] - r.get("bcrypt_cpu_ms", bcrypt["cpu_ms_median"]) for r in mine]
            if side == "idp"
            else []
        )
        lines.append(
            f"| {side} | {_range([r['flows_per_s'] for r in mine], 2)} "
            f"| {_cell([r['latency_ms']['p50'] for r in mine])} / {_cell([r['latency_ms']['p99'] for r in mine])} "
            f"| {_cell([r['cpu_ms_per_flow'] for r in mine])} | {_cell(beyond) if beyond else '– (no hash)'} "
            f"| {_cell([r['pg_cpu_ms_per_flow'] for r in mine])} | {sum(r['errors'] for r in mine)} |"
        )
    served = [
        r
        for r in flows
        if r["side"] == "idp" and r["workload"] == "codeflow" and "server_bcrypt_cpu_ms_per_check" in r
    ]
    if served:
        lines += [
            "",
            "The same rounds against the bcrypt checks idp counted itself (`idp_password_check_cpu_seconds`, "
            "the CPU of each check in its thread, read from /metrics around each round): "
            f"{_cell([r['server_bcrypt_cpu_ms_per_check'] for r in served])} ms per check, "
            f"{_cell([r['server_bcrypt_checks'] / max(r['flows'], 1) for r in served])} checks per flow; "
            "server CPU beyond them "
            f"{_cell([r['cpu_ms_per_flow'] - r['server_bcrypt_cpu_ms_per_flow'] for r in served])} ms/flow.",
        ]
    serial = [r for r in flows if r["workload"] == "signin"]
    if serial:
        lines += ["", "One sign-in at a time (the whole code flow, no concurrency):", ""]
        for r in serial:
            own = (
                f" ({round(r['cpu_ms_per_flow'] - r['server_bcrypt_cpu_ms_per_flow'], 1)} beyond its own "
                f"bcrypt checks of {r['server_bcrypt_cpu_ms_per_check']} ms)"
                if "server_bcrypt_cpu_ms_per_flow" in r
                else ""
            )
            lines.append(
                f"- {r['side']}: {r['flows']} flows, median {r['latency_ms']['p50']} ms, "
                f"server CPU {r['cpu_ms_per_flow']} ms/flow{own}"
            )
    lines += [
        "",
        "## Memory",
        "",
        "| side | processes | largest worker RSS under load, MiB |",
        "|---|---|---|",
    ]
    for side in ("idp", "node"):
        mine = [r for r in results["wrk"] + flows if r["side"] == side]
        if mine:
            processes = (
                max(r.get("processes", 1) for r in results["wrk"] if r["side"] == side)
                if results["wrk"]
                else 1
            )
            lines.append(f"| {side} | {processes} | {max(r['rss_worker_max_mib'] for r in mine):.1f} |")
    lines += targets_markdown(summary, results)
    lines += explain_markdown(results.get("explain"))
    return "\n".join(lines) + "\n"


# Issue 12's "done when": server CPU ms per request of idp under its production server.
CPU_TARGETS = {"token": 0.8, "introspection": 0.6, "userinfo": 0.6, "discovery": 0.25, "jwks": 0.25}
SIGNIN_BEYOND_BCRYPT_TARGET = 15.0
RSS_TARGET_MIB = 150.0


def targets_markdown(summary: dict, results: dict) -> list[str]:
    """Each figure of issue 12's "done when" from this run, worst round first, and whether it is met."""
    lines = [
        "",
        "## Against the targets of issue 12",
        "",
        "On a machine shared with other work the figures that carry over are the server CPU per request "
        "and the idp ÷ node ratios of the same run; req/s and latencies move with the load. Worst round "
        "counts.",
        "",
        "| target | measured (all rounds) | met |",
        "|---|---|---|",
    ]

    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    for workload, target in CPU_TARGETS.items():
        cpu = [v for r in summary["wrk"] if r["workload"] == workload for v in r["idp_cpu"]]
        if cpu:
            lines.append(
                f"| {workload}: idp CPU ≤ {target} ms/req | {_cell(cpu)} | {met(max(cpu) <= target)} |"
            )
    at64 = [r for r in summary["wrk"] if r["connections"] == 64 and r["node_cpu"]]
    if at64:
        errors = sum(r["idp_errors"] for r in at64)
        lines.append(f"| 0 errors at 64 connections | {errors} | {met(errors == 0)} |")
        worst = {r["workload"]: max(r["p99_ratio"]) for r in at64 if r["p99_ratio"]}
        text = ", ".join(f"{w} {v:.1f}×" for w, v in worst.items())
        lines.append(
            f"| p99 at 64 connections ≤ 3× node's | {text} | {met(all(v <= 3 for v in worst.values()))} |"
        )
    flows = [r for r in results["codeflow"] if r["side"] == "idp" and r["workload"] == "codeflow"]
    if flows:
        median = results["bcrypt"]["cpu_ms_median"]
        beyond = [r["cpu_ms_per_flow"] - r.get("bcrypt_cpu_ms", median) for r in flows]
        lines.append(
            f"| sign-in ≤ {SIGNIN_BEYOND_BCRYPT_TARGET:g} ms CPU beyond bcrypt | {_cell(beyond)} ms "
            f"| {met(max(beyond) <= SIGNIN_BEYOND_BCRYPT_TARGET)} |"
        )
    rss = [r["rss_worker_max_mib"] for r in results["wrk"] + results["codeflow"] if r["side"] == "idp"]
    if rss:
        lines.append(
            f"| RSS ≤ {RSS_TARGET_MIB:g} MiB per worker | {max(rss):.1f} MiB | {met(max(rss) <= RSS_TARGET_MIB)} |"
        )
    return lines


def explain_markdown(explained: dict | None) -> list[str]:
    if not explained:
        return []
    lines = [
        "",
        "## SQL per request and plans (`bench/explain.py`)",
        "",
        "Statements recorded from one in-process request of each workload on the filled database (idp's own "
        "code through Flask's test client), each re-run as `EXPLAIN (ANALYZE, BUFFERS)` with its parameters "
        "(writes rolled back, INSERTs not re-run). Flagged: a sequential scan of a table of "
        f"≥ {explain.BIG_TABLE:,} rows, or ≥ {explain.BIG_FILTER:,} rows thrown away by a filter.",
        "",
        "| workload | SQL statements | statements: verb table — access path (execution ms; shared buffers hit, read) |",
        "|---|---|---|",
    ]
    flagged: dict[str, dict] = {}
    for name, item in explained.items():
        described = []
        for statement in item["statements"]:
            paths = "; ".join(explain.access_paths(statement["plan"])) or "–"
            ms = explain.execution_ms(statement["plan"])
            pages = explain.buffers(statement["plan"])
            mark = " **⚠**" if statement["findings"] else ""
            detail = ([f"{ms:g} ms"] if ms is not None else []) + (
                [f"hit {pages.get('hit', 0)} read {pages.get('read', 0)}"] if pages else []
            )
            described.append(
                f"{statement['verb']} {','.join(explain.tables(statement['statement'])[:2])} — {paths}"
                + (f" ({'; '.join(detail)})" if detail else "")
                + mark
            )
            if statement["findings"]:
                flagged.setdefault(statement["statement"], {**statement, "workloads": []})[
                    "workloads"
                ].append(name)
        lines.append(f"| {name} | {item['statement_count']} | {'<br>'.join(described) or '–'} |")
    if flagged:
        lines += ["", "### Flagged statements (no index covers the predicate)"]
    for statement in flagged.values():
        workloads = ", ".join(
            f"{w} ×{statement['workloads'].count(w)}" for w in dict.fromkeys(statement["workloads"])
        )
        lines += [
            "",
            f"In {workloads}: {'; '.join(statement['findings'])}.",
            "",
            "```sql",
            statement["statement"],
            "```",
            "",
            "```",
            statement["plan"],
            "```",
        ]
    return lines


# ---------------------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=SERVERS, default="production")
    parser.add_argument("--workers", type=int, default=2, help="idp worker processes (default 2)")
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per worker for gunicorn-gthread and granian"
    )
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument(
        "--workloads",
        type=lambda s: s.split(","),
        default=None,
        help=f"comma-separated subset of {', '.join(WRK_WORKLOADS + (STORED, 'codeflow'))}",
    )
    parser.add_argument("--sides", type=lambda s: s.split(","), default=["idp", "node"])
    parser.add_argument("--flow-concurrency", type=int, default=4)
    parser.add_argument(
        "--flow-duration", type=float, default=None, help="seconds per code-flow run (default --duration)"
    )
    parser.add_argument(
        "--signins", type=int, default=5, help="sign-ins timed one at a time per side (default 5)"
    )
    parser.add_argument(
        "--bcrypt-rounds",
        type=int,
        default=BCRYPT_ROUNDS,
        help=f"idp's [passwords] bcrypt_rounds (default {BCRYPT_ROUNDS}, the production default)",
    )
    parser.add_argument(
        "--bcrypt-runs", type=int, default=7, help="bcrypt verifications timed alone (default 7)"
    )
    parser.add_argument(
        "--warmup", type=float, default=2, help="seconds of unrecorded load per workload first"
    )
    parser.add_argument("--scale", type=int, default=0, help="accounts and stored tokens (0: 100, no codes)")
    parser.add_argument(
        "--codes",
        type=int,
        default=None,
        help=f"authorization codes (default {fill.CODES_PER_DAY:,} with --scale)",
    )
    parser.add_argument("--no-explain", action="store_true")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/4")
    parser.add_argument(
        "--database-prefix", default="idp_bench", help="name of the database made: <prefix>_<pid>_<hex>"
    )
    parser.add_argument(
        "--json-out", type=Path, default=None, help="default bench/results/<date>[-scale-N]-<server>.json"
    )
    parser.add_argument(
        "--markdown-out",
        type=Path,
        default=None,
        help="default bench/RESULTS.md; RESULTS[-scale-N][-server].md for other runs",
    )
    parser.add_argument("--no-markdown", action="store_true", help="print the table, write no markdown file")
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        metavar="JSON",
        help="run nothing: write the markdown of an earlier run again from its JSON",
    )
    args = parser.parse_args(argv)
    if args.flow_duration is None:
        args.flow_duration = args.duration
    for url in (args.postgres, args.redis):
        if "127.0.0.1" not in url and "localhost" not in url:
            parser.error(f"the benchmark talks to 127.0.0.1 only: {url}")
    default = list(WRK_WORKLOADS) + ([STORED] if args.scale else []) + ["codeflow"]
    args.workloads = args.workloads or default
    unknown = set(args.workloads) - set(default) - {STORED}
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    return args


def preflight(args) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (make bench-load does it)")
    if "node" in args.sides and not (NODE_DIR / "node_modules" / "oidc-provider").exists():
        raise SystemExit("node modules are missing: cd bench/node && npm ci (make bench-load does it)")


def render(json_path: Path, markdown_out: Path | None) -> None:
    """Write the markdown of an earlier run again from its JSON (after a change to the report's format)."""
    results = json.loads(json_path.read_text(encoding="utf-8"))
    args = argparse.Namespace(**results["settings"])
    args.json_out, args.markdown_out, args.no_markdown = json_path, markdown_out, False
    report(results, args, write_json=False)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.render:
        return render(args.render, args.markdown_out)
    preflight(args)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    database_url = idp_run = node_run = pg_engine = app = None
    try:
        database_url = create_database(args.postgres, args.database_prefix)
        pg_engine = admin_engine(args.postgres)
        idp_port, node_port = free_port(), free_port()
        issuer = f"http://127.0.0.1:{idp_port}"
        config_path = tmp / "idp.toml"
        write_config(
            config_path,
            issuer=issuer,
            database_url=database_url,
            redis_url=args.redis,
            bcrypt_rounds=args.bcrypt_rounds,
            threads=args.threads,
        )
        env = {**os.environ, "IDP_CONFIG": str(config_path), "IDP_INSTANCE_PATH": str(tmp / "instance")}
        os.environ.update({"IDP_CONFIG": env["IDP_CONFIG"], "IDP_INSTANCE_PATH": env["IDP_INSTANCE_PATH"]})
        from idp import create_app

        app = create_app()
        client_id, client_secret = prepare_idp(app)
        accounts = args.scale or SMALL_FILL
        codes = args.codes if args.codes is not None else (fill.CODES_PER_DAY if args.scale else 0)
        log(f"filling: {accounts:,} accounts and tokens, {codes:,} codes")
        filled = fill.fill(
            database_url,
            client_id=client_id,
            redirect_uri=REDIRECT_URI,
            accounts=accounts,
            tokens=accounts,
            codes=codes,
            password=PASSWORD,
            rounds=args.bcrypt_rounds,
        )
        log(
            f"filled in {sum(filled['seconds'].values()):.1f} s ({filled['seconds']}), "
            f"{filled['database_bytes'] / MIB:,.0f} MiB"
        )
        context = machine_and_versions(args, pg_engine)

        sides: dict[str, Side] = {}
        idp_logins = [fill.login_for(n) for n in random.sample(range(1, accounts + 1), min(accounts, 1000))]
        # Both servers boot at once; each is waited for before its side is used.
        if "idp" in args.sides:
            idp_run = start(
                "idp",
                idp_server_command(args.server, args.workers, args.threads, idp_port),
                env,
                tmp / "idp.log",
            )
        if "node" in args.sides:
            node_secret = secrets.token_urlsafe(32)
            node_env = {
                **os.environ,
                "BENCH_CLIENT_ID": "bench-" + secrets.token_hex(6),
                "BENCH_CLIENT_SECRET": node_secret,
                "BENCH_REDIRECT_URI": REDIRECT_URI,
                "BENCH_LOGIN": fill.login_for(1),
                "BENCH_PASSWORD": PASSWORD,
            }
            node_run = start(
                "node",
                ["node", str(NODE_DIR / "server.mjs"), "--port", str(node_port)],
                node_env,
                tmp / "node.log",
                cwd=NODE_DIR,
            )
        if idp_run is not None:
            wait_until_up(idp_run, issuer + "/.well-known/openid-configuration")
            sides["idp"] = Side(
                "idp",
                idp_run,
                issuer,
                client_id,
                client_secret,
                idp_logins,
                pg_database=make_url(database_url).database,
            )
        if node_run is not None:
            origin = f"http://127.0.0.1:{node_port}"
            wait_until_up(node_run, origin + "/.well-known/openid-configuration")
            sides["node"] = Side(
                "node", node_run, origin, node_env["BENCH_CLIENT_ID"], node_secret, [fill.login_for(1)]
            )
        for side in sides.values():
            side.discover()

        stored = filled["tokens"]
        wrk_workloads = [w for w in args.workloads if w != "codeflow"]
        for workload in wrk_workloads:
            for side in sides.values():
                if workload == STORED and side.name != "idp":
                    continue
                check_workload(side, workload, stored)
        if "codeflow" in args.workloads:
            for side in sides.values():
                codeflow.run(side.provider, random.choice(side.logins), PASSWORD)
        log("every workload answers correctly on both sides")
        if args.warmup:
            for workload in wrk_workloads:
                for side in sides.values():
                    if workload == STORED and side.name != "idp":
                        continue
                    url, wenv = workload_request(side, workload, stored)
                    run_wrk(
                        url,
                        wenv,
                        connections=min(args.connections),
                        threads=args.wrk_threads,
                        duration=args.warmup,
                    )
            log("warmed up")

        results = {
            "context": context,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "fill": filled,
            "database": make_url(database_url).database,
            "servers": {
                side.name: {"pid": side.running.proc.pid, "command": side.running.proc.args}
                for side in sides.values()
            },
            "wrk": [],
            "codeflow": [],
        }
        for round_no in range(1, args.rounds + 1):
            for connections in args.connections:
                for workload in wrk_workloads:
                    for side in sides.values():
                        if workload == STORED and side.name != "idp":
                            continue
                        results["wrk"].append(
                            measure_wrk(
                                side,
                                workload,
                                connections=connections,
                                round_no=round_no,
                                args=args,
                                pg_engine=pg_engine,
                                stored=stored,
                            )
                        )
            if "codeflow" in args.workloads:
                for side in sides.values():
                    # bcrypt alone right before and right after idp's flows, so that both meet the same
                    # machine load; one verification varies by a few % (±5 ms at cost 12) from one
                    # second to the next, hence several.
                    if side.name == "idp":
                        alone = measure_bcrypt(args.bcrypt_rounds, runs=BCRYPT_RUNS_AROUND)["cpu_ms"]
                    row = measure_codeflow(
                        side,
                        round_no=round_no,
                        concurrency=args.flow_concurrency,
                        duration=args.flow_duration,
                        pg_engine=pg_engine,
                    )
                    if side.name == "idp":
                        alone += measure_bcrypt(args.bcrypt_rounds, runs=BCRYPT_RUNS_AROUND)["cpu_ms"]
                        row["bcrypt_cpu_ms"] = round(statistics.median(alone), 2)
                    results["codeflow"].append(row)
        if "codeflow" in args.workloads and args.signins:
            for side in sides.values():
                results["codeflow"].append(
                    measure_codeflow(
                        side,
                        round_no=1,
                        concurrency=1,
                        duration=3600,
                        max_flows=args.signins,
                        pg_engine=pg_engine,
                        kind="signin",
                    )
                )
        results["bcrypt"] = measure_bcrypt(args.bcrypt_rounds, runs=args.bcrypt_runs)
        log(f"bcrypt cost {args.bcrypt_rounds} alone: {results['bcrypt']['cpu_ms_median']} ms CPU")
        if not args.no_explain and "idp" in sides:
            try:
                results["explain"] = explain_idp(app, sides["idp"], stored if args.scale else None)
            except Exception as error:  # noqa: BLE001 - the measurements above are kept whatever happens here
                log(f"SQL and plans not recorded: {type(error).__name__}: {error}")
        results["elapsed_s"] = round(time.perf_counter() - started, 1)
        return report(results, args)
    finally:
        t0 = time.perf_counter()
        stop(idp_run)
        stop(node_run)
        log(f"servers stopped in {time.perf_counter() - t0:.1f} s")
        if pg_engine is not None:
            pg_engine.dispose()
        if database_url:
            with contextlib.suppress(Exception):
                from idp.extensions import db

                with app.app_context():
                    db.engine.dispose()
            drop_database(database_url)
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"cleaned up in {time.perf_counter() - t0:.1f} s")


def explain_idp(app, side: Side, stored: dict | None, *, userinfo_stored: bool = False) -> dict:
    """The statements of one request of each idp workload, with their plans (bench/explain.py).
    With ``stored``, introspection asks about a random stored token; with ``userinfo_stored`` too,
    UserInfo is asked with another one (bench.scale), not with a token of a fresh sign-in."""
    origin = side.origin
    meta = side.meta
    cc_token = side.client_credentials_token()
    auth = (side.client_id, side.client_secret)

    def random_stored() -> str:
        return f"{stored['access_prefix']}{random.randint(stored['first'], stored['last'])}"

    token_for_introspection = random_stored() if stored else cc_token
    user_token = random_stored() if stored and userinfo_stored else side.user_token()

    def path(url: str) -> str:
        return url[len(origin) :]

    def request(method, url, **kwargs):
        def action(session: explain.TestClientSession):
            response = getattr(session.client, method)(path(url), base_url=origin, **kwargs)
            response.close()
            if response.status_code != 200:
                raise RuntimeError(f"{url}: HTTP {response.status_code}")

        return action

    def sign_in(session: explain.TestClientSession):
        codeflow.run(side.provider, random.choice(side.logins), PASSWORD, session=session)

    def landing(session: explain.TestClientSession):
        response = session.client.get("/", base_url=origin)
        response.close()
        if response.status_code != 200:
            raise RuntimeError(f"/: HTTP {response.status_code}")

    workloads = {
        "discovery": request("get", origin + "/.well-known/openid-configuration"),
        "jwks": request("get", meta["jwks_uri"]),
        "token": request(
            "post", meta["token_endpoint"], data={"grant_type": "client_credentials"}, auth=auth
        ),
        "introspection": request(
            "post", meta["introspection_endpoint"], data={"token": token_for_introspection}, auth=auth
        ),
        "userinfo": request(
            "get", meta["userinfo_endpoint"], headers={"Authorization": "Bearer " + user_token}
        ),
        "codeflow": explain.code_flow(side.provider, random.choice(side.logins), PASSWORD),
        "landing page after sign-in (the session's sites)": (sign_in, landing),
    }
    log("recording SQL and plans")
    return explain.capture_and_explain(app, origin, workloads)


def report(results: dict, args, write_json: bool = True) -> dict:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    suffix = (f"-scale-{args.scale}" if args.scale else "") + f"-{args.server}"
    json_path = Path(args.json_out or BENCH / "results" / f"{stamp}{suffix}.json")
    if write_json:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(ValueError):
            results["json_path"] = str(json_path.resolve().relative_to(ROOT))
        results.setdefault("json_path", str(json_path))
        json_path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    text_out = markdown(results, args)
    print(text_out)
    if not args.no_markdown:
        # The baseline (default server, no scale) is RESULTS.md; any other run gets a file of its own.
        name = (
            "RESULTS"
            + (f"-scale-{args.scale}" if args.scale else "")
            + (f"-{args.server}" if args.server != "production" else "")
        )
        md_path = args.markdown_out or BENCH / f"{name}.md"
        md_path.write_text(text_out, encoding="utf-8")
        log(f"wrote {md_path} and {json_path}")
    return results


if __name__ == "__main__":
    main()
