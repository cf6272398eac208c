"""Nothing secret in the logs (issue 9, idp/logs.py): a whole journey over real HTTP, with the root logger at
DEBUG and ``[logging] format = "json"``, and every line the process wrote searched for every secret the
journey used.

The provider is served by werkzeug's server with the request handler ``idp serve`` uses
(``serving.development_request_handler``), so werkzeug's request lines are in the output; its SMS go
through the real smsaero-api client and urllib3 to the fake SMS Aero gateway (tests/fake_smsaero.py); the
relying party is authlib's requests client in this same process. So the lines of authlib (both sides),
werkzeug, urllib3, smsaero-api and SQLAlchemy are all written, at DEBUG, to the one handler
``create_app`` installed.

The journey: a sign-in with a password and the code flow (token, userinfo, refresh, userinfo, logout with
``id_token_hint``); an SMS reset (its temporary password signs in and is changed); an access recovery by
SNILS with the SMS code and a new password; a staff sign-in with password and TOTP code; a wrong
password and a wrong client secret. Then: every line is a JSON object with ``time``, ``level``,
``logger``, ``message`` and ``request_id``; every ``X-Request-Id`` the client got is the ``request_id``
of a line; and none of the secrets appears, in any spelling the journey used.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from urllib.parse import urljoin
from urllib.parse import urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.requests_client import OAuthError
from werkzeug.serving import make_server

from idp import create_app
from idp import logs
from idp.config import LoggingSettings
from idp.extensions import limiter
from idp.runtime import of
from idp.services import passwords
from idp.serving import development_request_handler

from ..conftest import _create_account
from ..conftest import _create_client
from ..conftest import make_config
from ..conftest import wipe_tables
from ..fake_smsaero import API_KEY
from ..fake_smsaero import EMAIL as GATEWAY_EMAIL
from ..helpers import csrf_token
from ..live import follow_inside
from ..live import http_session
from ..live import sign_in
from ..staff import create_member
from ..staff import fresh_code

PASSWORD = "пароль журнала 1"
RESET_NEW = "пароль после сброса 2"
RECOVERY_NEW = "пароль после восстановления 3"
SNILS = "112-233-445 95"
SNILS_DIGITS = "11223344595"
PHONE = "+79161234567"
REDIRECT_URI = "https://rp.example/cb"
_SMS_PASSWORD = re.compile(r": ([" + passwords.TEMPORARY_ALPHABET + r"]{10})\. ")
_SMS_CODE = re.compile(r"восстановления: (\d{6})\. ")


class Journey:
    """The secrets used and the request ids received along the way."""

    def __init__(self, url: str):
        self.url = url
        self.secrets: dict[str, str] = {}
        self.request_ids: set[str] = set()

    def keep(self, name: str, value: str) -> str:
        assert value, name
        self.secrets[name] = value
        return value

    def session(self, session: requests.Session | None = None) -> requests.Session:
        session = session or http_session()
        session.trust_env = False
        session.hooks["response"].append(self._seen)
        return session

    def _seen(self, response, *args, **kwargs):
        if response.url.startswith(self.url):
            assert "X-Request-Id" in response.headers, response.url
            self.request_ids.add(response.headers["X-Request-Id"])

    def keep_cookies(self, session: requests.Session) -> None:
        for cookie in session.cookies:
            self.keep(f"cookie {cookie.name}", cookie.value)

    def form(self, session: requests.Session, path: str, data: dict):
        """GET the page at ``path``, POST its form with ``data``; the response, redirects not followed."""
        page = session.get(self.url + path, timeout=10)
        assert page.status_code == 200, (path, page.status_code)
        return session.post(
            self.url + path,
            data={"csrf_token": csrf_token(page.text), **data},
            allow_redirects=False,
            timeout=10,
        )


@pytest.fixture
def served(_schema, gateway):
    """The provider at DEBUG in JSON over werkzeug with ``idp serve``'s request handler, SMS by the fake
    SMS Aero gateway; yields (url, app)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sms = {
        "backend": "smsaero",
        "email": GATEWAY_EMAIL,
        "api_key": API_KEY,
        "gate": gateway.gate,
        "timeout": 3,
    }
    app = create_app(
        make_config(
            server={"issuer": url},
            sms=sms,
            captcha={"enabled": False},
            logging={"format": "json", "level": "DEBUG"},
        )
    )
    with app.app_context():
        limiter.reset()
    server = make_server(
        "127.0.0.1",
        int(url.rsplit(":", 1)[1]),
        app,
        threaded=True,
        request_handler=development_request_handler(),
        fd=sock.fileno(),
    )
    sock.close()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    # Like `idp serve`: the background loop sends what the outbox holds (the reset SMS, ...).
    background = of(app).background
    background.start()
    try:
        yield url, app
    finally:
        background.stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        wipe_tables(app)
        logs.configure(LoggingSettings())


def test_a_whole_journey_at_debug_logs_json_lines_and_no_secret(served, gateway, capsys):
    url, app = served
    journey = Journey(url)
    capsys.readouterr()  # what start-up wrote is not part of the journey

    account = _create_account(app, login="77-7000001", password=PASSWORD, snils=SNILS_DIGITS, phone=PHONE)
    journey.keep("password", PASSWORD)
    client = _create_client(app, redirect_uris=[REDIRECT_URI], scope="openid profile phone offline_access")
    journey.keep("client secret", client["client_secret"])
    journey.keep(
        "client secret (Basic)",
        base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode(),
    )
    journey.keep("SMS Aero API key", API_KEY)
    journey.keep("SMS Aero API key (Basic)", base64.b64encode(f"{GATEWAY_EMAIL}:{API_KEY}".encode()).decode())
    journey.keep("SNILS", SNILS)
    journey.keep("SNILS (digits)", SNILS_DIGITS)

    # -- a sign-in with a password, the code flow, userinfo, refresh, logout ---------------------------
    rp = journey.session(
        OAuth2Session(
            client_id=client["client_id"],
            client_secret=client["client_secret"],
            token_endpoint_auth_method="client_secret_basic",
            scope="openid profile phone offline_access",
            redirect_uri=REDIRECT_URI,
            code_challenge_method="S256",
        )
    )
    verifier = journey.keep("code verifier", generate_token(48))
    authorization_url, _ = rp.create_authorization_url(
        f"{url}/authorize", code_verifier=verifier, nonce=generate_token(16)
    )
    browser = journey.session()
    wrong = sign_in(browser, url, authorization_url, account["login"], "неверный пароль 0")
    assert wrong.status_code == 200
    journey.keep("wrong password", "неверный пароль 0")
    answer = sign_in(browser, url, authorization_url, account["login"], PASSWORD)
    assert answer.status_code == 302 and answer.headers["Location"].startswith(REDIRECT_URI), (
        answer.status_code
    )
    code = journey.keep("authorization code", dict(_query(answer.headers["Location"]))["code"])
    journey.keep_cookies(browser)

    tokens = rp.fetch_token(f"{url}/token", code=code, code_verifier=verifier)
    for name in ("access_token", "refresh_token", "id_token"):
        journey.keep(name, tokens[name])
    assert (
        _userinfo(rp, url, tokens["access_token"])["sub"] == _userinfo(rp, url, tokens["access_token"])["sub"]
    )
    refreshed = rp.refresh_token(f"{url}/token", refresh_token=tokens["refresh_token"])
    journey.keep("refreshed access_token", refreshed["access_token"])
    journey.keep("refreshed refresh_token", refreshed["refresh_token"])
    journey.keep("refreshed id_token", refreshed["id_token"])
    _userinfo(rp, url, refreshed["access_token"])

    intruder = journey.session(
        OAuth2Session(
            client_id=client["client_id"],
            client_secret="not-the-client-secret-0123456789",
            token_endpoint_auth_method="client_secret_basic",
        )
    )
    with pytest.raises(OAuthError):
        intruder.refresh_token(f"{url}/token", refresh_token=refreshed["refresh_token"])
    journey.keep("wrong client secret", "not-the-client-secret-0123456789")

    logout = browser.get(
        f"{url}/logout",
        params={"id_token_hint": refreshed["id_token"], "post_logout_redirect_uri": "https://rp.example/bye"},
        allow_redirects=False,
        timeout=10,
    )
    assert logout.status_code in (200, 302), logout.status_code

    # -- an SMS reset: the temporary password signs in once and is replaced ------------------------------
    reset_browser = journey.session()
    sent_before = len(gateway.received)
    asked = journey.form(reset_browser, "/reset/", {"login": account["login"], "phone": PHONE})
    assert (asked.status_code, asked.headers.get("Location")) == (302, "/reset/sent"), asked.text[:300]
    temporary = journey.keep("SMS reset password", _sms_matching(gateway, _SMS_PASSWORD, sent_before))
    signed = journey.form(reset_browser, "/login", {"login": account["login"], "password": temporary})
    assert (signed.status_code, signed.headers["Location"]) == (302, "/password/change")
    journey.keep("new password (reset)", RESET_NEW)
    changed = journey.form(
        reset_browser, "/password/change", {"old": temporary, "new": RESET_NEW, "repeat": RESET_NEW}
    )
    assert changed.status_code == 302, changed.text[:300]
    journey.keep_cookies(reset_browser)

    # -- an access recovery by SNILS: the SMS code, then a new password ----------------------------------
    recovery = journey.session()
    sent_before = len(gateway.received)
    started = journey.form(recovery, "/recovery/", {"identifier": SNILS, "surname": "Рахимов"})
    assert (started.status_code, started.headers.get("Location")) == (302, "/recovery/sent"), started.text[
        :300
    ]
    sms_code = journey.keep("recovery code", _sms_matching(gateway, _SMS_CODE, sent_before))
    verified = journey.form(recovery, "/recovery/sent", {"code": sms_code})
    assert (verified.status_code, verified.headers["Location"]) == (302, "/recovery/password")
    journey.keep("new password (recovery)", RECOVERY_NEW)
    done = journey.form(recovery, "/recovery/password", {"new": RECOVERY_NEW, "repeat": RECOVERY_NEW})
    assert (done.status_code, done.headers["Location"]) == (302, "/login")
    journey.keep_cookies(recovery)
    # A new authorization request: the first one's nonce is spent (a replay is refused).
    again, _ = rp.create_authorization_url(
        f"{url}/authorize", code_verifier=verifier, nonce=generate_token(16)
    )
    signed_again = sign_in(journey.session(), url, again, account["login"], RECOVERY_NEW)
    assert signed_again.status_code == 302, signed_again.headers.get("Location")

    # -- a member of staff signs in with a password and a TOTP code --------------------------------------
    member = create_member(app, "admin", "logadmin")
    journey.keep("staff password", member["password"])
    journey.keep("TOTP secret", member["totp_secret"])
    staff = journey.session()
    totp = journey.keep("TOTP code", fresh_code(member))
    entered = journey.form(
        staff, "/admin/login", {"username": member["username"], "password": member["password"], "code": totp}
    )
    assert entered.status_code == 302, entered.text[:300]
    assert follow_inside(staff, entered, url).status_code == 200
    journey.keep_cookies(staff)

    captured = capsys.readouterr()
    output = captured.err + captured.out

    # Every line is one JSON object with the fields a log collector relies on.
    lines, not_json = [], []
    for text in captured.err.splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            not_json.append(text)
    assert not not_json, "\n".join(not_json[:20])
    assert len(lines) > 50, captured.err[:2000]
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= line.keys(), line
    # Every request the clients made is in a line with the id they got back.
    logged_ids = {line["request_id"] for line in lines}
    assert journey.request_ids and journey.request_ids <= logged_ids, journey.request_ids - logged_ids
    # The libraries did log at DEBUG (so the search below searched something).
    loggers = {line["logger"] for line in lines}
    assert {"werkzeug", "urllib3.connectionpool"} <= loggers, loggers

    leaked = {name: value for name, value in journey.secrets.items() if value in output}
    assert not leaked, {name: _lines_with(output, value) for name, value in leaked.items()}
    # Also the halves of JWTs (a header or payload alone identifies the token) and URL-encoded values.
    for name in ("id_token", "refreshed id_token"):
        for part in journey.secrets[name].split(".")[1:]:
            assert part not in output, name
    assert requests.utils.quote(SNILS) not in output


def _sms_matching(gateway, pattern: re.Pattern, after: int) -> str:
    """The first group of ``pattern`` in the first SMS after the ``after`` first ones that has it, waiting
    for the outbox to send it (other SMS, such as «your password was changed», may come in between)."""
    deadline = time.monotonic() + 15
    while True:
        for message in gateway.received[after:]:
            if match := pattern.search(message["text"]):
                return match.group(1)
        assert time.monotonic() < deadline, f"no SMS matching {pattern.pattern} arrived"
        time.sleep(0.05)


def _userinfo(rp, url: str, access_token: str) -> dict:
    response = rp.get(
        f"{url}/userinfo",
        headers={"Authorization": f"Bearer {access_token}"},
        withhold_token=True,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _query(location: str):
    from urllib.parse import parse_qsl

    return parse_qsl(urlsplit(urljoin("https://x/", location)).query)


def _lines_with(output: str, value: str) -> list[str]:
    return [line[:400] for line in output.splitlines() if value in line][:3]
