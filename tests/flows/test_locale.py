"""The page's language (views/locale.py): ``ui_locales`` of the flow (OIDC Core §3.1.2.1), then the
switcher's choice (a cookie, saved on the account once signed in), then Accept-Language, then Russian."""

from __future__ import annotations

import html
import re

import pytest

from idp.extensions import db
from idp.models import Account

from ..helpers import authz_of
from ..helpers import csrf_token
from ..helpers import is_sign_in_page
from ..helpers import pkce_pair

HEADINGS = {
    "ru": "Вход в личный кабинет иностранного гражданина",
    "en": "Sign in to the personal account of a foreign citizen",
    "uz": "Xorijiy fuqaroning shaxsiy kabinetiga kirish",
}
# Uzbek with oʻ as U+02BB, the letter the Uzbek catalogue uses (tests/unit/test_catalogues.py).
SELF_NAMES = ["Oʻzbekcha", "Тоҷикӣ", "Кыргызча", "Русский", "English"]
LANG = re.compile(r'<html lang="([a-z]+)">')


def _lang(response) -> str:
    return LANG.search(response.get_data(as_text=True)).group(1)


def _authorize(browser, rp, **extra):
    _verifier, challenge = pkce_pair()
    return browser.authorize(
        response_type="code",
        client_id=rp["client_id"],
        redirect_uri="https://rp.example/cb",
        scope="openid profile",
        state="s",
        code_challenge=challenge,
        code_challenge_method="S256",
        **extra,
    )


def _choose(client, language: str, next_path: str = "/login"):
    page = client.get("/login").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "lang": language, "next": next_path}
    return client.post("/language", data=data)


def test_the_switcher_names_every_language_in_its_own_script(client):
    page = html.unescape(client.get("/login").get_data(as_text=True))
    positions = [page.index(f">{name}</button>") for name in SELF_NAMES]
    assert positions == sorted(positions)
    assert 'lang="tg"' in page and 'aria-current="true">Русский' in page


def test_discovery_advertises_the_five_languages(client):
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert sorted(metadata["ui_locales_supported"]) == ["en", "ky", "ru", "tg", "uz"]


@pytest.mark.parametrize("ui_locales, expected", [("uz", "uz"), ("de uz-Latn-UZ en", "uz"), ("tg", "tg")])
def test_ui_locales_wins_over_accept_language(browser, rp, ui_locales, expected):
    page = _authorize(browser, rp, ui_locales=ui_locales)
    assert is_sign_in_page(page)
    assert _lang(page) == expected
    # …for the pages of that flow: the help page opened from it too.
    help_page = browser.get("/reset/?authz=" + authz_of(page), headers={"Accept-Language": "en"})
    assert _lang(help_page) == expected


def test_an_unknown_ui_locales_falls_back_to_accept_language(browser, rp):
    browser.client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = _authorize(browser, rp, ui_locales="de fr")
    assert _lang(page) == "en"
    assert HEADINGS["en"] in page.get_data(as_text=True)


def test_ui_locales_holds_only_for_its_flow(browser, rp):
    page = _authorize(browser, rp, ui_locales="uz")
    assert _lang(page) == "uz"
    assert _lang(browser.get("/login")) == "ru"


def test_the_switcher_beats_accept_language_and_is_remembered(client):
    response = _choose(client, "ky", "/reset/?x=1")
    assert response.status_code == 303 and response.headers["Location"] == "/reset/?x=1"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("idp_lang=ky:") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert _lang(client.get("/login", headers={"Accept-Language": "en"})) == "ky"


def test_a_choice_before_the_flow_yields_to_ui_locales_one_during_it_wins(browser, rp, clock):
    _choose(browser.client, "en")
    clock.now += 5
    page = _authorize(browser, rp, ui_locales="tg")
    assert _lang(page) == "tg"
    clock.now += 5
    _choose(browser.client, "uz")
    assert _lang(browser.get(page.request.full_path)) == "uz"


def test_a_choice_in_the_second_the_flow_began_wins(browser, rp, clock):
    page = _authorize(browser, rp, ui_locales="tg")
    assert _lang(page) == "tg"
    _choose(browser.client, "uz")
    assert _lang(browser.get(page.request.full_path)) == "uz"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "x"])
def test_the_switcher_goes_back_only_to_this_site(client, target):
    response = _choose(client, "en", target)
    assert response.headers["Location"] == "/login"


def test_an_unknown_language_is_ignored(client):
    response = _choose(client, "de")
    assert "Set-Cookie" not in response.headers or "idp_lang" not in response.headers["Set-Cookie"]


def test_the_switcher_needs_the_csrf_token(client):
    assert client.post("/language", data={"lang": "en", "next": "/login"}).status_code in (400, 403)


def test_a_choice_is_saved_on_the_account_at_and_after_sign_in(app, browser, make_account):
    account = make_account(locale="ru")
    _choose(browser.client, "tg")
    browser.sign_in(account["login"], account["password"])
    with app.app_context():
        assert db.session.get(Account, account["id"]).locale == "tg"
    _choose(browser.client, "ky", "/")
    with app.app_context():
        assert db.session.get(Account, account["id"]).locale == "ky"


def test_the_accounts_language_comes_with_sign_in(browser, make_account):
    account = make_account(locale="uz")
    page = browser.sign_in(account["login"], account["password"])
    assert page.request.path == "/"
    assert _lang(page) == "uz"
    assert _lang(browser.get("/login", headers={"Accept-Language": "en"})) == "uz"
