"""The load benchmark of bench/ runs end to end: idp under `idp serve --production` (granian) on
PostgreSQL and node-oidc-provider, one second of wrk per workload and side, a code flow on each, and every
answer a success.

It checks that `make bench-load` works, not how fast anything is: no figure is compared with a
threshold (speed is read from bench/RESULTS.md). It needs wrk and bench/node/node_modules, which
`make test` installs (the bench-tools target), and PostgreSQL on 127.0.0.1, where the benchmark
creates and drops a database of its own whichever database this run of the suite uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy import make_url
from sqlalchemy import text

from bench.load import WRK_WORKLOADS

from .helpers import redis_url

# Its own PostgreSQL database whatever this pass uses: the SQLite pass runs it.
pytestmark = pytest.mark.once

ROOT = Path(__file__).resolve().parent.parent


def _postgres_server() -> str:
    url = os.environ.get("IDP_TEST_DATABASE_URL", "")
    if url.startswith("postgresql"):
        return make_url(url).set(database="postgres").render_as_string(hide_password=False)
    return "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def test_bench_load_runs_both_sides_without_errors(tmp_path):
    out = tmp_path / "results.json"
    command = [
        sys.executable,
        "-m",
        "bench.load",
        "--duration",
        "1",
        "--rounds",
        "1",
        "--connections",
        "16",
        "--warmup",
        "0",
        "--flow-duration",
        "1",
        "--flow-concurrency",
        "2",
        "--signins",
        "0",
        "--bcrypt-runs",
        "1",
        "--bcrypt-rounds",
        "4",
        "--no-explain",
        "--no-markdown",
        "--json-out",
        str(out),
        "--postgres",
        _postgres_server(),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(out.read_text(encoding="utf-8"))

    rows = results["wrk"]
    assert sorted((r["workload"], r["side"]) for r in rows) == sorted(
        (w, side) for w in WRK_WORKLOADS for side in ("idp", "node")
    )
    for row in rows:
        assert row["requests"] > 0, row
        assert row["errors_total"] == 0, row
        assert row["cpu_s"] > 0 and row["rss_worker_max_mib"] > 0, row
    idp_processes = {r["processes"] for r in rows if r["side"] == "idp"}
    assert idp_processes == {3}, "granian's main process and its 2 workers are measured"

    flows = {r["side"]: r for r in results["codeflow"]}
    assert set(flows) == {"idp", "node"}
    for row in flows.values():
        assert row["flows"] >= 1 and row["errors"] == 0, row
    assert results["bcrypt"]["rounds"] == 4
    # The table is printed, with a row per workload.
    for workload in WRK_WORKLOADS:
        assert f"| {workload} | 16 |" in done.stdout
    _assert_nothing_left(results["servers"], [results["database"]])


def test_bench_scale_compares_two_databases_interleaved(tmp_path):
    """`make bench-scale`'s path at a tiny scale: two filled databases, one production server each, every
    workload against both in each round, request by request, the buffer probe and the plans of the
    larger database, and both databases dropped at the end. No figure is compared with the bar."""
    from bench.scale import WORKLOADS

    out, markdown = tmp_path / "scale.json", tmp_path / "RESULTS-scale.md"
    command = [
        sys.executable,
        "-m",
        "bench.scale",
        "--scales",
        "20,200",
        "--codes",
        "100",
        "--rounds",
        "2",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--logins",
        "50",
        "--probe",
        "20",
        "--json-out",
        str(out),
        "--markdown-out",
        str(markdown),
        "--postgres",
        _postgres_server(),
        "--redis",
        os.environ.get("IDP_TEST_REDIS_URL", redis_url(4)),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(out.read_text(encoding="utf-8"))

    rows = results["rows"]
    assert sorted((r["workload"], r["scale"], r["round"]) for r in rows) == sorted(
        (w, s, n) for w in WORKLOADS for s in (20, 200) for n in (1, 2)
    )
    for row in rows:
        assert row["requests"] > 0 and row["errors_total"] == 0, row
        assert row["p50_ms"] > 0, row
    # Alternated request by request: in each round both databases got as many requests of each workload.
    for workload in WORKLOADS:
        for n in (1, 2):
            counts = {r["scale"]: r["requests"] for r in rows if (r["workload"], r["round"]) == (workload, n)}
            assert counts[20] == counts[200], (workload, n, counts)
    assert sorted((p["workload"], p["scale"]) for p in results["pooled"]) == sorted(
        (w, s) for w in WORKLOADS for s in (20, 200)
    )
    assert results["probe"]["200"]["lookups"] == 20
    assert {s: results["fill"][s]["tokens"]["count"] for s in ("20", "200")} == {"20": 20, "200": 200}
    assert results["blocks"]["200"]["hit"] > 0
    assert results["context"]["pg_settings"]["shared_buffers"]
    # The plans are of the larger database: introspection and UserInfo of a stored token use its index.
    assert "tokens_access_token_hash_key" in json.dumps(results["explain"]["userinfo"])
    text_out = markdown.read_text(encoding="utf-8")
    for workload in WORKLOADS:
        assert f"| {workload} | " in text_out
    assert "200/20" in text_out and "Load average" in text_out
    _assert_nothing_left(results["servers"], results["databases"])


def _assert_nothing_left(servers: dict, databases: list[str]) -> None:
    """The servers' process groups are gone and the benchmark's databases are dropped."""
    for server in servers.values():
        assert not Path(f"/proc/{server['pid']}").exists(), server
    engine = create_engine(_postgres_server())
    try:
        with engine.connect() as conn:
            left = conn.scalar(
                text("SELECT count(*) FROM pg_database WHERE datname = ANY(:d)"), {"d": databases}
            )
    finally:
        engine.dispose()
    assert left == 0
