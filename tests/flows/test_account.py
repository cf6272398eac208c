"""«Мой профиль» (/account): the person's data, their sessions on every device, ending one or all of them
(tokens revoked, relying parties told), the sites given access and taking it back, the step-up password
for an old session, and the audit trail of each action."""

from __future__ import annotations

import html
import json
import re

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent
from idp.models import Consent
from idp.models import OutboxMessage
from idp.models import SsoSession
from idp.runtime import of
from idp.services import logout as delivery

from ..helpers import Browser
from ..helpers import csrf_token
from ..oauth._flow import age_sso_sessions
from ..oauth._flow import authorize
from ..oauth._flow import is_consent_page
from ..oauth._flow import redeem
from ..oauth._flow import refresh
from ..oauth._flow import sign_in_for_tokens
from ..oauth._flow import userinfo

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.6478.122 Mobile Safari/537.36"
)
SESSION_ID = re.compile(r'name="session_id" value="(\d+)"')


@pytest.fixture
def deliveries(monkeypatch):
    sent: list[str] = []
    monkeypatch.setattr(delivery, "post", lambda uri, token, *, client: sent.append(uri))
    return sent


def _browser(app, user_agent: str, address: str = "127.0.0.1") -> Browser:
    client = app.test_client()
    client.environ_base.update({"HTTP_USER_AGENT": user_agent, "REMOTE_ADDR": address})
    return Browser(client)


def _events(app, name: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).filter_by(event=name)))


def _notices(app) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(select(OutboxMessage).filter_by(kind="notice").order_by(OutboxMessage.id))
        return [json.loads(row.payload) for row in rows]


def _post(browser, path: str, data: dict, page_path: str = "/account"):
    page = browser.get(page_path)
    return browser.client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)), **data})


def _consent_for_tokens(browser, account, rp, scope: str) -> dict:
    """authorize → sign in → «Разрешить» → code → tokens, for a client that asks for consent."""
    done = authorize(browser, rp, account, scope=scope)
    page = done.response
    assert is_consent_page(page), (page.status_code, page.request.path)
    path = page.request.path + "?" + page.request.query_string.decode()
    done.response = browser.follow(browser.submit(path, {"allow": "Разрешить"}, page=page))
    response = redeem(browser.client, rp, done.code, done.verifier)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_the_page_needs_a_session(browser):
    assert browser.get("/account").headers["Location"] == "/login"


def test_the_page_shows_the_data_masked_and_every_device(app, make_account, make_rp):
    account = make_account(email="alisher.karimov@example.com")
    cabinet = make_rp(name="Личный кабинет")
    home = _browser(app, FIREFOX_LINUX, "95.31.18.119")
    phone = _browser(app, CHROME_ANDROID, "10.1.2.3")
    sign_in_for_tokens(home, account, cabinet)
    phone.sign_in(account["login"], account["password"])

    page = home.get("/account").get_data(as_text=True)
    assert "Мой профиль" in page and "Рахимов Алишер Бахтиёрович" in page and account["login"] in page
    assert "+7 (916) ***-**-67" in page and "a***@example.com" in page
    assert "+79161234567" not in page and "alisher.karimov" not in page
    # This device first, with its site; the other with its browser, system and place.
    devices = [d.strip() for d in re.findall(r"<div class=\"device\">([^<]*)", page)]
    assert devices[:2] == ["Firefox 128, Linux", "Chrome 126, Android"]
    assert "(это устройство)" in page and "сеть 95.31.18.*" in page and "локальная сеть" in page
    assert "Личный кабинет" in page
    assert len(SESSION_ID.findall(page)) == 2


def test_ending_another_device_signs_it_out_and_tells_its_sites(app, account, make_rp, deliveries):
    cabinet = make_rp(name="Личный кабинет", backchannel_logout_uri="https://rp.example/bc")
    home, phone = _browser(app, FIREFOX_LINUX), _browser(app, CHROME_ANDROID)
    home.sign_in(account["login"], account["password"])
    tokens, _ = sign_in_for_tokens(phone, account, cabinet)
    with app.app_context():
        other = db.session.scalar(select(SsoSession.id).where(SsoSession.user_agent == CHROME_ANDROID))

    done = _post(home, "/account/sessions/end", {"session_id": other})
    # No front-channel URI to load: straight back to the page, still signed in here.
    assert done.status_code == 302 and done.headers["Location"] == "/account"
    assert "Сеанс на другом устройстве завершён." in home.get("/account").get_data(as_text=True)
    assert phone.get("/account").headers["Location"] == "/login"
    assert userinfo(phone.client, tokens["access_token"]).status_code == 401
    of(app).background.deliver_due()
    assert deliveries == ["https://rp.example/bc"]
    (event,) = _events(app, "account.session_ended")
    assert (event.account_id, event.actor_type) == (account["id"], "account")
    assert event.details == {"browser": "Chrome 126", "system": "Android"}


def test_a_session_of_someone_else_cannot_be_ended(app, account, make_account):
    other = make_account(login="77-0000002")
    stranger = _browser(app, CHROME_ANDROID)
    stranger.sign_in(other["login"], other["password"])
    home = _browser(app, FIREFOX_LINUX)
    home.sign_in(account["login"], account["password"])
    with app.app_context():
        theirs = db.session.scalar(select(SsoSession.id).filter_by(account_id=other["id"]))
    _post(home, "/account/sessions/end", {"session_id": theirs})
    assert stranger.get("/account").status_code == 200
    assert _events(app, "account.session_ended") == []


def test_signing_out_everywhere_ends_all_revokes_offline_tokens_and_notifies(
    app, account, make_rp, deliveries
):
    cabinet = make_rp(
        name="Личный кабинет",
        backchannel_logout_uri="https://rp.example/bc",
        frontchannel_logout_uri="https://rp.example/fc",
    )
    home, phone = _browser(app, FIREFOX_LINUX), _browser(app, CHROME_ANDROID)
    offline, _ = sign_in_for_tokens(phone, account, cabinet, scope="openid offline_access")
    sign_in_for_tokens(home, account, cabinet)

    done = _post(home, "/account/sessions/end-all", {})
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and "Вы вышли из личного кабинета" in page
    # Front-channel: the page frames the site's logout URI for both sessions.
    frames = [html.unescape(src) for src in re.findall(r'<iframe src="([^"]+)"', page)]
    assert len(frames) == 2 and all(url.startswith("https://rp.example/fc?") for url in frames)
    for browser in (home, phone):
        assert browser.get("/account").headers["Location"] == "/login"
    refused = refresh(phone.client, cabinet, offline["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    of(app).background.deliver_due()
    assert deliveries == ["https://rp.example/bc"] * 2
    (event,) = _events(app, "account.signed_out_everywhere")
    assert event.details == {"sessions": 2}
    assert [(n["notice"], n["channel"]) for n in _notices(app)] == [("signed_out_everywhere", "sms")]


def test_taking_back_access_revokes_the_refresh_token_and_the_consent(app, browser, account, make_rp):
    shop = make_rp(name="Магазин", trusted=False)
    tokens = _consent_for_tokens(browser, account, shop, "openid profile offline_access")
    page = browser.get("/account").get_data(as_text=True)
    section = page[page.index("Сайты с доступом") :]
    assert "Магазин" in section and "Фамилия, имя, отчество" in section

    _post(browser, "/account/sites/revoke", {"client_id": shop["client_id"]})
    refused = refresh(browser.client, shop, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert userinfo(browser.client, tokens["access_token"]).status_code == 401
    with app.app_context():
        assert db.session.scalar(select(Consent).filter_by(client_id=shop["client_id"])) is None
    assert "Магазин" not in browser.get("/account").get_data(as_text=True).split("Сайты с доступом")[1]
    (event,) = _events(app, "consent.revoked")
    assert (event.client_id, event.account_id) == (shop["client_id"], account["id"])
    # The next sign-in there asks again.
    assert is_consent_page(authorize(browser, shop, account, scope="openid profile").response)


def test_an_old_session_types_the_password_again_before_acting(app, browser, account, make_rp):
    shop = make_rp(name="Магазин", trusted=False)
    tokens = _consent_for_tokens(browser, account, shop, "openid offline_access")
    age_sso_sessions(app, 3600)
    page = browser.get("/account").get_data(as_text=True)
    assert "нужно будет ещё раз ввести пароль" in page

    asked = _post(browser, "/account/sites/revoke", {"client_id": shop["client_id"]})
    assert asked.status_code == 302 and asked.headers["Location"] == "/account/confirm"
    wrong = browser.submit("/account/confirm", {"password": "не тот пароль"})
    assert wrong.status_code == 200 and "Неверный пароль." in wrong.get_data(as_text=True)
    # Nothing was done: the site's refresh token still works.
    still = refresh(browser.client, shop, tokens["refresh_token"])
    assert still.status_code == 200 and _events(app, "consent.revoked") == []

    done = browser.submit("/account/confirm", {"password": account["password"]})
    assert done.status_code == 302 and done.headers["Location"] == "/account"
    assert len(_events(app, "consent.revoked")) == 1
    refused = refresh(browser.client, shop, still.get_json()["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    # Freshly proved: no password asked for the next action.
    assert "нужно будет ещё раз ввести пароль" not in browser.get("/account").get_data(as_text=True)


def test_actions_need_the_csrf_token(app, browser, account):
    browser.sign_in(account["login"], account["password"])
    refused = browser.client.post("/account/sessions/end-all", data={})
    assert refused.status_code in (302, 400)
    assert browser.get("/account").status_code == 200
    assert _events(app, "account.signed_out_everywhere") == []
