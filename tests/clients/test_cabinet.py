"""The demo cabinet (clients/cabinet) against the live provider: what it shows, the checks of its sign-in,
quiet token refresh with rotation, signing in again when the provider revokes the tokens, RP-initiated
logout, and logouts elsewhere reaching it over the back-channel."""

from __future__ import annotations

import re
import time

import pytest

from clients import oidc
from clients.cabinet import mask_phone

from ..helpers import csrf_token
from ..helpers import query
from ..live import http_session
from ..relying_parties import sign_in_at

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _only_session(running) -> oidc.LocalSession:
    (local,) = running.rp.store._sessions.values()
    return local


def _wait_until_signed_out(running, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while running.sessions() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.sessions() == 0, "no back-channel logout reached the relying party"


def test_signed_in_cabinet_shows_name_patent_number_and_masked_phone(live_server, account, demo_rps):
    browser = http_session()
    assert "Войти" in browser.get(demo_rps.cabinet.url + "/", timeout=10).text
    page = sign_in_at(demo_rps.cabinet, browser, live_server.url, account)
    assert page.status_code == 200 and page.url == demo_rps.cabinet.url + "/"
    assert "Рахимов Алишер Бахтиёрович" in page.text
    assert f"<dd>{account['login']}</dd>" in page.text
    assert "+7 (916) ***-**-67" in page.text and "1234567" not in page.text
    local = _only_session(demo_rps.cabinet)
    # Tokens stay on the server: the cookie holds a session id only.
    assert local.token["refresh_token"] not in str(browser.cookies.get_dict())
    assert local.sid and local.token["scope"] == "openid profile phone patent offline_access"
    browser.close()


@pytest.mark.parametrize("iss", [None, "https://evil.example", "http://127.0.0.1:1"])
def test_an_authorization_response_from_another_issuer_is_refused(live_server, demo_rps, iss):
    # RFC 9207 §2.4: the iss of the response must be the provider's.
    browser = http_session()
    start = browser.get(demo_rps.cabinet.url + "/login", allow_redirects=False, timeout=10)
    state = query(start.headers["Location"])["state"]
    params = {"code": "x", "state": state, **({"iss": iss} if iss else {})}
    callback = demo_rps.cabinet.url + "/callback"
    response = browser.get(callback, params=params, allow_redirects=False, timeout=10)
    assert response.status_code == 400 and demo_rps.cabinet.sessions() == 0
    browser.close()


def test_an_error_response_is_shown_not_signed_in(live_server, demo_rps):
    browser = http_session()
    start = browser.get(demo_rps.cabinet.url + "/login", allow_redirects=False, timeout=10)
    state = query(start.headers["Location"])["state"]
    page = browser.get(
        demo_rps.cabinet.url + "/callback",
        params={
            "error": "access_denied",
            "state": state,
            "iss": live_server.url,
        },
        timeout=10,
    )
    assert "Войти не удалось (access_denied)." in page.text and demo_rps.cabinet.sessions() == 0
    browser.close()


def test_access_token_is_refreshed_before_it_expires_and_rotation_kept(live_server, account, demo_rps):
    browser = http_session()
    sign_in_at(demo_rps.cabinet, browser, live_server.url, account)
    local = _only_session(demo_rps.cabinet)
    first = dict(local.token)
    # Less than REFRESH_LEEWAY left: the next page view refreshes first.
    local.token["expires_at"] = int(time.time()) + oidc.REFRESH_LEEWAY // 2
    page = browser.get(demo_rps.cabinet.url + "/", timeout=10)
    assert page.status_code == 200 and "+7 (916) ***-**-67" in page.text
    assert local.token["refresh_token"] != first["refresh_token"]
    assert local.token["access_token"] != first["access_token"]
    assert local.token["expires_at"] > time.time() + oidc.REFRESH_LEEWAY
    # Far from expiry, nothing is refreshed: the rotated token is the one in use.
    rotated = dict(local.token)
    assert browser.get(demo_rps.cabinet.url + "/", timeout=10).status_code == 200
    assert local.token == rotated
    browser.close()


def test_a_revoked_refresh_token_means_signing_in_again(live_server, account, demo_rps):
    browser = http_session()
    sign_in_at(demo_rps.cabinet, browser, live_server.url, account)
    local = _only_session(demo_rps.cabinet)
    registration = demo_rps.cabinet.registration
    with http_session() as http:
        revoked = http.post(
            live_server.url + "/revoke",
            data={"token": local.token["refresh_token"]},
            auth=(registration["client_id"], registration["client_secret"]),
            timeout=10,
        )
    assert revoked.status_code == 200
    local.token["expires_at"] = int(time.time()) - 1
    response = browser.get(demo_rps.cabinet.url + "/", allow_redirects=False, timeout=10)
    # invalid_grant at the token endpoint: the local session is dropped and the person signs in again —
    # silently here, as the provider's session is still alive.
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert demo_rps.cabinet.sessions() == 0
    page = sign_in_at(demo_rps.cabinet, browser, live_server.url)
    assert "+7 (916) ***-**-67" in page.text and _only_session(demo_rps.cabinet).sub == account["sub"]
    browser.close()


def test_sign_out_at_the_cabinet_ends_the_provider_session(live_server, account, demo_rps):
    browser = http_session()
    page = sign_in_at(demo_rps.cabinet, browser, live_server.url, account)
    local = _only_session(demo_rps.cabinet)
    # Without the form's token nothing happens.
    logout = demo_rps.cabinet.url + "/logout"
    assert browser.post(logout, data={"csrf": "forged"}, timeout=10).status_code == 400
    assert demo_rps.cabinet.sessions() == 1
    form = {"csrf": _CSRF.search(page.text).group(1)}
    response = browser.post(logout, data=form, allow_redirects=False, timeout=10)
    # RP-Initiated Logout §2: to the end_session_endpoint with the hint, the registered URI and a state.
    location = response.headers["Location"]
    assert location.startswith(live_server.url + "/logout?")
    params = query(location)
    assert params["id_token_hint"] == local.token["id_token"] and params["state"]
    assert params["post_logout_redirect_uri"] == demo_rps.cabinet.url + "/logged-out"
    assert demo_rps.cabinet.sessions() == 0
    done = browser.get(location, timeout=10)
    assert done.url == demo_rps.cabinet.url + "/" and "Вы вышли." in done.text and "Войти" in done.text
    provider = browser.get(live_server.url + "/", allow_redirects=False, timeout=10)
    assert provider.headers["Location"] == "/login"
    browser.close()


def test_sign_out_at_the_provider_reaches_the_cabinet(live_server, account, demo_rps):
    browser = http_session()
    sign_in_at(demo_rps.cabinet, browser, live_server.url, account)
    landing = browser.get(live_server.url + "/", timeout=10)
    assert "Личный кабинет" in landing.text
    # The provider's own «Выйти»: the cabinet is told over the back-channel.
    form = {"csrf_token": csrf_token(landing.text)}
    signed_out = browser.post(live_server.url + "/logout/confirm", data=form, timeout=10)
    assert "Вы вышли из личного кабинета" in signed_out.text
    _wait_until_signed_out(demo_rps.cabinet)
    assert "Войти" in browser.get(demo_rps.cabinet.url + "/", timeout=10).text
    browser.close()


@pytest.mark.parametrize(
    "phone, masked",
    [
        ("+79161234567", "+7 (916) ***-**-67"),
        ("+998901234567", "+99********67"),
        ("+123", "****"),
        ("", ""),
    ],
)
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    "registration, message",
    [
        (None, "no registration"),
        ("/nonexistent/cabinet.json", "cannot read"),
        ({"issuer": "http://127.0.0.1:5000", "client_id": "x", "scope": "openid"}, "lacks redirect_uris"),
        (
            {
                "issuer": "http://127.0.0.1:5000",
                "client_id": "x",
                "scope": "openid",
                "redirect_uris": ["http://127.0.0.1:5001/cb"],
                "post_logout_redirect_uris": ["http://127.0.0.1:5001/logged-out"],
            },
            "no redirect_uris ending in /callback",
        ),
    ],
)
def test_a_bad_registration_stops_start_up(registration, message):
    from clients import cabinet

    with pytest.raises(oidc.RegistrationError, match=message):
        cabinet.create_app({"REGISTRATION": registration})
