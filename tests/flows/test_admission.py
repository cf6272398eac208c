"""Admission control (idp/admission.py, issue 10): a client address may have ``[limits] pages_in_flight``
page requests in flight in a worker; one more is answered at once with the 429 page in the page's
language, without entering Flask, and the protocol endpoints are never refused. Requests are held in
flight by not closing their answers (the test client's ``buffered=False``): the server has not finished
sending them, as when a slow client reads them; every other request here is closed as soon as it is
answered (``buffered=True``)."""

from __future__ import annotations

import re

import pytest
from flask import Response
from flask.testing import FlaskClient
from flask_babel import force_locale

from idp import messages
from idp.admission import Admission

CAP = 2
LANG = re.compile(r'<html lang="([a-z]+)">')
capped = pytest.mark.config(limits={"pages_in_flight": CAP})


class ClosingClient(FlaskClient):
    """A test client that closes each answer once it has read it, as a server does once it has sent it."""

    def open(self, *args, buffered=True, **kwargs):
        return super().open(*args, buffered=buffered, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = ClosingClient
    return app.test_client()


def _admission(app) -> Admission:
    layer = app.wsgi_app
    while not isinstance(layer, Admission):
        layer = getattr(layer, "wsgi_app", None) or layer.app
    return layer


def _message(app, language: str) -> str:
    with app.test_request_context("/"), force_locale(language):
        return str(messages.HTTP_ERRORS[429])


def _hold(client, count: int, path: str = "/login", **kwargs) -> list:
    """``count`` answers of ``path`` not yet closed: their requests are still in flight."""
    held = [client.get(path, buffered=False, **kwargs) for _ in range(count)]
    assert [answer.status_code for answer in held] == [200] * count
    return held


def _entered_flask(app) -> list[str]:
    """The paths of the requests that reach Flask from now on."""
    from flask import request

    seen: list[str] = []
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: seen.append(request.path) and None)
    return seen


@capped
def test_a_page_over_the_cap_is_refused_at_once_and_passes_once_one_ends(app, client):
    held = _hold(client, CAP)
    assert _admission(app).in_flight("127.0.0.1") == CAP
    seen = _entered_flask(app)
    refused = client.get("/reset/")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["Cache-Control"] == "no-store"
    assert refused.headers["X-Frame-Options"] == "DENY" and refused.headers["X-Request-Id"]
    assert "Set-Cookie" not in refused.headers
    page = refused.get_data(as_text=True)
    assert LANG.search(page).group(1) == "ru" and _message(app, "ru") in page
    assert "csrf_token" not in page  # no switcher: its form's token would be bound to a session
    assert client.post("/reset/", data={"login": "77-1"}).status_code == 429
    assert seen == []  # neither reached the app
    held.pop().close()
    assert _admission(app).in_flight("127.0.0.1") == CAP - 1
    assert client.get("/reset/").status_code == 200
    assert seen == ["/reset/"]
    for answer in held:
        answer.close()
    assert _admission(app).in_flight("127.0.0.1") == 0


@capped
def test_the_refusal_is_in_the_language_the_page_would_have(app, client):
    _hold(client, CAP)
    for language in ("en", "uz", "tg", "ky"):
        assert _message(app, language) != _message(app, "ru")
    by_browser = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9,ru;q=0.5"})
    client.set_cookie("idp_lang", "uz:1700000000")
    by_choice = client.get("/login", headers={"Accept-Language": "en"})
    # The flow's ui_locales comes before the switcher's choice (views.locale).
    by_flow = client.get("/authorize?client_id=x&ui_locales=tg-TJ%20en")
    client.delete_cookie("idp_lang")
    unknown = client.get("/no/such/page", headers={"Accept-Language": "ky"})
    for answer, language in ((by_browser, "en"), (by_choice, "uz"), (by_flow, "tg"), (unknown, "ky")):
        page = answer.get_data(as_text=True)
        assert answer.status_code == 429
        assert LANG.search(page).group(1) == language and _message(app, language) in page, language


@capped
def test_protocol_endpoints_documents_and_static_files_are_never_refused(app, client):
    _hold(client, CAP)
    answers = {
        "discovery": client.get("/.well-known/openid-configuration"),
        "discovery through Flask": client.get("/.well-known/openid-configuration?x=1"),
        "jwks": client.get("/jwks.json", headers={"Origin": "https://rp.example"}),
        "token": client.post("/token", data={"grant_type": "client_credentials"}),
        "token, wrong method": client.get("/token"),
        "introspect": client.post("/introspect", data={"token": "x"}),
        "revoke": client.post("/revoke", data={"token": "x"}),
        "userinfo": client.get("/userinfo"),
        "par": client.post("/par", data={}),
        "device": client.post("/device/authorize", data={}),
        "register": client.post("/register", json={}),
        "openapi": client.get("/openapi.json"),
        "static": client.get("/static/idp.css"),
        "healthz": client.get("/healthz"),
    }
    assert {name: answer.status_code for name, answer in answers.items() if answer.status_code == 429} == {}
    # Nor does any number of them in flight count.
    held = [client.post("/token", data={}, buffered=False) for _ in range(CAP + 3)]
    assert _admission(app).in_flight("127.0.0.1") == CAP
    assert client.post("/introspect", data={"token": "x"}).status_code != 429
    for answer in held:
        answer.close()


@capped
def test_the_count_is_released_when_the_app_raises_or_its_answer_fails(app, client):
    def boom():
        raise RuntimeError("a bug")

    def broken_stream():
        def chunks():
            yield b"<p>"
            raise RuntimeError("a bug while sending")

        return Response(chunks(), mimetype="text/html")

    app.add_url_rule("/test-boom", view_func=boom)
    app.add_url_rule("/test-broken-stream", view_func=broken_stream)
    admission = _admission(app)
    for _ in range(CAP + 1):
        assert client.get("/test-boom").status_code == 500  # the app's own last-resort page
        with pytest.raises(RuntimeError, match="while sending"):
            client.get("/test-broken-stream")
        assert admission.in_flight("127.0.0.1") == 0
    # What lets an exception out of Flask: a failure of the layers below (here, the whole of them).
    flask_app = admission.wsgi_app

    def failing(environ, start_response):
        raise OSError("below the app")

    admission.wsgi_app = failing
    for _ in range(CAP + 1):
        with pytest.raises(OSError):
            client.get("/login")
        assert admission.in_flight("127.0.0.1") == 0
    admission.wsgi_app = flask_app
    assert client.get("/login").status_code == 200


@pytest.mark.config(limits={"pages_in_flight": CAP}, server={"proxy_count": 1})
def test_behind_the_proxy_the_forwarded_address_counts(app, client):
    held = _hold(client, CAP, headers={"X-Forwarded-For": "203.0.113.7"})
    admission = _admission(app)
    assert admission.in_flight("203.0.113.7") == CAP and admission.in_flight("127.0.0.1") == 0
    assert client.get("/login", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 429
    # Another client behind the same proxy is not held up by that one.
    assert client.get("/login", headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 200
    for answer in held:
        answer.close()
    assert client.get("/login", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 200


@pytest.mark.config(limits={"pages_in_flight": CAP}, server={"proxy_count": 1})
def test_an_ipv6_customer_is_one_address_by_its_64(app, client):
    """services.net.rate_key: the addresses of one /64 share the cap, a fresh one each time included;
    the next /64 is someone else."""
    held = [
        *_hold(client, 1, headers={"X-Forwarded-For": "2001:db8:1:2::1"}),
        *_hold(client, 1, headers={"X-Forwarded-For": "2001:db8:1:2:aaaa::2"}),
    ]
    admission = _admission(app)
    assert admission.in_flight("2001:db8:1:2::ffff") == CAP
    assert client.get("/login", headers={"X-Forwarded-For": "2001:db8:1:2::3"}).status_code == 429
    assert client.get("/login", headers={"X-Forwarded-For": "2001:db8:1:3::1"}).status_code == 200
    for answer in held:
        answer.close()
    assert client.get("/login", headers={"X-Forwarded-For": "2001:db8:1:2::3"}).status_code == 200


@capped
def test_refusals_are_counted(app, client):
    _hold(client, CAP)
    assert client.get("/login").status_code == 429
    assert client.get("/login").status_code == 429
    text = client.get("/metrics").get_data(as_text=True)
    assert 'idp_admission_refusals_total{reason="in_flight"} 2.0' in text
    assert 'idp_http_requests_total{endpoint="login.login",method="GET",status="429"} 2.0' in text


@pytest.mark.config(limits={"pages_in_flight": 0})
def test_no_cap_when_turned_off(app, client):
    held = _hold(client, 10)
    assert client.get("/login").status_code == 200
    for answer in held:
        answer.close()


# -- the rate of pages per address ([limits] pages_per_second) ---------------------------------------------

RATE = 2
rated = pytest.mark.config(limits={"pages_in_flight": 0, "pages_per_second": RATE})


class Clock:
    """The admission layer's clock, moved by the test instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app) -> Clock:
    clock = Clock()
    _admission(app).clock = clock
    return clock


@rated
def test_a_burst_of_twice_the_rate_passes_then_pages_are_refused_until_time_refills(app, client, clock):
    seen = _entered_flask(app)
    assert [client.get("/login").status_code for _ in range(2 * RATE)] == [200] * (2 * RATE)
    refused = client.get("/reset/")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert _message(app, "ru") in refused.get_data(as_text=True)
    assert len(seen) == 2 * RATE  # the refused one never reached the app
    # Protocol endpoints and documents are never counted.
    assert client.get("/.well-known/openid-configuration").status_code == 200
    assert client.post("/token", data={"grant_type": "client_credentials"}).status_code != 429
    clock.now += 1 / RATE  # one page's worth of time
    assert client.get("/login").status_code == 200
    assert client.get("/login").status_code == 429
    clock.now += 60  # a quiet minute: a full burst again, never more
    assert [client.get("/login").status_code for _ in range(2 * RATE + 1)] == [200] * (2 * RATE) + [429]


@rated
def test_each_address_has_its_own_rate(app, client, clock):
    assert [client.get("/login").status_code for _ in range(2 * RATE + 1)][-1] == 429
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "198.51.100.4"
    assert other.get("/login").status_code == 200


def _at(app, address: str) -> FlaskClient:
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = address
    return other


@rated
def test_an_ipv6_customer_has_one_rate_for_its_64(app, clock):
    statuses = [
        _at(app, f"2001:db8:1:2::{number + 1:x}").get("/login").status_code for number in range(2 * RATE + 1)
    ]
    assert statuses == [200] * (2 * RATE) + [429]
    assert _at(app, "2001:db8:1:3::1").get("/login").status_code == 200


@rated
def test_an_ipv4_mapped_address_has_the_rate_of_its_ipv4_address(app, client, clock):
    assert [client.get("/login").status_code for _ in range(2 * RATE)] == [200] * (2 * RATE)
    assert _at(app, "::ffff:127.0.0.1").get("/login").status_code == 429
    assert _at(app, "::ffff:127.0.0.2").get("/login").status_code == 200


@pytest.mark.config(limits={"pages_in_flight": 0, "pages_per_second": RATE, "ipv6_prefix": 48})
def test_the_ipv6_prefix_length_is_configurable(app, clock):
    """[limits] ipv6_prefix 48: the /64s of one /48 share a rate."""
    statuses = [
        _at(app, f"2001:db8:1:{number:x}::1").get("/login").status_code for number in range(2 * RATE + 1)
    ]
    assert statuses == [200] * (2 * RATE) + [429]
    assert _at(app, "2001:db8:2::1").get("/login").status_code == 200


@rated
def test_rate_refusals_are_counted_and_full_buckets_forgotten(app, client, clock):
    for _ in range(2 * RATE + 2):
        client.get("/login")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'idp_admission_refusals_total{reason="rate"} 2.0' in text
    admission = _admission(app)
    assert "127.0.0.1" in admission._buckets
    clock.now += 3600  # long refilled: the next page sweeps the table
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "198.51.100.5"
    assert other.get("/login").status_code == 200
    assert set(admission._buckets) == {"198.51.100.5"}
