"""Anonymous load against a production-like server: ``python -m tests.bench_abuse`` (not in the suite).

Issue 10: every /reset/ POST slept 1.5 s inside a worker, so 8 connections against 2 gunicorn workers
raised discovery latency from 7 ms to 5.8 s. This starts ``idp serve --production`` with 2 workers on a
SQLite database of its own, or on the empty database that ``IDP_BENCH_DATABASE_URL`` names
(PostgreSQL, as in production); rate limits in Redis (``IDP_BENCH_REDIS_URL``, default
redis://127.0.0.1:6379/3); the captcha off, as a bot that solves it would be. It measures the
discovery latency idle, then again while 20 clients POST the reset form in parallel (a mix of an
unknown login, a wrong phone and a match), and prints the figures: the medians, the 95th percentiles,
and the ratio of the loaded median to the idle one (the bar is 3x). The server's output goes to
``server.log`` in the run's temporary folder, whose path it prints; the server's own access lines of the
loaded phase are summed up too (how long discovery and the attackers' requests took inside the server,
and how many of them were refused). Asserts nothing; takes about half a minute.

The 20 clients are 20 processes of their own, and the discovery probe runs alone in this one: real
attackers are other machines. As threads of the probe's process (until December 2026) they parsed their
pages under the probe's GIL, and the probe measured its wait for its own process as much as the server.
Sharing the machine's cores with the server, which a real attacker does not, their closed loops took
the server's CPU as well; so they run on a core of their own (``IDP_BENCH_ATTACKER_CPUS``, by default
the highest-numbered one) and the server and the probe on the others.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from .processes import free_port
from .processes import wait_until_serving

PARALLEL = 20
# [limits] form_rate_limit for the run: the default (one attacker address meets it at once), or e.g.
# IDP_BENCH_FORM_LIMIT=100000/minute to measure the form's own work as if from many addresses.
FORM_LIMIT = os.environ.get("IDP_BENCH_FORM_LIMIT", "10/minute;60/hour")
# [limits] pages_in_flight for the run (idp.admission): the default unless given, e.g. 0 to measure
# without the cap.
PAGES_IN_FLIGHT = os.environ.get("IDP_BENCH_PAGES_IN_FLIGHT")
# [limits] pages_per_second for the run (idp.admission): the default unless given, e.g. 0 to measure
# without the rate.
PAGES_PER_SECOND = os.environ.get("IDP_BENCH_PAGES_PER_SECOND")
# The server's GIL switch interval in seconds (sys.setswitchinterval), e.g. 0.0005, to measure what the
# 5 ms default costs discovery while handler threads run Python; unset, the default.
SWITCH_INTERVAL = os.environ.get("IDP_BENCH_SWITCH_INTERVAL")
# The server's niceness, e.g. -10 (root only): the server ahead of the machine's other work for the CPU,
# as on a host of its own, with the clients still beside it. Unset, the benchmark's own.
SERVER_NICE = os.environ.get("IDP_BENCH_SERVER_NICE")
# The cores the 20 attackers run on, e.g. "1"; the server and the probe get the others. Real attackers
# are other machines and take none of the server's CPU: on one machine their closed loops, on the
# server's cores, measured mostly the competition for the CPU (README, "Quick start"). Unset, the
# highest-numbered core (none on a one-core machine); "all" shares every core among everything.
ATTACKER_CPUS = os.environ.get("IDP_BENCH_ATTACKER_CPUS")
PROBES = 60
IDP = str(Path(sys.executable).with_name("idp"))
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def _run(args: list[str], env: dict) -> str:
    done = subprocess.run([IDP, *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"idp {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _discovery_latencies(url: str, count: int) -> list[float]:
    times = []
    with requests.Session() as http:
        for _ in range(count):
            started = time.perf_counter()
            http.get(url + "/.well-known/openid-configuration", timeout=60).raise_for_status()
            times.append(time.perf_counter() - started)
            time.sleep(0.02)
    return times


def _cpu_seconds(pids: list[int]) -> float:
    """The CPU time (user and system) the processes ``pids`` have used so far; 0 for one that is gone."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (proc(5), fields 14 and 15)
    return total


def _server_pids(server: subprocess.Popen) -> list[int]:
    """The server's process and its workers (its children)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == server.pid:  # ppid
            children.append(int(stat.parent.name))
    return [server.pid, *children]


def _sleep_overshoot(count: int) -> list[float]:
    """How much later than asked a 1 ms sleep of this process ends, ``count`` times: what the machine's
    scheduler adds to the probe's own measurements."""
    late = []
    for _ in range(count):
        started = time.perf_counter()
        time.sleep(0.001)
        late.append(time.perf_counter() - started - 0.001)
        time.sleep(0.01)
    return late


def csrf_token(page: str) -> str:
    """The CSRF token of a form ``page``."""
    found = _CSRF.search(page)
    assert found, "no CSRF token in the page"
    return found.group(1)


def _reset_client(url: str, form: dict, stop, done, cpus: set[int] | None = None) -> None:
    """One attacker, in a process of its own: GET the form, POST it, again until ``stop`` is set; a
    refused GET (429, no form) is asked again at once, as a bot would. ``done`` counts the answers."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    with requests.Session() as http:
        while not stop.is_set():
            page = http.get(url + "/reset/", timeout=60)
            if page.status_code == 200:
                data = {"csrf_token": csrf_token(page.text), **form}
                http.post(url + "/reset/", data=data, allow_redirects=False, timeout=60)
            with done.get_lock():
                done.value += 1


# An access line of ``idp.serving.AccessLog`` in text: the method, path, status and milliseconds.
_ACCESS = re.compile(r'"(GET|POST) (\S+) HTTP/[\d.]+" (\d{3}) \S+ (\d+)ms ')


def access_summary(lines: list[str]) -> list[str]:
    """What the server's access ``lines`` say about the requests they record: per path, method and status,
    how many and the median and 95th percentile of the time the server spent on each."""
    found: dict[tuple[str, str, str], list[int]] = {}
    for line in lines:
        match = _ACCESS.search(line)
        if match:
            method, path, status, ms = match.groups()
            found.setdefault((method, path, status), []).append(int(ms))
    return [
        f"  {method:4} {path:36} {status}  {len(times):6}x  median {statistics.median(times):4.0f} ms"
        f"  p95 {_percentile(times, 0.95):4.0f} ms"
        for (method, path, status), times in sorted(found.items(), key=lambda item: -len(item[1]))
    ]


def prepare(
    directory: Path,
    url: str,
    database_url: str,
    redis_url: str,
    pages_per_second: str | None = PAGES_PER_SECOND,
) -> dict:
    """A configured instance in ``directory`` for a server at ``url``, migrated and with its keys;
    returns the environment to run ``idp`` with."""
    config = directory / "idp.toml"
    config.write_text(
        f'[server]\nissuer = "{url}"\n'
        f'[database]\nurl = "{database_url}"\n'
        f'[rate_limits]\nstorage_uri = "{redis_url}"\n'
        "[captcha]\nenabled = false\n"
        # Every POST counts against these: high enough that the load is the form's own work.
        f'[limits]\nform_rate_limit = "{FORM_LIMIT}"\nip_daily_limit = 1000000\ndaily_limit = 100\n'
        "phone_daily_limit = 100\nsms_daily_budget = 1000000\n"
        + (f"pages_in_flight = {PAGES_IN_FLIGHT}\n" if PAGES_IN_FLIGHT else "")
        + (f"pages_per_second = {pages_per_second}\n" if pages_per_second else ""),
        encoding="utf-8",
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("IDP_")}
    env.update(IDP_CONFIG=str(config), IDP_SERVER_SECRET_KEY="bench-" + "x" * 40)
    env.update(IDP_INSTANCE_PATH=str(directory))
    if SWITCH_INTERVAL:
        # Set in every process of the server (its workers too) as Python starts: a sitecustomize.
        site = directory / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(
            f"import sys\nsys.setswitchinterval({float(SWITCH_INTERVAL)})\n"
        )
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    _run(["db", "upgrade"], env)
    _run(["keys", "ensure"], env)
    return env


def _split_cpus() -> tuple[set[int], set[int]] | None:
    """The cores of the server and the probe, and those of the attackers (``ATTACKER_CPUS``); None when
    everything shares every core."""
    if ATTACKER_CPUS == "all":
        return None
    mine = os.sched_getaffinity(0)
    attackers = {int(cpu) for cpu in ATTACKER_CPUS.split(",")} if ATTACKER_CPUS else {max(mine)}
    if not mine - attackers:
        if ATTACKER_CPUS:
            raise SystemExit(f"IDP_BENCH_ATTACKER_CPUS={ATTACKER_CPUS} leaves no core to the server")
        return None  # one core: nothing to split
    return mine - attackers, attackers


def start_server(env: dict, port: int, log: Path, cpus: set[int] | None = None) -> subprocess.Popen:
    """``idp serve --production`` with 2 workers, its output in the file ``log``; on the cores ``cpus``
    only, when given.

    A file, not a pipe: nobody reads a pipe while the benchmark runs, and under load the server logs a
    line for every POST the rate limit refuses (flask-limiter, INFO). Once 64 KiB of them filled the pipe,
    the next write blocked in the logging handler holding its lock, every thread of both workers waited
    on that lock, and discovery got no answer at all."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [IDP, "serve", "--production", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=lambda: _server_preexec(cpus),
        )


def _server_preexec(cpus: set[int] | None) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    if SERVER_NICE:
        os.nice(int(SERVER_NICE))


def main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="idp-bench-abuse-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = prepare(
        directory,
        url,
        os.environ.get("IDP_BENCH_DATABASE_URL", f"sqlite:///{directory}/idp.sqlite3"),
        os.environ.get("IDP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"),
    )
    _run(
        [
            "accounts",
            "create",
            "--login",
            "77-1234567",
            "--phone",
            "+7 916 123-45-67",
            "--surname",
            "Каримов",
            "--given-name",
            "Бахтиёр",
        ],
        env,
    )
    log = directory / "server.log"
    split = _split_cpus()
    server = start_server(env, port, log, split and split[0])
    try:
        wait_until_serving(server, url)
        if split:
            os.sched_setaffinity(
                0, split[0]
            )  # the probe: beside the server, as a relying party's host would be
        _discovery_latencies(url, 10)  # warm up
        idle = _discovery_latencies(url, PROBES)
        idle_late = _sleep_overshoot(PROBES)
        forms = [
            {"login": "77-9999999", "phone": "+7 916 123-45-67"},
            {"login": "77-1234567", "phone": "+7 916 000-00-00"},
            {"login": "77-1234567", "phone": "+7 916 123-45-67"},
        ]
        # spawn, not fork: a fresh interpreter per client, nothing of this process's state copied.
        context = multiprocessing.get_context("spawn")
        stop, done = context.Event(), context.Value("q", 0)
        clients = [
            context.Process(
                target=_reset_client, args=(url, forms[number % len(forms)], stop, done, split and split[1])
            )
            for number in range(PARALLEL)
        ]
        for client in clients:
            client.start()
        try:
            while done.value < PARALLEL * 5:  # every client started and the load built up
                if any(client.exitcode is not None for client in clients):
                    break
                time.sleep(0.2)
            time.sleep(2)
            log_from = log.stat().st_size
            server_pids, client_pids = _server_pids(server), [client.pid for client in clients]
            cpu_from = _cpu_seconds(server_pids), _cpu_seconds(client_pids), time.perf_counter()
            loaded = _discovery_latencies(url, PROBES)
            cpu_to = _cpu_seconds(server_pids), _cpu_seconds(client_pids), time.perf_counter()
            loaded_late = _sleep_overshoot(PROBES)
            log_to = log.stat().st_size
        finally:
            stop.set()
            for client in clients:
                client.join(timeout=60)
        # A client that failed would have lightened the load unseen.
        failed = [client.exitcode for client in clients if client.exitcode != 0]
        if failed:
            raise SystemExit(f"{len(failed)} of the {PARALLEL} clients failed (exit codes {failed})")
    finally:
        server.terminate()
        server.wait(timeout=60)
        print(f"server log: {log}")
    idle_median, loaded_median = statistics.median(idle), statistics.median(loaded)
    idle_p95, loaded_p95 = _percentile(idle, 0.95) * 1000, _percentile(loaded, 0.95) * 1000
    print(f"discovery idle:   median {idle_median * 1000:7.1f} ms   p95 {idle_p95:7.1f} ms")
    print(
        f"discovery loaded: median {loaded_median * 1000:7.1f} ms   p95 {loaded_p95:7.1f} ms"
        f"   ({PARALLEL} parallel reset client processes, {done.value} GET+POST rounds;"
        f" form_rate_limit {FORM_LIMIT}; pages_in_flight {PAGES_IN_FLIGHT or 'default'};"
        f" pages_per_second {PAGES_PER_SECOND or 'default'};"
        f" switch interval {SWITCH_INTERVAL or 'default'}; server nice {SERVER_NICE or 'default'};"
        f" attackers' cores {sorted(split[1]) if split else 'all'})"
    )
    print(f"loaded/idle median: {loaded_median / idle_median:.1f}x (issue 10's bar: at most 3x)")
    server_cpu, client_cpu, wall = (after - before for before, after in zip(cpu_from, cpu_to, strict=True))
    print(
        f"CPU while the probe ran ({wall:.1f} s, {os.cpu_count()} cores, load average"
        f" {os.getloadavg()[0]:.1f}): server {server_cpu:.1f} s, the {PARALLEL} clients {client_cpu:.1f} s"
    )
    idle_late_ms, loaded_late_ms = statistics.median(idle_late) * 1000, statistics.median(loaded_late) * 1000
    print(
        f"a 1 ms sleep of the probe's process ends late by (median): idle {idle_late_ms:.1f} ms,"
        f" loaded {loaded_late_ms:.1f} ms"
    )
    with open(log, "rb") as out:
        out.seek(log_from)
        during = out.read(log_to - log_from).decode("utf-8", "replace").splitlines()
    print("the server's access lines while the probe ran (time inside the server, not queueing before it):")
    print("\n".join(access_summary(during)))


if __name__ == "__main__":
    main()
