"""Consent for non-trusted clients (OIDC Core §3.1.2.4): asked once and remembered, asked again for new
scopes or with prompt=consent; a refusal is access_denied (RFC 6749 §4.1.2.1) with iss (RFC 9207)."""

import html
import re

import pytest
from sqlalchemy import select
from sqlalchemy import update

from idp.extensions import db
from idp.models import Consent
from idp.models import SsoSession

from ..helpers import Browser
from ..oauth._flow import ISSUER
from ..oauth._flow import authorize
from ..oauth._flow import is_consent_page
from ..oauth._flow import is_login_page
from ..oauth._flow import redeem
from ..oauth._flow import userinfo
from ..oauth.test_registration import METADATA
from ..oauth.test_registration import _initial_token
from ..oauth.test_registration import _register


def _page_path(page) -> str:
    return page.request.path + "?" + page.request.query_string.decode()


def _answer(browser, page, choice: str):
    assert is_consent_page(page), (page.status_code, page.request.path)
    button = {"allow": "Разрешить", "deny": "Отказать"}[choice]
    return browser.follow(browser.submit(_page_path(page), {choice: button}, page=page))


def _consents(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [(c.client_id, c.scope) for c in db.session.scalars(select(Consent))]


def _age_consents(app, seconds: int) -> None:
    # One-second resolution: a consent given in the same second as a request counts as answering it.
    with app.app_context():
        db.session.execute(update(Consent).values(granted_at=Consent.granted_at - seconds))
        db.session.commit()


def test_consent_asked_once_then_remembered(app, browser, account, make_rp):
    untrusted = make_rp(trusted=False, name="Сайт партнёра")
    first = authorize(browser, untrusted, account, scope="openid profile phone")
    page = first.response
    assert is_consent_page(page)
    body = page.get_data(as_text=True)
    assert "Сайт партнёра" in body
    assert "Фамилия, имя, отчество" in body and "Номер телефона" in body
    assert "Номер заявления на патент" not in body
    assert _consents(app) == []

    done = _answer(browser, page, "allow")
    assert done.headers["Location"].startswith("https://rp.example/cb?")
    first.response = done
    tokens = redeem(browser.client, untrusted, first.code, first.verifier).get_json()
    assert userinfo(browser.client, tokens["access_token"]).get_json()["phone_number"] == "+79161234567"
    [(client_id, scope)] = _consents(app)
    assert client_id == untrusted["client_id"] and set(scope.split()) == {"openid", "profile", "phone"}

    again = authorize(browser, untrusted, scope="openid profile")
    assert again.result["code"]
    assert again.result["state"] == again.request["state"]


def test_consent_remembered_with_prompt_none(browser, account, make_rp):
    untrusted = make_rp(trusted=False)
    first = authorize(browser, untrusted, account)
    _answer(browser, first.response, "allow")
    assert authorize(browser, untrusted, prompt="none").result["code"]


def test_deny(app, browser, account, make_rp):
    untrusted = make_rp(trusted=False)
    first = authorize(browser, untrusted, account)
    done = _answer(browser, first.response, "deny")
    first.response = done
    result = first.result
    assert result["error"] == "access_denied"
    assert result["state"] == first.request["state"]
    assert result["iss"] == ISSUER
    assert "code" not in result
    assert _consents(app) == []
    # Nothing remembered: the next request asks again.
    assert is_consent_page(authorize(browser, untrusted).response)


@pytest.mark.parametrize("fields", [{}, {"allow": "Разрешить", "deny": "Отказать"}])
def test_a_post_without_an_explicit_allow_is_a_denial(app, browser, account, make_rp, fields):
    """Issue 10: a consent POST with neither button counted as «Разрешить». Only the allow button alone
    grants; anything else is access_denied and nothing is remembered."""
    untrusted = make_rp(trusted=False)
    first = authorize(browser, untrusted, account)
    page = first.response
    assert is_consent_page(page)
    first.response = browser.follow(browser.submit(_page_path(page), fields, page=page))
    assert first.result["error"] == "access_denied" and "code" not in first.result
    assert _consents(app) == []


def test_prompt_consent_asks_again(app, browser, account, make_rp):
    untrusted = make_rp(trusted=False)
    _answer(browser, authorize(browser, untrusted, account).response, "allow")
    _age_consents(app, 100)
    assert authorize(browser, untrusted).result["code"]

    again = authorize(browser, untrusted, prompt="consent")
    assert is_consent_page(again.response)
    again.response = _answer(browser, again.response, "allow")
    assert again.result["code"]


def test_prompt_consent_on_trusted_client_is_not_needed(browser, account, rp):
    done = authorize(browser, rp, account, prompt="consent")
    assert done.result["code"]


def test_new_scope_asks_again(app, browser, account, make_rp):
    untrusted = make_rp(trusted=False)
    _answer(browser, authorize(browser, untrusted, account, scope="openid").response, "allow")
    wider = authorize(browser, untrusted, scope="openid phone")
    assert is_consent_page(wider.response)
    wider.response = _answer(browser, wider.response, "allow")
    assert wider.result["code"]
    [(_, scope)] = _consents(app)
    assert set(scope.split()) == {"openid", "phone"}


def test_consent_is_per_user(app, browser, account, make_account, make_rp):
    untrusted = make_rp(trusted=False)
    _answer(browser, authorize(browser, untrusted, account).response, "allow")
    other = make_account(login="77-0000002")
    other_browser = Browser(app.test_client())
    assert is_consent_page(authorize(other_browser, untrusted, other).response)


def test_consent_is_per_client(browser, account, make_rp):
    one = make_rp(trusted=False)
    two = make_rp(trusted=False)
    _answer(browser, authorize(browser, one, account).response, "allow")
    assert is_consent_page(authorize(browser, two).response)


def test_consent_needs_csrf(app, browser, account, make_rp):
    untrusted = make_rp(trusted=False)
    page = authorize(browser, untrusted, account).response
    response = browser.client.post(_page_path(page), data={"allow": "Разрешить"})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert _consents(app) == []


def test_consent_page_for_unknown_request(browser, account, rp):
    authorize(browser, rp, account)
    response = browser.get("/consent/?authz=nonexistent")
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_consent_page_after_session_ended_goes_to_sign_in(app, browser, account, make_rp):
    untrusted = make_rp(trusted=False)
    page = authorize(browser, untrusted, account).response
    assert is_consent_page(page)
    with app.app_context():
        db.session.execute(update(SsoSession).values(ended_at=SsoSession.created_at))
        db.session.commit()
    response = browser.follow(browser.get(_page_path(page)))
    assert is_login_page(response)
    assert _consents(app) == []


# -- who is asking (issue 10): the name is the client's own choice, the rest is not -----------------------


def _requester(page) -> dict:
    body = html.unescape(page.get_data(as_text=True))
    found = {
        key: re.search(rf'id="requester-{key}">([^<]*)<', body) for key in ("host", "registration", "warning")
    }
    return {key: match.group(1) if match else None for key, match in found.items()}


def test_consent_shows_the_redirect_host_and_an_admin_registration(browser, account, make_rp):
    uris = ["https://rp.example/cb", "https://кабинет.рф/cb", "http://127.0.0.1:53124/cb"]
    rp = make_rp(trusted=False, name="Сайт партнёра", redirect_uris=uris)
    page = authorize(browser, rp, account).response
    assert _requester(page) == {"host": "rp.example", "registration": "администратором", "warning": None}
    # The host of the redirect URI in use, whichever of the registered ones it is.
    idn = authorize(browser, rp, redirect_uri="https://кабинет.рф/cb").response
    assert _requester(idn)["host"] == "кабинет.рф (xn--80acmlhv0b.xn--p1ai)"
    native = authorize(browser, rp, redirect_uri="http://127.0.0.1:53124/cb").response
    assert _requester(native)["host"] == "127.0.0.1 — приложение на этом устройстве"


def test_consent_warns_about_a_self_registered_client(app, client, browser, account):
    body = {**METADATA, "client_name": "Личный кабинет мигранта"}
    registered = _register(client, _initial_token(app), body).get_json()
    rp = {"client_id": registered["client_id"], "client_secret": registered["client_secret"]}
    page = authorize(browser, rp, account, scope="openid profile").response
    assert is_consent_page(page) and "Личный кабинет мигранта" in page.get_data(as_text=True)
    assert _requester(page) == {
        "host": "rp.example",
        "registration": "самостоятельно, администратор его не проверял",
        "warning": "Название сайт указал сам. Разрешайте, только если вы пришли сюда с сайта rp.example "
        "и доверяете ему.",
    }
