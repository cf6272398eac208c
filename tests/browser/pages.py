"""What the browser journeys share: the provider's sign-in labels, the relying party's side of an
authorization, screenshots for a human to look at, and checks that hold on any page."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode
from urllib.parse import urljoin

from playwright.sync_api import expect

from ..helpers import pkce_pair
from ..live import http_session

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
REDIRECT_URI = "https://rp.example/cb"

LOGIN_LABEL = "Логин (№ заявления на патент)"
PASSWORD_LABEL = "Пароль"
CAPTCHA_LABEL = "Код на изображении"
WRONG_CREDENTIALS = "Неверный логин или пароль."


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def no_horizontal_scroll(page, width: int) -> None:
    # A page reached by a click may already hold its rows while its stylesheet is still on the way; the
    # width of the unstyled page says nothing about the page a person sees.
    page.wait_for_load_state("load")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page is {scroll_width}px wide in a {width}px viewport"


def wait_for_captcha(page) -> None:
    page.wait_for_function(
        "() => { const i = document.getElementById('captcha-image'); "
        "return i.complete && i.naturalWidth === 200; }"
    )


def _sign_in_form(page):
    return page.locator("main form", has=page.locator("input[name=password]"))


def expect_sign_in_form(page) -> None:
    """The provider's sign-in form is on ``page`` (/authorize answers it itself) and posts to /login
    with the parked authorization request."""
    expect(_sign_in_form(page)).to_have_attribute("action", re.compile(r"^/login\?authz=[\w-]+$"))


def sign_in_address(page) -> str:
    """Where the sign-in form on ``page`` posts, /login?authz=…: the sign-in page's own address once
    the form has been sent (a wrong password shows it there) and where a reset or recovery returns."""
    return urljoin(page.url, _sign_in_form(page).get_attribute("action"))


def sign_in(page, login: str, password: str) -> None:
    """Fill the provider's sign-in form on ``page`` and send it."""
    page.get_by_label(LOGIN_LABEL, exact=True).fill(login)
    page.get_by_label(PASSWORD_LABEL, exact=True).fill(password)
    page.get_by_role("button", name="войти", exact=True).click()


def start_authorization(
    page, live_server, rp, scope: str = "openid profile", ui_locales: str | None = None
) -> tuple[str, str]:
    """Send the browser to /authorize as the RP would (PKCE S256, ``ui_locales`` if given); return (state,
    verifier)."""
    verifier, challenge = pkce_pair()
    state = "st-" + verifier[:8]
    params = {
        "response_type": "code",
        "client_id": rp["client_id"],
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": state,
        "nonce": "n-" + verifier[-8:],
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if ui_locales:
        params["ui_locales"] = ui_locales
    page.goto(live_server.url + "/authorize?" + urlencode(params))
    return state, verifier


def intercept_rp(page) -> list[str]:
    """The RP is not running: answer its redirect URI with a small page and remember what was asked."""
    seen = []

    def fulfil(route):
        seen.append(route.request.url)
        route.fulfill(
            status=200,
            content_type="text/html; charset=utf-8",
            body="<!doctype html><title>RP</title><p>relying party</p>",
        )

    page.route("https://rp.example/**", fulfil)
    return seen


def redeem(live_server, rp, code: str, verifier: str):
    """The RP's token request for the code the browser carried back; the response, unchecked."""
    with http_session() as http:
        return http.post(
            live_server.url + "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            auth=(rp["client_id"], rp["client_secret"]),
            timeout=10,
        )
