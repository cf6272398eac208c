"""The device authorization grant (RFC 8628): /device/authorize, the page /device («Введите код с
экрана») with sign-in and confirmation, and polling at /token with authlib's client over HTTP."""

from __future__ import annotations

import html
import re

import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.requests_client import OAuthError
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy import update

from idp.crypto import digest
from idp.extensions import db
from idp.models import DeviceCode
from idp.services.clients import DEVICE_CODE

from ..helpers import csrf_token
from ..live import http_session
from ._flow import jwks
from ._flow import refresh
from ._flow import userinfo
from ._flow import verify_id_token
from .test_registration import _initial_token
from .test_registration import _register

GRANT = DEVICE_CODE


def _tv(make_rp, **overrides):
    return make_rp(public=True, grant_types=[GRANT, "refresh_token"], redirect_uris=[], **overrides)


def _start(client, rp, scope="openid profile"):
    response = client.post("/device/authorize", data={"client_id": rp["client_id"], "scope": scope})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _poll(client, rp, device_code):
    return client.post(
        "/token", data={"grant_type": GRANT, "device_code": device_code, "client_id": rp["client_id"]}
    )


def _enter_code(browser, user_code):
    page = browser.client.get("/device")
    assert page.status_code == 200 and "Введите код с экрана" in page.get_data(as_text=True)
    token = csrf_token(page.get_data(as_text=True))
    return browser.client.post("/device", data={"csrf_token": token, "user_code": user_code})


def _decide(browser, button: str):
    page = browser.client.get("/device/confirm")
    assert page.status_code == 200, page.status_code
    token = csrf_token(page.get_data(as_text=True))
    return browser.client.post("/device/confirm", data={"csrf_token": token, button: "y"})


def _age_polls(app, seconds):
    with app.app_context():
        db.session.execute(update(DeviceCode).values(last_polled_at=DeviceCode.last_polled_at - seconds))
        db.session.commit()


def test_device_authorization_response(client, make_rp):
    tv = _tv(make_rp)
    data = _start(client, tv)
    assert set(data) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert data["verification_uri"] == "http://localhost/device"
    assert data["verification_uri_complete"].startswith("http://localhost/device?user_code=")
    assert len(data["user_code"]) == 9 and data["user_code"][4] == "-" and data["expires_in"] == 600
    assert data["interval"] == 5


def test_codes_are_hashed_at_rest(app, client, make_rp):
    data = _start(client, _tv(make_rp))
    with app.app_context():
        row = db.session.scalar(select(DeviceCode))
        assert row.device_code_hash == digest(data["device_code"])
        assert data["device_code"] not in (row.device_code_hash, row.user_code_hash)
        assert row.user_code_hash == digest(data["user_code"].replace("-", ""))


def test_client_must_be_registered_for_the_grant(client, make_rp):
    web = make_rp(public=True, grant_types=["authorization_code"])
    response = client.post("/device/authorize", data={"client_id": web["client_id"]})
    assert response.status_code in (400, 401) and response.get_json()["error"] == "unauthorized_client"


def test_whole_flow_with_sign_in_pending_slow_down_and_tokens(app, browser, account, make_rp):
    tv = _tv(make_rp)
    data = _start(browser.client, tv)
    # Nobody has answered yet: authorization_pending; polling again at once: slow_down.
    assert _poll(browser.client, tv, data["device_code"]).get_json()["error"] == "authorization_pending"
    assert _poll(browser.client, tv, data["device_code"]).get_json()["error"] == "slow_down"
    with app.app_context():
        assert db.session.scalar(select(DeviceCode.interval)) == 10
    # The person types the code (lower case, without the dash), signs in, and allows.
    response = _enter_code(browser, data["user_code"].replace("-", "").lower())
    assert response.status_code == 302 and response.headers["Location"].endswith("/device/confirm")
    page = browser.follow(response)
    assert page.request.path == "/login"
    page = browser.sign_in(account["login"], account["password"], page=page)
    assert page.request.path == "/device/confirm"
    assert "Кабинет" in page.get_data(as_text=True)
    done = _decide(browser, "allow")
    assert done.status_code == 200 and "Вход разрешён" in done.get_data(as_text=True)
    _age_polls(app, 30)
    tokens = _poll(browser.client, tv, data["device_code"])
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    tokens = tokens.get_json()
    claims = verify_id_token(browser.client, tokens["id_token"]).claims
    assert claims["sub"] == account["sub"] and claims["aud"] == tv["client_id"]
    assert userinfo(browser.client, tokens["access_token"]).get_json()["given_name"] == "Алишер"
    # Once only.
    _age_polls(app, 30)
    assert _poll(browser.client, tv, data["device_code"]).get_json()["error"] == "invalid_grant"


API = "https://api.rp.example/v1"
OTHER_API = "https://other.rp.example"


def test_resources_are_bound_to_the_device_code(app, browser, account, make_rp):
    """RFC 8707 §2 at the device authorization endpoint: checked as at /authorize, bound to the device
    code; the tokens' aud follows them, and a refresh may narrow to one of them only."""
    tv = _tv(make_rp, access_token_format="jwt", resources=[API, OTHER_API])
    form = {"client_id": tv["client_id"], "scope": "openid offline_access"}
    for resources in ([API, "https://third.rp.example"], [API + "#f"], ["relative"]):
        refused = browser.client.post("/device/authorize", data={**form, "resource": resources})
        assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_target", resources
    with app.app_context():
        assert db.session.scalar(select(DeviceCode)) is None
    started = browser.client.post("/device/authorize", data={**form, "resource": [API, OTHER_API]})
    assert started.status_code == 200, started.get_json()
    data = started.get_json()
    browser.sign_in(account["login"], account["password"])
    browser.follow(_enter_code(browser, data["user_code"]))
    _decide(browser, "allow")
    tokens = _poll(browser.client, tv, data["device_code"])
    assert tokens.status_code == 200, tokens.get_json()
    tokens = tokens.get_json()
    keys = KeySet.import_key_set(jwks(browser.client))
    assert jwt.decode(tokens["access_token"], keys).claims["aud"] == [API, OTHER_API]
    assert userinfo(browser.client, tokens["access_token"]).status_code == 200
    narrowed = refresh(browser.client, tv, tokens["refresh_token"], resource=OTHER_API)
    assert narrowed.status_code == 200, narrowed.get_json()
    assert jwt.decode(narrowed.get_json()["access_token"], keys).claims["aud"] == OTHER_API
    refused = refresh(browser.client, tv, narrowed.get_json()["refresh_token"], resource="https://x.example")
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_target"


def test_without_a_resource_the_audience_is_the_default(browser, account, make_rp):
    tv = _tv(make_rp, access_token_format="jwt", resources=[API])
    data = _start(browser.client, tv)
    browser.sign_in(account["login"], account["password"])
    browser.follow(_enter_code(browser, data["user_code"]))
    _decide(browser, "allow")
    tokens = _poll(browser.client, tv, data["device_code"]).get_json()
    claims = jwt.decode(tokens["access_token"], KeySet.import_key_set(jwks(browser.client))).claims
    assert claims["aud"] == "http://localhost"


def test_denied(app, browser, account, make_rp):
    tv = _tv(make_rp)
    data = _start(browser.client, tv)
    browser.sign_in(account["login"], account["password"])
    browser.follow(_enter_code(browser, data["user_code"]))
    done = _decide(browser, "deny")
    assert "Вход не разрешён" in done.get_data(as_text=True)
    assert _poll(browser.client, tv, data["device_code"]).get_json()["error"] == "access_denied"


def test_expired(app, browser, make_rp):
    tv = _tv(make_rp)
    data = _start(browser.client, tv)
    with app.app_context():
        db.session.execute(update(DeviceCode).values(expires_at=DeviceCode.created_at - 1))
        db.session.commit()
    assert _poll(browser.client, tv, data["device_code"]).get_json()["error"] == "expired_token"
    response = _enter_code(browser, data["user_code"])
    assert response.status_code == 400 and "Код не найден или устарел" in response.get_data(as_text=True)


def test_wrong_codes_are_refused_and_limited(app, browser, make_rp):
    _start(browser.client, _tv(make_rp))
    statuses = [_enter_code(browser, "BCDF-GHJK").status_code for _ in range(10)]
    assert statuses == [400] * 10
    # [device] rate_limit (10/minute): the eleventh guess from this address is refused.
    assert _enter_code(browser, "BCDF-GHJK").status_code == 429


def test_another_clients_device_code_is_refused(browser, make_rp):
    tv, other = _tv(make_rp), _tv(make_rp)
    data = _start(browser.client, tv)
    response = _poll(browser.client, other, data["device_code"])
    assert response.status_code in (400, 401) and response.get_json()["error"] == "unauthorized_client"


def test_discovery(client):
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["device_authorization_endpoint"] == "http://localhost/device/authorize"
    assert GRANT in metadata["grant_types_supported"]


def test_authlib_client_polls_over_http(live_server, account, make_rp):
    tv = _tv(make_rp)
    http = http_session()
    meta = http.get(live_server.url + "/.well-known/openid-configuration", timeout=10).json()
    form = {"client_id": tv["client_id"], "scope": "openid"}
    data = http.post(meta["device_authorization_endpoint"], data=form, timeout=10).json()
    device = OAuth2Session(client_id=tv["client_id"], token_endpoint_auth_method="none")
    device.trust_env = False
    with pytest.raises(OAuthError) as pending:
        device.fetch_token(meta["token_endpoint"], grant_type=GRANT, device_code=data["device_code"])
    assert pending.value.error == "authorization_pending"
    # The person, on a phone: the complete verification URI pre-fills the code; sign in; allow.
    phone = http_session()
    page = phone.get(data["verification_uri_complete"], timeout=10)
    assert data["user_code"] in page.text
    response = phone.post(
        live_server.url + "/device",
        data={"csrf_token": csrf_token(page.text), "user_code": data["user_code"]},
        allow_redirects=True,
        timeout=10,
    )
    login = response
    assert login.url.endswith("/login"), login.url
    response = phone.post(
        login.url,
        data={
            "csrf_token": csrf_token(login.text),
            "login": account["login"],
            "password": account["password"],
        },
        timeout=10,
    )
    assert response.url.endswith("/device/confirm"), response.url
    phone.post(response.url, data={"csrf_token": csrf_token(response.text), "allow": "y"}, timeout=10)
    with live_server.app.app_context():
        db.session.execute(update(DeviceCode).values(last_polled_at=0))
        db.session.commit()
    token = device.fetch_token(meta["token_endpoint"], grant_type=GRANT, device_code=data["device_code"])
    assert token["access_token"] and token["id_token"] and token["token_type"].lower() == "bearer"


# -- who is asking (issue 10): on the device page as on the consent page ---------------------------------


def _requester(page) -> dict:
    body = html.unescape(page.get_data(as_text=True))
    found = {key: re.search(rf'id="requester-{key}">([^<]*)<', body) for key in ("registration", "warning")}
    return {key: match.group(1) if match else None for key, match in found.items()}


def _confirm_page(browser, account, rp):
    data = _start(browser.client, rp, scope="openid")
    page = browser.follow(_enter_code(browser, data["user_code"]))
    page = browser.sign_in(account["login"], account["password"], page=page)
    assert page.request.path == "/device/confirm"
    return page


def test_the_device_page_says_an_admin_registered_the_client(browser, account, make_rp):
    page = _confirm_page(browser, account, _tv(make_rp))
    assert _requester(page) == {"registration": "администратором", "warning": None}


def test_the_device_page_warns_about_a_self_registered_client(app, browser, account):
    # Device-code phishing: anyone may register a client named like ours and send a person its code.
    body = {
        "client_name": "Личный кабинет мигранта",
        "grant_types": [GRANT],
        "response_types": [],
        "redirect_uris": [],
        "scope": "openid",
        "token_endpoint_auth_method": "none",
    }
    registered = _register(browser.client, _initial_token(app), body)
    assert registered.status_code == 201, registered.get_data(as_text=True)
    page = _confirm_page(browser, account, registered.get_json())
    assert "Личный кабинет мигранта" in page.get_data(as_text=True)
    assert _requester(page) == {
        "registration": "самостоятельно, администратор его не проверял",
        "warning": "Название сайт указал сам. Разрешайте, только если вход на этом устройстве "
        "начали вы сами.",
    }
