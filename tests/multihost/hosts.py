"""Two production hosts, as operations run them: two `idp serve --production` processes (each with its own
granian workers and instance folder) on two ports of 127.0.0.1, sharing one PostgreSQL database and one
Redis, with one issuer (as behind one load balancer).

The PostgreSQL server is a private one (``PrivatePostgres``: Debian's initdb/pg_ctl, a free port, a
temporary folder), so that a test may stop it and start it again without touching the machine's shared
server that other test runs use. Redis is the machine's, a database number of this test's own.

Reuse: ``two_hosts(tmp_path, **sections)`` (the ``two_hosts`` fixture of tests/multihost/conftest.py
calls it) gives a ``TwoHosts``; ``sections`` are TOML sections merged over ``BASE_CONFIG`` (e.g.
``outbound={"http_allowed_hosts": ["127.0.0.1:8123"]}``). ``hosts.restart()`` restarts both servers
(``restart("a")`` one of them), ``hosts.idp("keys", "rotate")`` runs the command line against the same
configuration, ``hosts.app`` is an in-process app on the same database for arranging and checking rows.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import redis
import requests
from flask_migrate import upgrade
from sqlalchemy import create_engine
from sqlalchemy import text

from idp import create_app
from idp.extensions import db
from idp.services import keys

from ..helpers import redis_url
from ..processes import IDP
from ..processes import free_port

REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", redis_url(6))
SECRET_KEY = "two-hosts-test-secret-key-0123456789-abcdefgh"
WORKERS = 2
# What both hosts run with: production mode (IDP_CONFIG is set), limits in Redis, JSON logs, and key
# caching short enough for a rotation to be seen within the test. publish_ahead counts from the start of
# `idp keys rotate`, which takes up to ~8 s on a busy machine; it must still exceed that plus cache_ttl
# and jwks_max_age, or a host could sign with a key the other does not publish yet.
BASE_CONFIG: dict[str, dict] = {
    "passwords": {"bcrypt_rounds": 4},
    "login": {"rate_limit": "5/minute"},
    "keys": {"cache_ttl": 2, "publish_ahead": 12, "jwks_max_age": 1},
    "logging": {"format": "json"},
    "captcha": {"enabled": False},
    # Back-channel logout retried every 1-3 s, up to 31 attempts (about a minute and a half): long enough
    # for both hosts to restart while the relying party is down (point 5), short enough to see it arrive.
    "outbox": {"poll_interval": 1, "retry_delay": 1, "max_retry_delay": 3},
    "logout": {"backchannel_retries": 30},
}


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    assert found, "PostgreSQL's server binaries are missing: `make tools` installs Debian's postgresql"
    return Path(found[-1]).parent


class PrivatePostgres:
    """A PostgreSQL server of the test's own on 127.0.0.1:``port``, trust authentication, user postgres."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.directory = Path(tempfile.mkdtemp(prefix="idp-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/idp"
        # PostgreSQL refuses to run as root: as root (CI, helpers), the server runs as the postgres user.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.directory, "postgres")

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        self.start()
        engine = create_engine(self.url.replace("/idp", "/postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE DATABASE idp"))
        engine.dispose()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
            str(self.directory / "server.log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop now: open connections are cut, new ones refused (``pg_ctl stop -m fast``)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class Host:
    name: str
    port: int
    instance: Path
    env: dict
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log = self.instance / f"server-{time.monotonic_ns()}.log"
        with open(self.log, "wb") as out:
            # Output to a file: a pipe nobody reads would fill and stop the server.
            self.process = subprocess.Popen(
                [IDP, "serve", "--production", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_ready(self)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log else ""


def wait_ready(host: Host, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert host.process.poll() is None, f"host {host.name} exited:\n{host.output()[-4000:]}"
        try:
            if requests.get(f"{host.url}/readyz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, (
            f"host {host.name} not ready in {timeout} s:\n{host.output()[-4000:]}"
        )
        time.sleep(0.2)


@dataclass
class TwoHosts:
    a: Host
    b: Host
    postgres: PrivatePostgres
    config_path: Path
    app: object
    redis: redis.Redis
    env: dict = field(default_factory=dict)
    receiver_port: int = 0

    @property
    def issuer(self) -> str:
        return self.a.url

    @property
    def hosts(self) -> tuple[Host, Host]:
        return self.a, self.b

    def restart(self, *names: str) -> None:
        """Stop and start the named hosts (default both), each waiting until it is ready."""
        chosen = [host for host in self.hosts if not names or host.name in names]
        for host in chosen:
            host.stop()
        for host in chosen:
            host.start()

    def idp(self, *args: str) -> subprocess.CompletedProcess:
        """The `idp` command line with the hosts' configuration (as an operator on host A runs it)."""
        return subprocess.run(
            [IDP, *args], env=self.a.env, capture_output=True, text=True, timeout=60, check=True
        )

    def flush_rate_limits(self) -> None:
        self.redis.flushdb()


def _toml(sections: dict[str, dict]) -> str:
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(item) for item in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "".join(
        f"[{name}]\n" + "".join(f"{key} = {value(v)}\n" for key, v in values.items()) + "\n"
        for name, values in sections.items()
    )


@contextmanager
def two_hosts(directory: Path, **sections: dict):
    """Start the PostgreSQL server, the schema, the keys and both hosts; stop everything afterwards."""
    postgres = PrivatePostgres()
    started: list[Host] = []
    try:
        postgres.init()
        port_a, port_b = free_port(), free_port()
        config = {name: dict(values) for name, values in BASE_CONFIG.items()}
        config["server"] = {"issuer": f"http://127.0.0.1:{port_a}", "workers": WORKERS}
        config["database"] = {"url": postgres.url}
        config["rate_limits"] = {"storage_uri": REDIS_URL}
        for name, values in sections.items():
            config.setdefault(name, {}).update(values)
        config_path = directory / "idp.toml"
        config_path.write_text(_toml(config), encoding="utf-8")

        app = create_app({"database": {"url": postgres.url}, "server": {"environment": "development"}})
        with app.app_context():
            upgrade()
            keys.ensure_keys(db.session, now=int(time.time()))
            db.session.commit()
            db.engine.dispose()
        store = redis.Redis.from_url(REDIS_URL)
        store.flushdb()

        base_env = {
            key: value for key, value in os.environ.items() if not key.startswith(("IDP_", "PROMETHEUS_"))
        }
        hosts = []
        for name, port in (("a", port_a), ("b", port_b)):
            instance = directory / f"host-{name}"
            instance.mkdir()
            env = dict(
                base_env,
                IDP_CONFIG=str(config_path),
                IDP_SERVER_SECRET_KEY=SECRET_KEY,
                IDP_INSTANCE_PATH=str(instance),
            )
            hosts.append(Host(name, port, instance, env))
        for host in hosts:
            host.start()
            started.append(host)
        yield TwoHosts(hosts[0], hosts[1], postgres, config_path, app, store)
    finally:
        for host in started:
            host.stop()
        postgres.remove()
