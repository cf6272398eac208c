"""Discovery and the JWKS answered in front of Flask (idp/oauth/documents.py): the same answer as Flask's,
byte for byte and header for header (only X-Request-Id is new each time), counted in the metrics, with
the proxy's request id; every request whose answer could differ still reaches Flask."""

import re
import time

import pytest

from idp.extensions import db
from idp.observability import ENVIRON_KEY
from idp.runtime import of

from ..flows.test_health import sample
from ..flows.test_health import scrape
from ..helpers import settings_of
from .test_keys import restore_keys  # noqa: F401 - the fixture

PATHS = {
    "/.well-known/openid-configuration": "oauth.discovery",
    "/.well-known/oauth-authorization-server": "oauth.authorization_server_metadata_document",
    "/jwks.json": "oauth.jwks",
}


def _without_request_id(response) -> list[tuple[str, str]]:
    return [(name, value) for name, value in response.headers.items() if name != "X-Request-Id"]


def _flask_must_not_answer(app, monkeypatch, endpoint):
    monkeypatch.setitem(app.view_functions, endpoint, lambda: pytest.fail(f"Flask answered {endpoint}"))


@pytest.mark.parametrize("path", PATHS)
def test_the_next_answers_are_flasks_first_one_without_flask(app, client, monkeypatch, path):
    first = client.get(path)
    assert first.status_code == 200
    _flask_must_not_answer(app, monkeypatch, PATHS[path])
    again = client.get(path)
    assert again.status_code == 200
    assert again.get_data() == first.get_data()
    assert _without_request_id(again) == _without_request_id(first)
    ids = {first.headers["X-Request-Id"], again.headers["X-Request-Id"]}
    assert len(ids) == 2 and all(re.fullmatch(r"[0-9a-f]{16}", value) for value in ids)


def test_answers_without_flask_count_in_the_metrics(app, client, monkeypatch):
    client.get("/jwks.json")
    labels = {"endpoint": "oauth.jwks", "method": "GET", "status": "200"}
    before = sample(scrape(client), "idp_http_requests_total", **labels)
    _flask_must_not_answer(app, monkeypatch, "oauth.jwks")
    for _ in range(3):
        assert client.get("/jwks.json").status_code == 200
    assert sample(scrape(client), "idp_http_requests_total", **labels) == before + 3


@pytest.mark.config(server={"proxy_count": 1})
def test_behind_a_proxy_its_request_id_is_kept_and_reaches_the_access_log(app, client, monkeypatch):
    seen = []
    inner = app.wsgi_app

    def watch(environ, start_response):
        answer = inner(environ, start_response)
        seen.append(environ.get(ENVIRON_KEY))
        return answer

    monkeypatch.setattr(app, "wsgi_app", watch)
    client.get("/jwks.json")
    _flask_must_not_answer(app, monkeypatch, "oauth.jwks")
    response = client.get("/jwks.json", headers={"X-Request-Id": "nginx-1.2_3"})
    assert response.headers["X-Request-Id"] == "nginx-1.2_3" and seen[-1] == "nginx-1.2_3"
    response = client.get("/jwks.json", headers={"X-Request-Id": "no spaces allowed"})
    assert re.fullmatch(r"[0-9a-f]{16}", response.headers["X-Request-Id"]) and seen[-1] != "no spaces allowed"


def test_requests_whose_answer_differs_still_reach_flask(app, client, rp):
    etag = client.get("/jwks.json").headers["ETag"]
    client.get("/jwks.json")
    # CORS for a registered client's origin.
    cors = client.get("/jwks.json", headers={"Origin": "https://rp.example"})
    assert cors.headers["Access-Control-Allow-Origin"] == "https://rp.example"
    # Revalidation.
    assert client.get("/jwks.json", headers={"If-None-Match": etag}).status_code == 304
    # Other methods: HEAD without a body, the preflight, a refused POST.
    head = client.head("/jwks.json")
    assert head.status_code == 200 and head.get_data() == b"" and head.headers["ETag"] == etag
    preflight = client.options("/jwks.json", headers={"Origin": "https://rp.example"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://rp.example"
    assert client.post("/jwks.json").status_code == 405
    # An over-long query string is refused as on every path.
    assert client.get("/jwks.json?" + "x" * (8 * 1024 + 1)).status_code == 414


def test_a_new_key_set_is_served_and_learned_again(app, client, monkeypatch, restore_keys):  # noqa: F811
    before = client.get("/jwks.json")
    client.get("/jwks.json")
    with app.app_context():
        from idp.services import keys as key_service

        key_service.rotate_keys(db.session, settings_of(app), now=int(time.time()), immediate=True)
        db.session.commit()
    of(app).keys.forget()
    after = client.get("/jwks.json")
    assert after.headers["ETag"] != before.headers["ETag"] and after.get_data() != before.get_data()
    _flask_must_not_answer(app, monkeypatch, "oauth.jwks")
    again = client.get("/jwks.json")
    assert again.get_data() == after.get_data() and _without_request_id(again) == _without_request_id(after)
