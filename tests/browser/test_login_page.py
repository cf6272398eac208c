"""The sign-in page in headless Chromium against the live server: the seed's texts, the journey back to
the relying party, a wrong password, the «не могу войти» link, and the phone-width layout.

Screenshots go to artifacts/screenshots/ for a human to look at."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..helpers import query
from .pages import LOGIN_LABEL
from .pages import PASSWORD_LABEL
from .pages import REDIRECT_URI
from .pages import WRONG_CREDENTIALS
from .pages import expect_sign_in_form
from .pages import intercept_rp
from .pages import no_horizontal_scroll
from .pages import redeem
from .pages import screenshot
from .pages import sign_in
from .pages import sign_in_address
from .pages import start_authorization

pytestmark = pytest.mark.browser

HEADING = "Вход в личный кабинет иностранного гражданина"
BUTTON = "войти"
HELP_LINK = "не могу войти"
NOTE = "При возникновении проблем, связанных с доступом к системе, обращайтесь в ГБУ «Миграционный центр»"


def _open_sign_in(page, live_server, rp) -> tuple[str, str]:
    """``start_authorization``, which lands on the sign-in page; return (state, verifier)."""
    state, verifier = start_authorization(page, live_server, rp)
    expect_sign_in_form(page)
    return state, verifier


def _expect_seed_texts(page) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(HEADING)
    # The seed's two fields, then «Запомнить меня на этом устройстве» (issue 10: shared counter computers).
    remember = "Запомнить меня на этом устройстве"
    expect(page.locator("label")).to_have_text([LOGIN_LABEL, PASSWORD_LABEL, remember])
    # The form's one button (the language switcher above it has one per language).
    expect(page.locator("main").get_by_role("button")).to_have_text([BUTTON])
    expect(page.get_by_role("link", name=HELP_LINK, exact=True)).to_be_visible()
    expect(page.get_by_text(NOTE, exact=True)).to_be_visible()
    password = page.get_by_label(PASSWORD_LABEL, exact=True)
    expect(password).to_have_attribute("type", "password")
    expect(password).to_have_attribute("autocomplete", "current-password")


def test_sign_in_returns_to_the_relying_party(live_server, account, rp, new_page):
    page = new_page(1280, 800)
    state, verifier = _open_sign_in(page, live_server, rp)
    _expect_seed_texts(page)
    screenshot(page, "login-1280.png")

    page.get_by_label(LOGIN_LABEL, exact=True).fill(account["login"])
    page.get_by_label(PASSWORD_LABEL, exact=True).fill(account["password"])
    # Playwright does not route redirects: the browser's request to the (absent) RP is watched rather
    # than waiting for Chromium's error page to retry it, which can take seconds on a busy machine.
    with page.expect_request(lambda request: request.url.startswith(REDIRECT_URI + "?")) as sent:
        page.get_by_role("button", name=BUTTON, exact=True).click(no_wait_after=True)

    params = query(sent.value.url)
    assert params["state"] == state and params["iss"] == live_server.url and params["code"]
    # The code the browser carried is a real one: the RP can redeem it.
    resp = redeem(live_server, rp, params["code"], verifier)
    assert resp.status_code == 200, resp.text
    assert resp.json()["id_token"]


def test_phone_width_wrong_password_and_help_link(live_server, account, rp, new_page):
    page = new_page(360, 740)
    seen = intercept_rp(page)
    _open_sign_in(page, live_server, rp)
    sign_in_url = sign_in_address(page)
    _expect_seed_texts(page)
    no_horizontal_scroll(page, 360)
    screenshot(page, "login-360.png")

    sign_in(page, account["login"], account["password"] + "-wrong")

    expect(page.get_by_role("alert")).to_have_text(WRONG_CREDENTIALS)
    assert page.url == sign_in_url and seen == []
    expect(page.get_by_role("heading", level=1)).to_have_text(HEADING)
    expect(page.get_by_label(PASSWORD_LABEL, exact=True)).to_have_value("")
    no_horizontal_scroll(page, 360)
    screenshot(page, "login-error-360.png")

    page.get_by_role("link", name=HELP_LINK, exact=True).click()
    # The pending authorization travels along, so a reset can end at the RP.
    expect(page).to_have_url(re.compile(re.escape(live_server.url + "/reset/?authz=") + r"[\w-]+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Сброс пароля к личному кабинету иностранного гражданина"
    )
    no_horizontal_scroll(page, 360)
