"""Single sign-on and single logout in headless Chromium, across three apps on three loopback ports: the
provider (live server), the demo cabinet and the demo portal (clients/, registered against it).

1. sign in at the cabinet, typing the password;
2. open the portal: in without a password;
3. sign out at the portal: the cabinet, told over the back-channel, shows itself signed out;
4. sign in again: the password is asked.

Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from .pages import PASSWORD_LABEL
from .pages import expect_sign_in_form
from .pages import screenshot
from .pages import sign_in

pytestmark = pytest.mark.browser


def test_single_sign_on_and_single_logout(live_server, account, demo_rps, new_page):
    cabinet, portal = demo_rps.cabinet, demo_rps.portal
    page = new_page(1280, 800)
    sign_in_pages = []
    # A sign-in page is /authorize answering with its form (a 200), not a redirect back to the site.
    page.on(
        "response",
        lambda response: (
            response.request.is_navigation_request()
            and response.request.method == "GET"
            and response.url.startswith(live_server.url + "/authorize?")
            and response.status == 200
            and sign_in_pages.append(response.url)
        ),
    )

    # 1. The cabinet: «Войти», the provider's form, back in the cabinet with the person's data.
    page.goto(cabinet.url + "/")
    page.get_by_role("link", name="Войти", exact=True).click()
    expect_sign_in_form(page)
    sign_in(page, account["login"], account["password"])
    page.wait_for_url(cabinet.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Мои данные")
    expect(page.get_by_text("Рахимов Алишер Бахтиёрович", exact=True)).to_be_visible()
    expect(page.get_by_text(account["login"], exact=True)).to_be_visible()
    expect(page.get_by_text("+7 (916) ***-**-67", exact=True)).to_be_visible()
    assert len(sign_in_pages) == 1
    (cabinet_session,) = cabinet.rp.store._sessions.values()
    screenshot(page, "sso-1-cabinet.png")

    # 2. The portal: «Войти» comes straight back, no sign-in page on the way.
    page.goto(portal.url + "/")
    page.get_by_role("link", name="Войти", exact=True).click()
    page.wait_for_url(portal.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Здравствуйте, Рахимов Алишер Бахтиёрович!")
    assert len(sign_in_pages) == 1, sign_in_pages
    screenshot(page, "sso-2-portal.png")
    # The provider's own page lists both sites of this session.
    page.goto(live_server.url + "/")
    expect(page.locator("ul.portals li")).to_have_text(["Личный кабинет", "Портал услуг"])
    screenshot(page, "sso-2-provider.png")
    page.goto(portal.url + "/")

    # 3. «Выйти» at the portal: RP-initiated logout, back to the portal signed out...
    page.get_by_role("button", name="Выйти", exact=True).click()
    page.wait_for_url(portal.url + "/")
    expect(page.get_by_role("status")).to_have_text("Вы вышли.")
    # ...and the provider tells the cabinet over the back-channel, before the browser goes there.
    deadline = time.monotonic() + 5
    while cabinet.sessions() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cabinet.sessions() == 0 and cabinet.rp.store.is_ended(cabinet_session.sid)
    page.goto(cabinet.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Добро пожаловать")
    expect(page.get_by_role("link", name="Войти", exact=True)).to_be_visible()
    screenshot(page, "sso-3-cabinet-signed-out.png")

    # 4. Signing in again asks for the password.
    page.get_by_role("link", name="Войти", exact=True).click()
    expect_sign_in_form(page)
    expect(page.get_by_label(PASSWORD_LABEL, exact=True)).to_be_visible()
    assert len(sign_in_pages) == 2
    screenshot(page, "sso-4-password-asked.png")
