"""`idp serve --production`: the granian settings derived from the provider's configuration (checked against
granian's own signature), the refusal of per-process rate limits with several workers, an access log that
keeps no secret (the provider's AccessLog in front of the real app), and the metrics files of a worker that
died. The server really serving pages is tests/test_wheel.py, tests/browser/test_tls_proxy.py and
tests/multihost."""

from __future__ import annotations

import inspect
import os
import socket
import subprocess
import sys
from dataclasses import replace

import pytest
from granian import Granian
from granian.constants import HTTPModes
from granian.constants import Interfaces
from prometheus_client import values

from idp import cli
from idp import create_app
from idp import metrics
from idp import serving
from idp.config import ConfigError
from idp.config import Settings

pytestmark = pytest.mark.once


def _config(**values) -> Settings:
    """Settings with these ``SECTION_KEY`` values (the names of the environment variables without IDP_)."""
    sections = {"server": {"workers": 0, "threads": 4, "graceful_timeout": 30, "proxy_count": 0}}
    sections["rate_limits"] = {"storage_uri": "redis://127.0.0.1:6379/2"}
    for name, value in values.items():
        section = "rate_limits" if name.startswith("RATE_LIMITS_") else "server"
        sections[section][name.lower().removeprefix(section + "_")] = value
    settings = Settings()
    return replace(
        settings,
        server=replace(settings.server, **sections["server"]),
        rate_limits=replace(settings.rate_limits, **sections["rate_limits"]),
    )


def _granian_settings(config: Settings, workers: int | None = None) -> dict:
    """The options, bound to granian's own parameters (an unknown or misspelt one fails here)."""
    options = serving.production_options(config, host="127.0.0.1", port=8000, workers=workers)
    bound = inspect.signature(Granian).bind(**options)
    bound.apply_defaults()
    return dict(bound.arguments)


def test_workers_default_to_the_cpu_count_and_follow_config_then_the_command_line():
    assert _granian_settings(_config())["workers"] == os.cpu_count()
    assert _granian_settings(_config(SERVER_WORKERS=3))["workers"] == 3
    assert _granian_settings(_config(SERVER_WORKERS=3), workers=5)["workers"] == 5


def test_granian_gets_threads_graceful_timeout_and_restarts_dead_workers():
    settings = _granian_settings(_config(SERVER_THREADS=6, SERVER_GRACEFUL_TIMEOUT=45))
    assert settings["interface"] == Interfaces.WSGI
    assert settings["http"] == HTTPModes.http1 and settings["websockets"] is False
    assert settings["blocking_threads"] == 6
    assert settings["workers_kill_timeout"] == 45
    assert settings["respawn_failed_workers"] is True
    assert (settings["address"], settings["port"]) == ("127.0.0.1", 8000)
    # No pid file, no TLS of its own (a proxy terminates it), no metrics port of granian's.
    assert settings["pid_file"] is None and settings["ssl_cert"] is None
    assert settings["metrics_enabled"] is False


def test_granian_writes_no_access_log_of_its_own_and_its_lines_reach_the_root_handler():
    settings = _granian_settings(_config())
    assert settings["log_access"] is False
    loggers = settings["log_dictconfig"]["loggers"]
    assert loggers["_granian"]["propagate"] is True and "handlers" not in loggers["_granian"]
    assert settings["log_dictconfig"]["handlers"] == {}


def test_memory_rate_limits_are_refused_with_more_than_one_worker():
    with pytest.raises(
        ConfigError, match=r"\[rate_limits\] storage_uri: memory:// keeps counters per process"
    ):
        serving.production_options(_config(RATE_LIMITS_STORAGE_URI="memory://"), host="h", port=1, workers=2)
    with pytest.raises(ConfigError):
        serving.production_options(
            _config(RATE_LIMITS_STORAGE_URI="memory://", SERVER_WORKERS=3), host="h", port=1, workers=None
        )
    assert serving.production_options(
        _config(RATE_LIMITS_STORAGE_URI="memory://"), host="h", port=1, workers=1
    )


def test_the_command_refuses_memory_rate_limits_with_exit_status_2(monkeypatch, capsys):
    monkeypatch.setattr(serving, "run_production", lambda options: pytest.fail("the server was started"))
    monkeypatch.setenv("IDP_RATE_LIMITS_STORAGE_URI", "memory://")
    monkeypatch.setattr(sys, "argv", ["idp", "serve", "--production", "--workers", "2"])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("configuration error: [rate_limits] storage_uri: memory://")


def _served(path: str, **kwargs) -> str:
    """The access line of one request through the real app behind AccessLog."""
    app = create_app({"server": {"environment": "development"}, "database": {"url": "sqlite://"}})
    app.wsgi_app = serving.AccessLog(app.wsgi_app, serving.access_logger())
    return app.test_client().get(path, buffered=True, **kwargs)


def test_access_lines_hold_no_query_string_referrer_cookie_or_recovery_token(capsys):
    capsys.readouterr()
    headers = {
        "Referer": "https://rp.example/?code=REFCODE",
        "User-Agent": "Mozilla/5.0",
        "Cookie": "idp_session=SESSION-COOKIE",
        "Authorization": "Bearer ACCESS-TOKEN",
    }
    link = _served("/recovery/link/LINK-TOKEN?x=1", headers=headers)
    logout = _served("/logout?id_token_hint=ID-TOKEN&state=s", headers=headers)
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith("127.0.0.1 - - [")
    size = len(link.get_data())
    assert f'"GET /recovery/link/<token> HTTP/1.1" {link.status_code} {size} ' in first, first
    assert first.endswith('ms "Mozilla/5.0"'), first
    assert f'"GET /logout HTTP/1.1" {logout.status_code} ' in second, second
    for secret in ("LINK-TOKEN", "ID-TOKEN", "REFCODE", "SESSION-COOKIE", "ACCESS-TOKEN", "?"):
        assert secret not in first + second


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_new_worker_forgets_the_live_values_of_workers_that_died(tmp_path, monkeypatch):
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    # Set through monkeypatch first, so that the folder prepare_multiprocess names is forgotten after the
    # test (it sets os.environ itself; left behind, it sent later tests' /metrics to this folder).
    monkeypatch.setenv(metrics.ENVIRONMENT, str(tmp_path))
    metrics.prepare_multiprocess(str(tmp_path))
    dead, alive = _dead_pid(), os.getppid()
    for pid in (dead, alive):
        for kind in ("counter", "histogram", "gauge_livesum", "gauge_all"):
            (tmp_path / f"{kind}_{pid}.db").write_bytes(b"")
    assert metrics.forget_dead_processes() == [dead]
    left = sorted(path.name for path in tmp_path.iterdir())
    # prometheus-client's mark_process_dead: the dead worker's live gauges go, its counters stay in the sum.
    assert f"gauge_livesum_{dead}.db" not in left
    assert {f"counter_{dead}.db", f"histogram_{dead}.db", f"gauge_all_{dead}.db"} <= set(left)
    kinds = ("counter", "histogram", "gauge_livesum", "gauge_all")
    assert {f"{kind}_{alive}.db" for kind in kinds} <= set(left)


def test_systemd_is_told_when_the_server_listens(tmp_path, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert serving.notify_systemd(b"READY=1") is False
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert serving.notify_systemd(b"READY=1") is True
        assert systemd.recv(64) == b"READY=1"
    abstract = f"idp-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind("\0" + abstract)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + abstract)
        assert serving.notify_systemd(b"READY=1") is True
        assert systemd.recv(64) == b"READY=1"


def test_a_scrape_leaves_out_a_worker_file_still_being_created(tmp_path, monkeypatch):
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    monkeypatch.setenv(metrics.ENVIRONMENT, str(tmp_path))
    metrics.prepare_multiprocess(str(tmp_path))
    counted = metrics.Metrics()
    counted.count("idp_sign_ins", "ok")
    # A worker that has just started: its file exists, empty, until prometheus-client sizes it.
    (tmp_path / f"counter_{_dead_pid()}.db").write_bytes(b"")
    text = counted.exposition().decode()
    assert 'idp_sign_ins_total{outcome="ok"} 1.0' in text


def test_a_worker_moves_the_apps_own_objects_out_of_the_collectors_generations(tmp_path):
    # Issue 12: a full collection under load no longer walks the app's modules, catalogues and mappers.
    script = (
        "import gc; from idp import serving; serving.start_background = lambda app: app; "
        "before = gc.get_freeze_count(); serving._load_worker('idp:create_app'); "
        "print(before, gc.get_freeze_count())"
    )
    env = {**os.environ, "IDP_INSTANCE_PATH": str(tmp_path)}
    env.pop("IDP_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    before, after = map(int, done.stdout.split())
    assert before == 0 and after > 10_000, done.stdout
