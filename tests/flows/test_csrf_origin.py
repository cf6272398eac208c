"""CSRF behind the TLS proxy (idp/csrf.py): with an https issuer and `[server] proxy_count = 1`, forms work
although the pages send no Referer (Referrer-Policy: no-referrer), and a form sent from another origin is
refused with a Russian page, while the CSRF token is still required. The same requests through a real
nginx and Chromium: tests/browser/test_tls_proxy.py."""

from __future__ import annotations

import pytest

from idp.csrf import cross_origin_problem
from idp.csrf import origin_of

from ..helpers import csrf_token
from ..helpers import sign_in_action

ISSUER = "https://id.example.ru"
HTTPS = {"base_url": "https://127.0.0.1:8000"}
# What nginx adds in front of the provider (README's server block).
PROXIED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "id.example.ru",
    "X-Forwarded-Port": "443",
    "X-Forwarded-For": "203.0.113.9",
}
CROSS_ORIGIN_PAGE = "Форма отправлена со страницы другого сайта"
STALE_PAGE = "Страница устарела"
behind_the_proxy = pytest.mark.config(server={"issuer": ISSUER, "proxy_count": 1})


@pytest.mark.parametrize(
    "url, origin",
    [
        ("https://id.example.ru", "https://id.example.ru"),
        ("https://ID.Example.ru:443/idp", "https://id.example.ru"),
        ("https://id.example.ru:8443", "https://id.example.ru:8443"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://[::1]:80/", "http://[::1]"),
    ],
)
def test_origin_of_the_issuer_is_what_browsers_send(url, origin):
    assert origin_of(url) == origin


@pytest.mark.parametrize(
    "origin, fetch_site, accepted",
    [
        ("https://id.example.ru", None, True),
        ("https://id.example.ru", "cross-site", True),  # a real Origin decides
        ("https://evil.example", "same-origin", False),
        ("https://id.example.ru:8443", None, False),
        ("http://id.example.ru", None, False),
        # Chromium and Firefox send Origin: null from a page with Referrer-Policy: no-referrer.
        ("null", "same-origin", True),
        ("null", "none", True),
        ("null", "same-site", False),
        ("null", "cross-site", False),
        (None, "same-origin", True),
        (None, "cross-site", False),
        # Neither header (old browsers, scripts): the token alone decides.
        (None, None, True),
        ("null", None, True),
    ],
)
def test_the_same_origin_rule(origin, fetch_site, accepted):
    assert (cross_origin_problem(origin, fetch_site, "https://id.example.ru") is None) == accepted


def _sign_in(client, account, **headers):
    page = client.get("/login", headers=PROXIED, **HTTPS)
    assert page.status_code == 200
    data = {
        "csrf_token": csrf_token(page.get_data(as_text=True)),
        "login": account["login"],
        "password": account["password"],
    }
    return client.post("/login", data=data, headers={**PROXIED, **headers}, **HTTPS)


@behind_the_proxy
def test_a_form_without_referer_works_behind_the_proxy(client, account):
    # What Chromium sends for our own form: no Referer, Origin: null, Sec-Fetch-Site: same-origin.
    response = _sign_in(client, account, Origin="null", **{"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert "Secure" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


@behind_the_proxy
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": ISSUER},
        {},
    ],
)
def test_same_origin_or_no_header_is_accepted(client, account, headers):
    assert _sign_in(client, account, **headers).status_code == 302


@behind_the_proxy
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "null", "Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_form_from_another_origin_is_refused_with_a_russian_page(client, account, headers):
    response = _sign_in(client, account, **headers)
    assert response.status_code == 403
    assert CROSS_ORIGIN_PAGE in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers  # not signed in


@behind_the_proxy
def test_the_token_is_still_required(client, account):
    response = client.post(
        "/login",
        data={"login": account["login"], "password": account["password"]},
        headers={**PROXIED, "Origin": ISSUER},
        **HTTPS,
    )
    assert response.status_code == 400 and STALE_PAGE in response.get_data(as_text=True)


@behind_the_proxy
def test_protocol_endpoints_take_posts_from_any_origin(client, rp):
    # A relying party's server, or its page's form post to /authorize: not a form of ours, no CSRF rule.
    token = client.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "profile"},
        auth=(rp["client_id"], rp["client_secret"]),
        headers={**PROXIED, "Origin": "https://rp.example"},
        **HTTPS,
    )
    assert token.status_code == 200 and "access_token" in token.get_json()
    authorize = client.post(
        "/authorize",
        data={
            "response_type": "code",
            "client_id": rp["client_id"],
            "redirect_uri": "https://rp.example/cb",
            "scope": "openid",
        },
        headers={**PROXIED, "Origin": "https://rp.example", "Sec-Fetch-Site": "cross-site"},
        **HTTPS,
    )
    assert authorize.status_code == 200 and sign_in_action(authorize.get_data(as_text=True)).startswith(
        "/login?authz="
    )


def test_staff_console_forms_are_checked_too(admin_client):
    # The issuer of the tests is http://localhost.
    page = admin_client.get("/admin/accounts/new")
    data = {"csrf_token": csrf_token(page.get_data(as_text=True)), "login": "77-7654321"}
    refused = admin_client.post("/admin/accounts/new", data=data, headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403 and CROSS_ORIGIN_PAGE in refused.get_data(as_text=True)
    accepted = admin_client.post("/admin/accounts/new", data=data, headers={"Origin": "http://localhost"})
    assert accepted.status_code == 200  # the form, re-rendered with what is missing
