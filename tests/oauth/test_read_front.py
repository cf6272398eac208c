"""Introspection and UserInfo answered in front of Flask (idp/oauth/read_front.py): for every kind of request,
the same answer as Flask's to the same request, byte for byte and header for header (only X-Request-Id
and the DPoP nonce are new each time); counted in the metrics and seen by the access log; every request
the front cannot answer as Flask would, or fails on, answered by Flask."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from werkzeug.test import Client
from werkzeug.test import TestResponse

from idp.extensions import db
from idp.models import Account
from idp.models import OAuth2Client
from idp.models import Token
from idp.oauth import storage
from idp.oauth.read_front import ReadFront
from idp.observability import ENVIRON_KEY

from ..flows.test_health import sample
from ..flows.test_health import scrape
from ._flow import bearer
from ._flow import sign_in_for_tokens
from .test_dpop import _key
from .test_dpop import _tokens as dpop_tokens
from .test_dpop import proof

MASKED = {"X-Request-Id": "<id>", "DPoP-Nonce": "<nonce>"}


class Twin:
    """Sends a request to the app (through the front) and the same request to Flask alone."""

    def __init__(self, app):
        layer = app.wsgi_app
        while not isinstance(layer, ReadFront):
            layer = layer.wsgi_app
        self.front = layer
        self.flask = layer.wsgi_app
        self.flask_calls = 0

        def counted(environ, start_response):
            self.flask_calls += 1
            return self.flask(environ, start_response)

        layer.wsgi_app = counted
        self.via_front = FlaskClient(app)
        self.flask_alone = Client(self.flask, TestResponse)

    def send(self, method: str, path: str, **kwargs) -> tuple[TestResponse, TestResponse, bool]:
        """Both answers, and whether Flask answered the request sent to the app."""
        before = self.flask_calls
        answer = self.via_front.open(path, method=method, **kwargs)
        flasks = self.flask_alone.open(path, method=method, **kwargs)
        return answer, flasks, self.flask_calls > before


@pytest.fixture
def twin(app):
    return Twin(app)


def _shown(response) -> list[tuple[str, str]]:
    return [(name, MASKED.get(name, value)) for name, value in response.headers.items()]


def assert_same(answer, flasks) -> None:
    assert answer.status == flasks.status, answer.get_data(as_text=True)
    assert _shown(answer) == _shown(flasks)
    assert answer.get_data() == flasks.get_data()
    assert re.fullmatch(r"[0-9a-f]{16}", answer.headers["X-Request-Id"])


def _client_credentials(client, rp, scope="profile") -> str:
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(rp["client_id"], rp["client_secret"]),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["access_token"]


def _expire(app, access_token: str) -> None:
    from idp.crypto import digest

    with app.app_context():
        db.session.execute(
            update(Token).where(Token.access_token_hash == digest(access_token)).values(issued_at=0)
        )
        db.session.commit()


def test_introspection_answers_are_flasks(app, twin, browser, account, rp, make_rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid profile offline_access")
    other = make_rp()
    theirs = _client_credentials(twin.via_front, other)
    expired = _client_credentials(twin.via_front, rp)
    _expire(app, expired)
    basic = (rp["client_id"], rp["client_secret"])
    post = {"client_id": rp["client_id"], "client_secret": rp["client_secret"]}
    cases = [
        {"data": {"token": tokens["access_token"]}, "auth": basic},
        {"data": {"token": tokens["access_token"], "token_type_hint": "access_token"}, "auth": basic},
        {"data": {"token": tokens["refresh_token"], "token_type_hint": "whatever"}, "auth": basic},
        {"data": {"token": tokens["access_token"], **post}},
        {"data": {"token": "no-such-token"}, "auth": basic},
        {"data": {"token": theirs}, "auth": basic},
        {"data": {"token": expired}, "auth": basic},
        {"data": {"token": "x" * 5000}, "auth": basic},
        # Errors (RFC 7662 §2.3, RFC 6749 §5.2): no token, a repeated one, no or a wrong client.
        {"data": "", "auth": basic, "content_type": "application/x-www-form-urlencoded"},
        {
            "data": "token=a&token=b&x=%zz+%41",
            "auth": basic,
            "content_type": "application/x-www-form-urlencoded",
        },
        {"data": {"token": tokens["access_token"]}},
        {"data": {"token": tokens["access_token"]}, "auth": (rp["client_id"], "wrong")},
        {"data": {"token": tokens["access_token"]}, "headers": {"Authorization": "Basic !!"}},
        {"data": {"token": tokens["access_token"], "client_id": "nobody", "client_secret": "x"}},
    ]
    for case in cases:
        answer, flasks, by_flask = twin.send("POST", "/introspect", **case)
        assert not by_flask, case
        assert_same(answer, flasks)
    assert twin.send("POST", "/introspect", **cases[0])[0].get_json()["active"] is True


def test_userinfo_answers_are_flasks(app, twin, browser, account, rp, make_rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid profile phone")
    signing = make_rp()
    with app.app_context():
        # OIDC Registration §2: UserInfo answered as a signed JWT (application/jwt).
        client = db.session.scalar(db.select(OAuth2Client).filter_by(client_id=signing["client_id"]))
        client.client_metadata = {**client.client_metadata, "userinfo_signed_response_alg": "RS256"}
        db.session.commit()
    signed, _ = sign_in_for_tokens(browser, account, signing, scope="openid")
    machine = _client_credentials(twin.via_front, rp)
    access = tokens["access_token"]
    form = {"access_token": access}
    cases = [
        ("GET", {"headers": bearer(access)}),
        ("POST", {"headers": bearer(access)}),
        ("POST", {"data": form}),
        ("GET", {"headers": bearer(signed["access_token"])}),
        # RFC 6750 §3: no token, an unknown one, another scheme, both ways at once, no openid scope.
        ("GET", {}),
        ("GET", {"headers": bearer("no-such-token")}),
        ("GET", {"headers": {"Authorization": "Basic abc"}}),
        ("GET", {"headers": {"Authorization": "Bearer"}}),
        ("POST", {"headers": bearer(access), "data": form}),
        (
            "POST",
            {"data": "access_token=a&access_token=b", "content_type": "application/x-www-form-urlencoded"},
        ),
        ("GET", {"headers": bearer(machine)}),
    ]
    for method, case in cases:
        answer, flasks, by_flask = twin.send(method, "/userinfo", **case)
        assert not by_flask, (method, case)
        assert_same(answer, flasks)
    assert twin.send("GET", "/userinfo", **cases[0][1])[0].get_json()["sub"] == account["sub"]
    assert twin.send("GET", "/userinfo", **cases[3][1])[0].mimetype == "application/jwt"
    # A blocked account's token stops working at once, an expired token too.
    with app.app_context():
        db.session.execute(update(Account).values(status="blocked"))
        db.session.commit()
    answer, flasks, by_flask = twin.send("GET", "/userinfo", headers=bearer(access))
    assert not by_flask and answer.status_code == 401
    assert_same(answer, flasks)


def test_dpop_bound_tokens(twin, browser, account, rp):
    key = _key()
    tokens = dpop_tokens(browser, account, rp, key)
    # Presented as a bearer token (RFC 9449 §7.2): refused, by the front.
    answer, flasks, by_flask = twin.send("GET", "/userinfo", headers=bearer(tokens["access_token"]))
    assert not by_flask and answer.status_code == 401
    assert_same(answer, flasks)
    # Introspection tells the binding (RFC 9449 §6.2).
    answer, flasks, by_flask = twin.send(
        "POST",
        "/introspect",
        data={"token": tokens["access_token"]},
        auth=(rp["client_id"], rp["client_secret"]),
    )
    assert not by_flask and answer.get_json()["cnf"]
    assert_same(answer, flasks)
    # With its proof, whose jti is stored: Flask's.
    htu = "http://localhost/userinfo"
    headers = {
        "Authorization": f"DPoP {tokens['access_token']}",
        "DPoP": proof(key, "GET", htu, access_token=tokens["access_token"]),
    }
    before = twin.flask_calls
    assert twin.via_front.get("/userinfo", headers=headers).status_code == 200
    assert twin.flask_calls == before + 1


@pytest.mark.config(dpop={"require_nonce": True}, server={"issuer": "https://localhost"})
def test_the_nonce_and_hsts_headers_are_added_as_flask_adds_them(twin, rp):
    access = _client_credentials(twin.via_front, rp)
    answer, flasks, by_flask = twin.send(
        "POST",
        "/introspect",
        data={"token": access},
        auth=(rp["client_id"], rp["client_secret"]),
        base_url="https://localhost",
    )
    assert not by_flask and "DPoP-Nonce" in answer.headers and "Strict-Transport-Security" in answer.headers
    assert_same(answer, flasks)


def test_requests_whose_answer_may_differ_go_to_flask(twin, rp):
    access = _client_credentials(twin.via_front, rp)
    basic = (rp["client_id"], rp["client_secret"])
    cases = [
        ("GET", "/userinfo?x=1", {"headers": bearer(access)}),
        ("GET", "/userinfo", {"headers": {**bearer(access), "Origin": "https://rp.example"}}),
        ("HEAD", "/userinfo", {"headers": bearer(access)}),
        ("OPTIONS", "/userinfo", {"headers": {"Origin": "https://rp.example"}}),
        ("PUT", "/userinfo", {"headers": bearer(access)}),
        ("GET", "/userinfo", {"headers": bearer(access), "data": "x", "content_type": "text/plain"}),
        ("POST", "/introspect", {"json": {"token": access}, "auth": basic}),
        (
            "POST",
            "/introspect",
            {"data": b"token=\xff", "auth": basic, "content_type": "application/x-www-form-urlencoded"},
        ),
        ("POST", "/introspect", {"data": {"token": access}, "auth": basic, "base_url": "http://idp.example"}),
        ("POST", "/introspect", {"data": {"token": "a" * 70000}, "auth": basic}),
        ("POST", "/introspect", {"data": {"token": access, "client_assertion": "x"}, "auth": basic}),
        ("GET", "/introspect", {"auth": basic}),
    ]
    for method, path, case in cases:
        answer, flasks, by_flask = twin.send(method, path, **case)
        assert by_flask, (method, path, case)
        assert answer.status == flasks.status
        assert answer.headers.get("Access-Control-Allow-Origin") == flasks.headers.get(
            "Access-Control-Allow-Origin"
        )
    # A cookie (a permanent session would be refreshed).
    twin.via_front.set_cookie("a", "b")
    twin.flask_alone.set_cookie("a", "b")
    answer, flasks, by_flask = twin.send("GET", "/userinfo", headers=bearer(access))
    assert by_flask and answer.status == flasks.status
    twin.via_front.delete_cookie("a")
    cors = twin.via_front.get("/userinfo", headers={**bearer(access), "Origin": "https://rp.example"})
    assert cors.headers["Access-Control-Allow-Origin"] == "https://rp.example"


def test_a_request_the_front_fails_on_is_served_by_flask(twin, rp, monkeypatch):
    access = _client_credentials(twin.via_front, rp)
    real = storage.live.read
    calls = []

    def fail_once(digest, *, access_only):
        calls.append(digest)
        if len(calls) == 1:
            raise RuntimeError("a bug of the front")
        return real(digest, access_only=access_only)

    monkeypatch.setattr(storage.live, "read", fail_once)
    before = twin.flask_calls
    response = twin.via_front.post(
        "/introspect", data={"token": access}, auth=(rp["client_id"], rp["client_secret"])
    )
    assert response.status_code == 200 and response.get_json()["active"] is True
    assert twin.flask_calls == before + 1 and len(calls) == 2


def test_a_database_outage_is_flasks_503(twin, rp, monkeypatch):
    access = _client_credentials(twin.via_front, rp)

    def down(digest, *, access_only):
        raise OperationalError("SELECT", {}, ConnectionRefusedError("refused"))

    monkeypatch.setattr(storage.live, "read", down)
    for response in (
        twin.via_front.post(
            "/introspect", data={"token": access}, auth=(rp["client_id"], rp["client_secret"])
        ),
        twin.via_front.get("/userinfo", headers=bearer(access)),
    ):
        assert response.status_code == 503
        assert response.get_json()["error"] == "temporarily_unavailable"
        assert response.headers["Retry-After"] and response.headers["Cache-Control"] == "no-store"


def test_front_answers_count_in_the_metrics_and_reach_the_access_log(app, twin, rp, monkeypatch):
    access = _client_credentials(twin.via_front, rp)
    labels = {"endpoint": "oauth.introspect", "method": "POST", "status": "200"}
    twin.via_front.post("/introspect", data={"token": access}, auth=(rp["client_id"], rp["client_secret"]))
    before = sample(scrape(twin.via_front), "idp_http_requests_total", **labels)
    seen = []
    outer = app.wsgi_app

    def watch(environ, start_response):
        answer = outer(environ, start_response)
        seen.append(environ.get(ENVIRON_KEY))
        return answer

    monkeypatch.setattr(app, "wsgi_app", watch)
    calls = twin.flask_calls
    for _ in range(3):
        response = twin.via_front.post(
            "/introspect", data={"token": access}, auth=(rp["client_id"], rp["client_secret"])
        )
        assert response.status_code == 200 and seen[-1] == response.headers["X-Request-Id"]
    assert twin.flask_calls == calls
    assert sample(scrape(twin.via_front), "idp_http_requests_total", **labels) == before + 3
    unauthorized = {"endpoint": "oauth.userinfo", "method": "GET", "status": "401"}
    twin.via_front.get("/userinfo")
    before = sample(scrape(twin.via_front), "idp_http_requests_total", **unauthorized)
    twin.via_front.get("/userinfo")
    assert sample(scrape(twin.via_front), "idp_http_requests_total", **unauthorized) == before + 1


def test_the_front_serves_only_unlimited_endpoints_of_the_same_paths(app):
    from idp.lean import UNLIMITED_ENDPOINTS
    from idp.oauth.read_front import ROUTES

    adapter = app.url_map.bind("localhost")
    for path, route in ROUTES.items():
        assert route.endpoint in UNLIMITED_ENDPOINTS
        for method in route.methods:
            assert adapter.match(path, method=method)[0] == route.endpoint
