"""The log lines (idp/logs.py): text or JSON, the request id in each, the masks, the libraries held above
DEBUG, and the production server's access lines and granian's own lines in JSON. A whole journey at
DEBUG searched for its secrets is tests/flows/test_log_secrets.py."""

from __future__ import annotations

import datetime
import json
import logging

import pytest
from granian.log import LogLevels
from granian.log import configure_logging

from idp import create_app
from idp import logs
from idp import serving
from idp.config import LoggingSettings

pytestmark = pytest.mark.once


@pytest.fixture(autouse=True)
def _plain_logging_afterwards():
    yield
    logs.configure(LoggingSettings())


@pytest.mark.parametrize(
    "line, secret",
    [
        ('127.0.0.1 "GET /logout?id_token_hint=eyJh.eyJz.c2ln&state=s HTTP/1.1" 302 -', "id_token_hint"),
        ('"GET /recovery/link/Zm9vYmFyYmF6cXV4 HTTP/1.1" 200', "Zm9vYmFyYmF6cXV4"),
        ("https://rp.example/cb?code=CODE-123&state=s", "CODE-123"),
        ("Sending to https://ops@example.ru:KEY-123@gate.smsaero.ru/v2/sms/send", "KEY-123"),
        ("Issue token {'access_token': 'AT-1', 'refresh_token': 'RT-1'} to <Client>", "AT-1"),
        ("Issue token {'access_token': 'AT-1', 'refresh_token': 'RT-1'} to <Client>", "RT-1"),
        ("Authorization: Bearer AT-2.x", "AT-2"),
        ("Authorization: Basic Y2xpZW50OnNlY3JldA==", "Y2xpZW50OnNlY3JldA=="),
        ("form {'password': 'correct horse battery', 'login': '77-0000001'}", "horse"),
        ("password=hunter2&login=x", "hunter2"),
        ('{"client_secret": "S3CRET", "code_verifier": "V3R"}', "S3CRET"),
        ('{"client_secret": "S3CRET", "code_verifier": "V3R"}', "V3R"),
        ("identifier 112-233-445 95 matched", "112-233-445 95"),
        ("snils=11223344595", "11223344595"),
        ("a signed thing eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl in a message", "eyJzdWIiOiIxIn0"),
    ],
)
def test_secrets_are_masked(line, secret):
    masked = logs.redact(line)
    assert secret not in masked and (logs.MASK in masked or "<token>" in masked), masked


@pytest.mark.parametrize(
    "line",
    [
        '127.0.0.1 "POST /token HTTP/1.1" 200 1068',
        "outbox message 12 (backchannel_logout): attempt 2 failed; tried again later",
        "Вы уверены? Да",
        "SMTP delivery failed: ConnectionRefusedError",
    ],
)
def test_ordinary_lines_are_left_alone(line):
    assert logs.redact(line) == line


def _app(**logging_settings):
    return create_app(
        {
            "server": {"environment": "development"},
            "database": {"url": "sqlite://"},
            "logging": logging_settings,
        }
    )


def test_json_lines_carry_the_request_id_the_client_got(capsys):
    app = _app(format="json", level="INFO")

    @app.route("/log-something")
    def log_something():
        logging.getLogger("idp.test").warning("checked password=hunter2 for %s", "77-0000001")
        return "ok"

    capsys.readouterr()
    response = app.test_client().get("/log-something")
    logging.getLogger("idp.test").info("outside a request")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    inside, outside = lines
    assert inside["request_id"] == response.headers["X-Request-Id"]
    assert (inside["level"], inside["logger"]) == ("WARNING", "idp.test")
    assert inside["message"] == "checked password=<redacted> for 77-0000001"
    assert datetime.datetime.fromisoformat(inside["time"]).tzinfo is not None
    assert outside["request_id"] is None and outside["message"] == "outside a request"


def test_text_is_the_default_one_line_with_the_request_id(capsys):
    app = _app()

    @app.route("/log-something")
    def log_something():
        logging.getLogger("idp.test").warning("token=abc")
        return "ok"

    capsys.readouterr()
    response = app.test_client().get("/log-something")
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith(f" WARNING idp.test [{response.headers['X-Request-Id']}] token=<redacted>"), line


def test_an_exception_is_masked_too(capsys):
    _app(format="json", level="INFO")
    capsys.readouterr()
    try:
        raise ValueError("bad refresh_token=RT-9 in the request")
    except ValueError:
        logging.getLogger("idp.test").exception("failed")
    [line] = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert "ValueError" in line["exc_info"] and "RT-9" not in line["exc_info"]


def test_libraries_that_log_secrets_stay_above_debug():
    _app(format="json", level="DEBUG")
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("idp.anything").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("urllib3.connectionpool").isEnabledFor(logging.DEBUG)
    # authlib: "Issue token {...}" at DEBUG; smsaero-api: the API key and SMS texts at DEBUG;
    # SQLAlchemy: statements with their parameters at INFO.
    assert not logging.getLogger("authlib.oauth2.rfc6749.grants.authorization_code").isEnabledFor(
        logging.DEBUG
    )
    assert logging.getLogger("authlib.oauth2").isEnabledFor(logging.INFO)
    assert not logging.getLogger("smsaero").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("sqlalchemy.engine.Engine").isEnabledFor(logging.INFO)
    _app(level="ERROR")
    assert not logging.getLogger("authlib").isEnabledFor(logging.WARNING)


def test_one_handler_whatever_the_number_of_apps():
    for _ in range(3):
        _app()
    assert len([h for h in logging.getLogger().handlers if getattr(h, "_idp", False)]) == 1


def test_access_lines_in_json(capsys):
    app = _app(format="json", level="INFO")
    app.wsgi_app = serving.AccessLog(app.wsgi_app, serving.access_logger())
    capsys.readouterr()
    response = app.test_client().get(
        "/logout?id_token_hint=ID-TOKEN",
        headers={"Authorization": "Bearer ACCESS-TOKEN"},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
        buffered=True,
    )
    out = capsys.readouterr().out
    [line] = [json.loads(text) for text in out.splitlines()]
    assert line["logger"] == serving.ACCESS_LOGGER
    assert line["request_id"] == response.headers["X-Request-Id"]
    assert (line["method"], line["path"], line["status"], line["remote_addr"]) == (
        "GET",
        "/logout",
        response.status_code,
        "203.0.113.7",
    )
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert "ID-TOKEN" not in out and "ACCESS-TOKEN" not in out


def test_granian_lines_in_json(capsys, monkeypatch):
    granian = logging.getLogger("_granian")
    for name in ("propagate", "level", "handlers"):
        monkeypatch.setattr(granian, name, getattr(granian, name))
    _app(format="json", level="INFO")
    # What granian does in its main process and in each worker with the dictConfig it is given.
    configure_logging(LogLevels.info, serving.GRANIAN_LOGGING)
    capsys.readouterr()
    granian.error("Worker failed with token=abc")
    [line] = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert line["logger"] == "_granian" and line["message"] == "Worker failed with token=<redacted>"


def test_warnings_of_reading_the_configuration_come_out_in_the_chosen_format(capsys):
    capsys.readouterr()
    create_app(
        {
            "server": {"environment": "production", "secret_key": "s" * 40},
            "database": {"url": "sqlite://"},
            "captcha": {"enabled": False},
            "logging": {"format": "json"},
        }
    )
    lines = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert any(
        line["logger"] == "idp.config" and "[captcha] enabled = false" in line["message"] for line in lines
    )


_CORPUS = [
    '127.0.0.1 - - [07/Dec/2026:15:30:00 +0000] "POST /token HTTP/1.1" 200 1234 42ms "python-requests/2"',
    '10.0.0.1 - - [07/Dec/2026:15:30:00 +0000] "GET /login HTTP/1.1" 200 9 3ms "Mozilla/5.0 (Linux)"',
    '127.0.0.1 "GET /logout?id_token_hint=eyJh.eyJz.c2ln&state=s HTTP/1.1" 302 -',
    "Authorization: BEARER AT-2.x and basic Zm9v and DiGeSt abc",
    "Authorization: \u212aey=K-1 DİGEST xyz ſecret=S-1",  # Kelvin sign, dotted I, long s: re.I folds them
    "TOKEN = 'T-1', Password: hunter2, NEW=n, old:o",
    "Вход: пароль=секрет token=T-2 для 112-233-445 95",
    "smtp://user:pw@mail.example/ and HTTPS://U:P@Host/x?A=1",
    "/recovery/link/Zm9vYmFy?x=1 eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
    "nothing here at all",
]


@pytest.mark.parametrize("line", _CORPUS)
def test_the_gates_never_change_what_is_masked(line):
    """redact skips a rule whose gate is not in the line; every rule applied regardless gives the same."""
    ungated = line
    for pattern, replacement, _gate, _ignores_case in logs._RULES:
        ungated = pattern.sub(replacement, ungated)
    assert logs.redact(line) == ungated
