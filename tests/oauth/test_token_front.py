"""The client_credentials grant answered in front of Flask (the token route of idp/oauth/read_front.py):
the same answers as the Flask view's, header for header (only X-Request-Id and the token differ), its
errors RFC 6749 §5.2's, counted in the metrics; every request it does not serve reaches Flask with its
body intact; a failure after the grant may have written is answered by Flask's error handlers."""

import functools
import json
import re

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from idp.crypto import digest
from idp.extensions import db
from idp.models import Token
from idp.oauth import storage
from idp.observability import ENVIRON_KEY

from ..flows.test_health import sample
from ..flows.test_health import scrape

FORM = "application/x-www-form-urlencoded"
# Makes Flask answer the same request (a cookie that is not the session's changes nothing else).
TO_FLASK = {"cookie": True}


def _flask_must_not_answer(app, monkeypatch):
    monkeypatch.setitem(app.view_functions, "oauth.token", lambda: pytest.fail("Flask answered /token"))


def _flask_answers(app, monkeypatch) -> list:
    """Record each call of the Flask view (it still answers)."""
    calls: list = []
    view = app.view_functions["oauth.token"]

    # Named as the view (functools.wraps): Flask-WTF exempts the view from CSRF by its name.
    @functools.wraps(view)
    def counted():
        calls.append(1)
        return view()

    monkeypatch.setitem(app.view_functions, "oauth.token", counted)
    return calls


def _post(client, rp, body: str, *, secret: str | None = None, headers=None, **kwargs):
    auth = (rp["client_id"], secret if secret is not None else rp["client_secret"])
    headers = dict(headers or {})
    if headers.pop("cookie", False):
        client.set_cookie("unrelated", "1")
    try:
        return client.post("/token", data=body, content_type=FORM, auth=auth, headers=headers, **kwargs)
    finally:
        client.delete_cookie("unrelated")


def _headers(response) -> dict:
    return {name: value for name, value in response.headers.items() if name != "X-Request-Id"}


def test_client_credentials_without_flask_answers_as_flask_does(app, client, rp, monkeypatch):
    by_flask = _post(client, rp, "grant_type=client_credentials&scope=patent", headers=TO_FLASK)
    assert by_flask.status_code == 200, by_flask.get_json()
    _flask_must_not_answer(app, monkeypatch)
    front = _post(client, rp, "grant_type=client_credentials&scope=patent")
    assert front.status_code == 200, front.get_json()
    assert _headers(front) == _headers(by_flask)
    assert "no-store" in front.headers["Cache-Control"] and "Origin" in front.headers["Vary"]
    assert re.fullmatch(r"[0-9a-f]{16}", front.headers["X-Request-Id"])
    body, flask_body = front.get_json(), by_flask.get_json()
    assert body.keys() == flask_body.keys() and body["access_token"] != flask_body["access_token"]
    assert {key: body[key] for key in ("token_type", "expires_in", "scope")} == {
        key: flask_body[key] for key in ("token_type", "expires_in", "scope")
    }
    # Stored as a digest, as the view stores it, and usable at introspection.
    with app.app_context():
        row = db.session.scalar(select(Token).filter_by(access_token_hash=digest(body["access_token"])))
        assert row is not None and row.client_id == rp["client_id"] and row.scope == "patent"
        # Written with the driver's cursor (storage._insert_alone): the columns' defaults too.
        assert (row.access_token_revoked_at, row.refresh_token_revoked_at) == (0, 0) and row.family_id
        assert row.expires_in == body["expires_in"] and row.refresh_token_hash is None
    introspected = client.post(
        "/introspect", data={"token": body["access_token"]}, auth=(rp["client_id"], rp["client_secret"])
    )
    assert introspected.get_json()["active"] is True


@pytest.mark.parametrize(
    ("body", "secret", "error", "status"),
    [
        ("grant_type=client_credentials&scope=patent", "wrong secret", "invalid_client", 401),
        ("grant_type=client_credentials&scope=openid", None, "invalid_scope", 400),
        ("grant_type=client_credentials&scope=patent&scope=patent", None, "invalid_request", 400),
        ("grant_type=client_credentials&resource=https%3A%2F%2Fapi.example%2F", None, "invalid_target", 400),
    ],
)
def test_errors_without_flask_are_flasks_oauth_errors(
    app, client, rp, monkeypatch, body, secret, error, status
):
    by_flask = _post(client, rp, body, secret=secret, headers=TO_FLASK)
    _flask_must_not_answer(app, monkeypatch)
    front = _post(client, rp, body, secret=secret)
    assert (front.status_code, front.get_json()["error"]) == (status, error)
    assert (front.status_code, front.get_json()) == (by_flask.status_code, by_flask.get_json())
    assert _headers(front) == _headers(by_flask)


def test_client_not_allowed_the_grant(app, client, make_rp, monkeypatch):
    code_only = make_rp(grant_types=["authorization_code", "refresh_token"])
    _flask_must_not_answer(app, monkeypatch)
    response = _post(client, code_only, "grant_type=client_credentials&scope=patent")
    assert (response.status_code, response.get_json()["error"]) == (400, "unauthorized_client")


def test_answers_without_flask_count_in_the_metrics(app, client, rp, monkeypatch):
    labels = {"endpoint": "oauth.token", "method": "POST"}
    # The series exist once counted.
    _post(client, rp, "grant_type=client_credentials")
    _post(client, rp, "grant_type=client_credentials", secret="wrong")
    before_ok = sample(scrape(client), "idp_http_requests_total", status="200", **labels)
    before_401 = sample(scrape(client), "idp_http_requests_total", status="401", **labels)
    issued = sample(scrape(client), "idp_tokens_issued_total", grant="client_credentials")
    _flask_must_not_answer(app, monkeypatch)
    seen = []
    inner = app.wsgi_app
    monkeypatch.setattr(
        app, "wsgi_app", lambda environ, start: (seen.append(environ), inner(environ, start))[1]
    )
    ok = _post(client, rp, "grant_type=client_credentials&scope=patent")
    # The access log's request id is the answer's (idp.serving reads it from the environ).
    assert seen[-1][ENVIRON_KEY] == ok.headers["X-Request-Id"]
    for _ in range(2):
        _post(client, rp, "grant_type=client_credentials", secret="wrong")
    exposition = scrape(client)
    assert sample(exposition, "idp_http_requests_total", status="200", **labels) == before_ok + 1
    assert sample(exposition, "idp_http_requests_total", status="401", **labels) == before_401 + 2
    assert sample(exposition, "idp_tokens_issued_total", grant="client_credentials") == issued + 1


@pytest.mark.parametrize(
    ("body", "headers", "extra"),
    [
        # Another grant: the code, refresh and device grants stay Flask's.
        ("grant_type=authorization_code&code=x&redirect_uri=https%3A%2F%2Frp.example%2Fcb", {}, {}),
        # A query string: authlib reads it with the form.
        ("grant_type=client_credentials&scope=patent", {}, {"query_string": "x=1"}),
        # CORS, DPoP, a cookie.
        ("grant_type=client_credentials&scope=patent", {"Origin": "https://rp.example"}, {}),
        ("grant_type=client_credentials&scope=patent", TO_FLASK, {}),
        # A DPoP proof (RFC 9449), whose htu is built from the request's URL: Flask refuses this one.
        ("grant_type=client_credentials&scope=patent", {"DPoP": "not-a-proof"}, {}),
        # A client assertion (RFC 7523), whose audience is built from the request's URL.
        ("grant_type=client_credentials&client_assertion=x&client_assertion_type=y", {}, {}),
    ],
)
def test_what_it_does_not_serve_reaches_flask_with_its_body(
    app, client, rp, monkeypatch, body, headers, extra
):
    calls = _flask_answers(app, monkeypatch)
    response = _post(client, rp, body, headers=headers, **extra)
    assert calls == [1]
    assert response.mimetype == "application/json", response.get_data()
    if "DPoP" in headers:
        assert response.get_json()["error"] == "invalid_dpop_proof"
    elif body.startswith("grant_type=client_credentials&scope"):
        assert response.status_code == 200, response.get_json()
    elif body.startswith("grant_type=authorization_code"):
        assert response.get_json()["error"] == "invalid_grant"
    else:
        # Client authentication by assertion, with an assertion type that is not RFC 7523's.
        assert response.status_code in (200, 400, 401), response.get_json()


def test_a_body_that_is_not_utf8_or_not_a_form_reaches_flask(app, client, rp, monkeypatch):
    calls = _flask_answers(app, monkeypatch)
    auth = (rp["client_id"], rp["client_secret"])
    not_utf8 = client.post(
        "/token", data=b"grant_type=client_credentials&scope=\xff", content_type=FORM, auth=auth
    )
    as_json = client.post(
        "/token",
        data=json.dumps({"grant_type": "client_credentials"}),
        auth=auth,
        content_type="application/json",
    )
    assert calls == [1, 1]
    for response in (not_utf8, as_json):
        assert response.status_code == 400 and response.mimetype == "application/json", response.get_data()


def test_the_database_down_is_a_json_503(app, client, rp, monkeypatch):
    # A first token request puts the client in the cache: the next one fails at the INSERT.
    assert _post(client, rp, "grant_type=client_credentials").status_code == 200
    # The view stays (its json_endpoint mark makes the answer JSON), but does not run.
    calls = _flask_answers(app, monkeypatch)

    def down(*args, **kwargs):
        raise OperationalError("INSERT", {}, ConnectionRefusedError("down"))

    monkeypatch.setattr(storage, "_nothing_pending", down)
    response = _post(client, rp, "grant_type=client_credentials")
    assert response.status_code == 503, response.get_data()
    assert calls == []
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert int(response.headers["Retry-After"]) > 0 and "no-store" in response.headers["Cache-Control"]
    assert re.fullmatch(r"[0-9a-f]{16}", response.headers["X-Request-Id"])
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    labels = {"endpoint": "oauth.token", "method": "POST", "status": "503"}
    assert sample(scrape(client), "idp_http_requests_total", **labels) == 1
