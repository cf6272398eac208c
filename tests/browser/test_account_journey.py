"""«Мой профиль» in headless Chromium (issue 14): a person signed in on two devices (two browser contexts)
sees both on the page, signs out everywhere from one, and the other is signed out at the relying party
by back-channel logout; then they take back a site's access and its refresh token stops working.

The provider is the live server; the relying party is the demo cabinet of clients/ on its own port.
Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from ..helpers import query
from ..live import http_session
from .pages import REDIRECT_URI
from .pages import intercept_rp
from .pages import no_horizontal_scroll
from .pages import redeem
from .pages import screenshot
from .pages import sign_in
from .pages import start_authorization

pytestmark = pytest.mark.browser


def _sign_in_at_cabinet(page, cabinet, account) -> None:
    page.goto(cabinet.url + "/")
    page.get_by_role("link", name="Войти", exact=True).click()
    sign_in(page, account["login"], account["password"])
    page.wait_for_url(cabinet.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Мои данные")


def _wait(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_two_devices_sign_out_everywhere_then_take_back_access(
    live_server, account, make_rp, demo_rps, new_page
):
    cabinet = demo_rps.cabinet
    desktop = new_page(1280, 800, user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36")
    phone = new_page(
        360,
        740,
        user_agent="Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/130.0 Mobile Safari/537.36",
    )

    # 1. Signed in at the cabinet on both devices.
    _sign_in_at_cabinet(desktop, cabinet, account)
    _sign_in_at_cabinet(phone, cabinet, account)
    assert cabinet.sessions() == 2

    # 2. «Мой профиль» lists both, with the site of each; it fits a 360 px phone.
    desktop.goto(live_server.url + "/account")
    expect(desktop.get_by_role("heading", level=1)).to_have_text("Мой профиль")
    sessions = desktop.locator("li.session")
    expect(sessions).to_have_count(2)
    expect(sessions.nth(0)).to_contain_text("Chrome 130, Linux (это устройство)")
    expect(sessions.nth(1)).to_contain_text("Chrome 130, Android")
    for index in range(2):
        expect(sessions.nth(index)).to_contain_text("Личный кабинет")
        expect(sessions.nth(index)).to_contain_text("этот компьютер")
    screenshot(desktop, "account-1-two-devices.png")
    phone.goto(live_server.url + "/account")
    expect(phone.locator("li.session")).to_have_count(2)
    no_horizontal_scroll(phone, 360)
    screenshot(phone, "account-1-phone-360.png")

    # 3. «Выйти на всех устройствах» on the desktop: the phone's cabinet session is ended by the provider's
    # back-channel logout, before the phone does anything.
    desktop.get_by_role("button", name="Выйти на всех устройствах", exact=True).click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("Вы вышли из личного кабинета")
    assert _wait(lambda: cabinet.sessions() == 0), f"{cabinet.sessions()} cabinet session(s) left"
    phone.goto(cabinet.url + "/")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Добро пожаловать")
    expect(phone.get_by_role("link", name="Войти", exact=True)).to_be_visible()
    phone.goto(live_server.url + "/account")
    expect(phone).to_have_url(live_server.url + "/login")
    screenshot(phone, "account-2-phone-signed-out.png")

    # 4. On the phone: sign in at a site that asks for consent, allow it, the site gets a refresh token.
    shop = make_rp(name="Магазин", trusted=False)
    seen = intercept_rp(phone)
    state, verifier = start_authorization(phone, live_server, shop, scope="openid profile offline_access")
    sign_in(phone, account["login"], account["password"])
    expect(phone.get_by_role("heading", level=1)).to_have_text("Разрешить доступ к данным?")
    phone.get_by_role("button", name="Разрешить", exact=True).click()
    phone.wait_for_url(REDIRECT_URI + "?**")
    params = query(seen[-1])
    assert params["state"] == state
    tokens = redeem(live_server, shop, params["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    refresh_token = tokens.json()["refresh_token"]

    # 5. «Отозвать доступ» for that site on «Мой профиль».
    phone.goto(live_server.url + "/account")
    grant = phone.locator("li.grant", has_text="Магазин")
    expect(grant).to_contain_text("Фамилия, имя, отчество")
    no_horizontal_scroll(phone, 360)
    screenshot(phone, "account-3-sites-360.png")
    grant.get_by_role("button", name="Отозвать доступ", exact=True).click()
    expect(phone.get_by_role("status")).to_have_text(
        "Доступ отозван. Сайт попросит разрешение при следующем входе."
    )
    expect(phone.locator("li.grant", has_text="Магазин")).to_have_count(0)

    # 6. The site's refresh token no longer works.
    with http_session() as http:
        refused = http.post(
            live_server.url + "/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=(shop["client_id"], shop["client_secret"]),
            timeout=10,
        )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
    assert re.match(r"^https://rp\.example/cb\?", seen[-1])
