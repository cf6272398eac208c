"""`idp serve --production`: the gunicorn settings derived from the provider's configuration, as gunicorn
itself reads them, the refusal of per-process rate limits with several workers, and an access log that
keeps no secret. The server really serving pages is tests/test_wheel.py and
tests/browser/test_tls_proxy.py."""

from __future__ import annotations

import datetime
import os
import sys
from dataclasses import replace

import pytest

from idp import cli
from idp import serving
from idp.config import ConfigError
from idp.config import Settings


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


def _gunicorn_settings(config: Settings, workers: int | None = None):
    """The settings as gunicorn validated them (it exits on a value it refuses)."""
    options = serving.production_options(config, host="127.0.0.1", port=8000, workers=workers)
    return serving.ProductionServer(options).cfg


def test_workers_default_to_the_cpu_count_and_follow_config_then_the_command_line():
    assert _gunicorn_settings(_config()).workers == os.cpu_count()
    assert _gunicorn_settings(_config(SERVER_WORKERS=3)).workers == 3
    assert _gunicorn_settings(_config(SERVER_WORKERS=3), workers=5).workers == 5


def test_gunicorn_gets_threads_timeout_and_leaves_no_control_socket():
    settings = _gunicorn_settings(_config(SERVER_THREADS=6, SERVER_GRACEFUL_TIMEOUT=45))
    assert settings.worker_class_str == serving.WORKER_CLASS
    assert settings.threads == 6
    assert settings.graceful_timeout == 45
    assert settings.control_socket_disable is True
    assert settings.address == [("127.0.0.1", 8000)]


def test_without_a_proxy_no_forwarded_header_is_believed():
    settings = _gunicorn_settings(_config(SERVER_PROXY_COUNT=0))
    assert settings.forwarded_allow_ips == []
    assert settings.secure_scheme_headers == {}
    assert settings.forwarder_headers == []


def test_behind_a_proxy_the_scheme_comes_from_x_forwarded_proto_only():
    settings = _gunicorn_settings(_config(SERVER_PROXY_COUNT=1))
    assert settings.forwarded_allow_ips == ["*"]
    assert settings.secure_scheme_headers == {"X-FORWARDED-PROTO": "https"}
    # SCRIPT_NAME / PATH_INFO / REMOTE_USER are never taken from headers.
    assert settings.forwarder_headers == []


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


class _Response:
    status = "200 OK"
    headers = [("Content-Type", "text/html")]
    sent = 1234


class _Request:
    headers = [("COOKIE", "idp_session=SESSION-COOKIE"), ("AUTHORIZATION", "Bearer ACCESS-TOKEN")]


def _access_line(path: str, query: str) -> str:
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"{path}?{query}",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_REFERER": "https://rp.example/?code=REFCODE",
        "HTTP_USER_AGENT": "Mozilla/5.0",
    }
    settings = _gunicorn_settings(_config())
    logger = serving.AccessLogger(settings)
    atoms = logger.atoms(_Response(), _Request(), environ, datetime.timedelta(milliseconds=42))
    return settings.access_log_format % atoms


def test_access_lines_hold_no_query_string_referrer_or_recovery_token():
    line = _access_line("/recovery/link/LINK-TOKEN", "x=1")
    assert '"GET /recovery/link/<token> HTTP/1.1" 200 1234 42ms "Mozilla/5.0"' in line
    assert line.startswith("203.0.113.7 ")
    line = _access_line("/logout", "id_token_hint=ID-TOKEN&state=s")
    assert '"GET /logout HTTP/1.1"' in line
    for secret in ("LINK-TOKEN", "ID-TOKEN", "REFCODE", "SESSION-COOKIE", "ACCESS-TOKEN", "?"):
        assert secret not in line
