"""What every migrant page has: a title that says where you are, the favicon, the language switcher; and
the error page of an authorization request that cannot go back, in the page's language only."""

from __future__ import annotations

import html
import re

import pytest

from ..helpers import pkce_pair

TITLE = re.compile(r"<title>(.*?)</title>", re.S)
PAGES = ["/login", "/reset/", "/reset/sent", "/recovery/", "/recovery/sent", "/logout"]


def _title(response) -> str:
    return html.unescape(TITLE.search(response.get_data(as_text=True)).group(1))


def test_every_page_has_a_title_of_its_own(client):
    titles = {}
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        titles[path] = _title(response)
        assert titles[path].endswith(" — Личный кабинет иностранного гражданина"), titles[path]
    assert len(set(titles.values())) == len(PAGES), titles


def test_the_favicon_is_linked_and_served(client):
    page = client.get("/login").get_data(as_text=True)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    icon.close()


@pytest.mark.parametrize(
    "client_id, code, english",
    [("no-such-client", "invalid_client", "Invalid client_id"), (None, "invalid_request", "redirect")],
)
def test_an_authorization_error_page_speaks_the_pages_language_only(browser, rp, client_id, code, english):
    _verifier, challenge = pkce_pair()
    response = browser.get(
        "/authorize",
        query_string={
            "response_type": "code",
            "client_id": client_id or rp["client_id"],
            "redirect_uri": "https://elsewhere.example/cb",
            "scope": "openid",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "ui_locales": "uz",
        },
    )
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400 and '<html lang="uz">' in body
    assert f'<code lang="en">{code}</code>' in body
    # authlib's description (English) is not shown: only our own words, in Uzbek.
    assert english.lower() not in body.lower()
    assert "Siz kelgan sayt" in body


def test_the_landing_page_links_to_the_sites_the_person_uses(app, browser, account, make_rp):
    from ..oauth._flow import sign_in_for_tokens

    with_home = make_rp(name="Личный кабинет", client_uri="https://cabinet.example/")
    without_home = make_rp(name="Справочная")
    make_rp(name="Не используется", client_uri="https://unused.example/")
    sign_in_for_tokens(browser, account, with_home)
    sign_in_for_tokens(browser, account, without_home)
    page = html.unescape(browser.get("/").get_data(as_text=True))
    sites = page[page.index('<ul class="sites">') :]
    sites = sites[: sites.index("</ul>")]
    assert '<li><a href="https://cabinet.example/">Личный кабинет</a></li>' in sites
    assert "<li>Справочная</li>" in sites
    assert "Не используется" not in page
    # …and says what to do next, with the way to the cabinet.
    assert "Что дальше" in page
    assert '<a class="button" href="https://lkmmc.mos.ru">Перейти в личный кабинет</a>' in page
