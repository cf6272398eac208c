"""The sign-in page in headless Chromium against the live server: the seed's texts, the journey back to
the relying party, a wrong password, the «не могу войти» link, and the phone-width layout.

Screenshots go to artifacts/screenshots/ for a human to look at."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from ..helpers import pkce_pair
from ..helpers import query
from ..live import http_session

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
REDIRECT_URI = "https://rp.example/cb"

HEADING = "Вход в личный кабинет иностранного гражданина"
LOGIN_LABEL = "Логин (№ заявления на патент)"
PASSWORD_LABEL = "Пароль"
BUTTON = "войти"
HELP_LINK = "не могу войти"
NOTE = "При возникновении проблем, связанных с доступом к системе, обращайтесь в ГБУ «Миграционный центр»"
WRONG_CREDENTIALS = "Неверный логин или пароль."


def _screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def _open_sign_in(page, live_server, rp) -> tuple[str, str]:
    """Start an authorization request as the RP would (PKCE S256); return (state, verifier)."""
    verifier, challenge = pkce_pair()
    state = "st-" + verifier[:8]
    page.goto(live_server.url + "/authorize?" + urlencode({
        "response_type": "code", "client_id": rp["client_id"], "redirect_uri": REDIRECT_URI,
        "scope": "openid profile", "state": state, "nonce": "n-" + verifier[-8:],
        "code_challenge": challenge, "code_challenge_method": "S256",
    }))
    expect(page).to_have_url(re.compile(re.escape(live_server.url) + r"/login\?authz=\w+"))
    return state, verifier


def _intercept_rp(page) -> list[str]:
    """The RP is not running: answer its redirect URI with a small page and remember what was asked."""
    seen = []

    def fulfil(route):
        seen.append(route.request.url)
        route.fulfill(status=200, content_type="text/html; charset=utf-8",
                      body="<!doctype html><title>RP</title><p>relying party</p>")

    page.route("https://rp.example/**", fulfil)
    return seen


def _no_horizontal_scroll(page, width: int) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page is {scroll_width}px wide in a {width}px viewport"


def _expect_seed_texts(page) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(HEADING)
    expect(page.locator("label")).to_have_text([LOGIN_LABEL, PASSWORD_LABEL])
    expect(page.get_by_role("button")).to_have_text([BUTTON])
    expect(page.get_by_role("link", name=HELP_LINK, exact=True)).to_be_visible()
    expect(page.get_by_text(NOTE, exact=True)).to_be_visible()
    password = page.get_by_label(PASSWORD_LABEL, exact=True)
    expect(password).to_have_attribute("type", "password")
    expect(password).to_have_attribute("autocomplete", "current-password")


def test_sign_in_returns_to_the_relying_party(live_server, account, rp, new_page):
    page = new_page(1280, 800)
    state, verifier = _open_sign_in(page, live_server, rp)
    _expect_seed_texts(page)
    _screenshot(page, "login-1280.png")

    page.get_by_label(LOGIN_LABEL, exact=True).fill(account["login"])
    page.get_by_label(PASSWORD_LABEL, exact=True).fill(account["password"])
    # Playwright does not route redirects: the browser's request to the (absent) RP is watched rather
    # than waiting for Chromium's error page to retry it, which can take seconds on a busy machine.
    with page.expect_request(lambda request: request.url.startswith(REDIRECT_URI + "?")) as sent:
        page.get_by_role("button", name=BUTTON, exact=True).click(no_wait_after=True)

    params = query(sent.value.url)
    assert params["state"] == state and params["iss"] == live_server.url and params["code"]
    # The code the browser carried is a real one: the RP can redeem it.
    with http_session() as http:
        resp = http.post(live_server.url + "/token", data={
            "grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }, auth=(rp["client_id"], rp["client_secret"]), timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["id_token"]


def test_phone_width_wrong_password_and_help_link(live_server, account, rp, new_page):
    page = new_page(360, 740)
    seen = _intercept_rp(page)
    _open_sign_in(page, live_server, rp)
    sign_in_url = page.url
    _expect_seed_texts(page)
    _no_horizontal_scroll(page, 360)
    _screenshot(page, "login-360.png")

    page.get_by_label(LOGIN_LABEL, exact=True).fill(account["login"])
    page.get_by_label(PASSWORD_LABEL, exact=True).fill(account["password"] + "-wrong")
    page.get_by_role("button", name=BUTTON, exact=True).click()

    expect(page.get_by_role("alert")).to_have_text(WRONG_CREDENTIALS)
    assert page.url == sign_in_url and seen == []
    expect(page.get_by_role("heading", level=1)).to_have_text(HEADING)
    expect(page.get_by_label(PASSWORD_LABEL, exact=True)).to_have_value("")
    _no_horizontal_scroll(page, 360)
    _screenshot(page, "login-error-360.png")

    page.get_by_role("link", name=HELP_LINK, exact=True).click()
    # The pending authorization travels along, so a reset can end at the RP.
    expect(page).to_have_url(re.compile(re.escape(live_server.url + "/reset/?authz=") + r"[\w-]+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Сброс пароля к личному кабинету иностранного гражданина")
    _no_horizontal_scroll(page, 360)
