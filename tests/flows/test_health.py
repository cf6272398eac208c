"""/healthz, /readyz and /metrics (idp/views/health.py, idp/metrics.py), through HTTP.

Several processes adding up their counters (granian workers) is shown by tests/multihost."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from idp import create_app
from idp.extensions import db
from idp.services import keys

from ..conftest import make_config
from ..helpers import redis_url
from ..oauth._flow import refresh
from ..oauth._flow import sign_in_for_tokens
from ..processes import free_port

TOKEN = "metrics-bearer-token-0123456789abcdef"
OUTSIDE = {"REMOTE_ADDR": "203.0.113.7"}  # documentation range; the test client sends nothing anywhere


def sample(exposition: str, name: str, **labels) -> float:
    """The value of one series in a Prometheus text exposition."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in exposition.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name:
            found = ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
            if found == wanted:
                return float(match.group(3))
    raise AssertionError(f"no {name}{{{wanted}}} in the exposition")


def scrape(client, **kwargs) -> str:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return response.get_data(as_text=True)


# -- /healthz and /readyz ---------------------------------------------------------------------------------


def test_healthz_answers_without_session_or_language(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers  # no language was chosen
    assert re.fullmatch(r"[0-9a-f]{16}", response.headers["X-Request-Id"])
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_when_everything_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"status": "ready"}


def test_readyz_without_signing_keys(app, client):
    with app.app_context():
        db.session.execute(text("DELETE FROM signing_keys"))
        db.session.commit()
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.get_json() == {
            "status": "unavailable",
            "reasons": [
                "no active RS256 signing key",
                "no active ES256 signing key",
                "no active EdDSA signing key",
            ],
        }
        assert response.headers["Retry-After"]
    finally:
        with app.app_context():
            keys.ensure_keys(db.session, now=0)
            db.session.commit()


@pytest.mark.once
def test_readyz_when_the_database_does_not_answer(tmp_path):
    app = create_app(make_config(database={"url": f"sqlite:///{tmp_path}/no/such/folder/idp.sqlite3"}))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "reasons": ["database unreachable"]}


@pytest.mark.once
def test_readyz_checks_redis_when_configured(_schema):
    up = create_app(make_config(rate_limits={"storage_uri": redis_url(3)}))
    assert up.test_client().get("/readyz").get_json() == {"status": "ready"}
    down = create_app(make_config(rate_limits={"storage_uri": f"redis://127.0.0.1:{free_port()}/3"}))
    response = down.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["reasons"] == ["rate-limit storage (Redis) unreachable"]


# -- /metrics ---------------------------------------------------------------------------------------------


def test_metrics_count_requests_sign_ins_and_tokens(app, browser, account, rp, make_account):
    make_account(login="77-0000002")
    wrong = browser.sign_in("77-0000002", "not the password")
    assert wrong.status_code == 200
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid offline_access")
    assert refresh(browser.client, rp, tokens["refresh_token"]).status_code == 200

    exposition = scrape(browser.client)
    assert sample(exposition, "idp_sign_ins_total", outcome="wrong") == 1
    assert sample(exposition, "idp_sign_ins_total", outcome="ok") == 1
    assert sample(exposition, "idp_sign_ins_total", outcome="locked") == 0
    assert sample(exposition, "idp_tokens_issued_total", grant="authorization_code") == 1
    # Each sign-in's bcrypt check, the wrong password's too, with the CPU it took in its thread.
    assert sample(exposition, "idp_password_check_cpu_seconds_count") == 2
    assert 0 < sample(exposition, "idp_password_check_cpu_seconds_sum") < 10
    assert sample(exposition, "idp_tokens_issued_total", grant="refresh_token") == 1
    assert (
        sample(exposition, "idp_http_requests_total", endpoint="oauth.token", method="POST", status="200")
        == 2
    )
    assert sample(exposition, "idp_http_request_duration_seconds_count", endpoint="oauth.token") == 2
    assert (
        sample(exposition, "idp_http_requests_total", endpoint="login.login", method="POST", status="200")
        == 1
    )
    # A path that matches no route counts under "none", not under its (unbounded, maybe secret) path.
    browser.client.get("/no/such/page")
    assert (
        sample(scrape(browser.client), "idp_http_requests_total", endpoint="none", method="GET", status="404")
        == 1
    )


@pytest.mark.config(login={"max_failures": 3, "captcha_after": 10})
def test_metrics_count_a_locked_account(browser, account):
    for _ in range(4):
        browser.sign_in(account["login"], "wrong password")
    exposition = scrape(browser.client)
    assert sample(exposition, "idp_sign_ins_total", outcome="wrong") == 2
    # The third failure locks the account, the fourth attempt finds it locked.
    assert sample(exposition, "idp_sign_ins_total", outcome="locked") == 2


def test_metrics_count_a_temporary_password(browser, make_account):
    account = make_account(login="77-0000003", temporary=True)
    browser.sign_in(account["login"], account["password"])
    assert sample(scrape(browser.client), "idp_sign_ins_total", outcome="temporary") == 1


def test_metrics_refused_outside_the_allow_list(client):
    response = client.get("/metrics", environ_base=OUTSIDE)
    assert response.status_code == 403
    assert b"idp_" not in response.data


@pytest.mark.config(metrics={"allow_from": ["203.0.113.0/24"]})
def test_metrics_allow_list_is_the_configured_one(client):
    assert client.get("/metrics", environ_base=OUTSIDE).status_code == 200
    assert client.get("/metrics").status_code == 403  # loopback is no longer listed


@pytest.mark.config(metrics={"token": TOKEN})
def test_metrics_with_the_bearer_token_from_anywhere(client):
    response = client.get("/metrics", environ_base=OUTSIDE)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": f"Bearer {TOKEN[:-1]}x"})
    assert wrong.status_code == 401
    basic = client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    right = client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200
    assert b"idp_http_requests_total" in right.data


@pytest.mark.config(server={"proxy_count": 1})
def test_metrics_behind_a_proxy_judge_the_client_not_the_proxy(client):
    # The proxy (on loopback) forwards a request from outside: the client's address decides.
    outside = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert outside.status_code == 403
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


def test_probes_are_not_rate_limited_and_need_no_csrf(client):
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert "X-RateLimit-Limit" not in client.get("/healthz").headers
