"""The migrant pages in each of the five languages on a 360 px phone, chosen once by the relying party's
``ui_locales`` and once by the switcher, with screenshots in artifacts/screenshots/lang-<xx>-*.png."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from idp.languages import NAMES

from ..helpers import pkce_pair
from .pages import REDIRECT_URI
from .pages import no_horizontal_scroll
from .pages import screenshot

pytestmark = pytest.mark.browser

HEADINGS = {
    "ru": "Вход в личный кабинет иностранного гражданина",
    "uz": "Xorijiy fuqaroning shaxsiy kabinetiga kirish",
    "en": "Sign in to the personal account of a foreign citizen",
}


@pytest.mark.parametrize("language", ["uz", "tg", "ky", "ru", "en"])
def test_sign_in_reset_and_recovery_pages_in_each_language(live_server, new_page, rp, make_account, language):
    account = make_account(login="77-0000099", temporary=True)
    # (1) Chosen by the relying party (ui_locales on /authorize); the first sign-in, temporary password.
    page = new_page(360, 740)
    _verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": rp["client_id"],
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile",
        "state": "st",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "ui_locales": f"{language}-XX ru",
    }
    page.goto(live_server.url + "/authorize?" + urlencode(query))
    expect(page.locator("html")).to_have_attribute("lang", language)
    if language in HEADINGS:
        expect(page.get_by_role("heading", level=1)).to_have_text(HEADINGS[language])
    no_horizontal_scroll(page, 360)
    screenshot(page, f"lang-{language}-login-360.png")
    page.locator("#login").fill(account["login"])
    page.locator("#password").fill(account["password"])
    page.locator("main button[type=submit]").click()
    expect(page).to_have_url(live_server.url + "/password/change?authz=" + page.url.split("authz=")[1])
    expect(page.locator("html")).to_have_attribute("lang", language)
    no_horizontal_scroll(page, 360)
    screenshot(page, f"lang-{language}-first-sign-in-360.png")

    # (2) Chosen with the switcher, in a browser that prefers Russian: the reset and recovery pages.
    page = new_page(360, 740)
    page.goto(live_server.url + "/reset/")
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    page.get_by_role("button", name=NAMES[language], exact=True).click()
    expect(page).to_have_url(live_server.url + "/reset/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    chosen = page.get_by_role("button", name=NAMES[language], exact=True)
    expect(chosen).to_have_attribute("aria-current", "true")
    no_horizontal_scroll(page, 360)
    screenshot(page, f"lang-{language}-reset-360.png")
    page.goto(live_server.url + "/recovery/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    no_horizontal_scroll(page, 360)
    screenshot(page, f"lang-{language}-recovery-360.png")
