"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): conformance "RP-initiated logout" plan,
oidcc-rp-initiated-logout*."""

import pytest

from idp.oauth import grants

from ..helpers import query
from ..oauth._flow import ISSUER
from ..oauth._flow import POST_LOGOUT_URI
from ..oauth._flow import authorize
from ..oauth._flow import refresh
from ..oauth._flow import sign_in_for_tokens
from ..oauth._flow import userinfo
from ..oauth._flow import verify_id_token

BYE = POST_LOGOUT_URI


def _signed_in(browser) -> bool:
    response = browser.get("/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def _logout(browser, method="GET", **params):
    if method == "POST":
        return browser.client.post("/logout", data=params)
    return browser.client.get("/logout", query_string=params)


def _tokens(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid offline_access")
    assert _signed_in(browser)
    return tokens


def _is_confirmation(response) -> bool:
    return response.status_code == 200 and 'action="/logout/confirm"' in response.get_data(as_text=True)


def _no_redirect(response):
    assert "Location" not in response.headers, response.headers.get("Location")
    assert "rp.example/bye" not in response.get_data(as_text=True)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_logout_with_hint_redirects_with_state(browser, account, rp, method):
    tokens = _tokens(browser, account, rp)
    hint = tokens["id_token"]
    response = _logout(browser, method, id_token_hint=hint, post_logout_redirect_uri=BYE, state="bye-1")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.split("?")[0] == POST_LOGOUT_URI
    assert query(location) == {"state": "bye-1"}
    assert not _signed_in(browser)


def test_logout_with_hint_and_matching_client_id(browser, account, rp):
    tokens = _tokens(browser, account, rp)
    hint = tokens["id_token"]
    response = _logout(browser, id_token_hint=hint, client_id=rp["client_id"], post_logout_redirect_uri=BYE)
    assert response.status_code == 302 and response.headers["Location"] == POST_LOGOUT_URI
    assert not _signed_in(browser)


def test_logout_with_client_id_not_matching_the_hint(browser, account, rp, make_rp):
    other = make_rp()
    tokens = _tokens(browser, account, rp)
    hint = tokens["id_token"]
    response = _logout(
        browser, id_token_hint=hint, client_id=other["client_id"], post_logout_redirect_uri=POST_LOGOUT_URI
    )
    assert response.status_code == 400
    _no_redirect(response)
    assert _signed_in(browser)


def test_logout_without_redirect_uri(browser, account, rp):
    tokens = _tokens(browser, account, rp)
    response = _logout(browser, id_token_hint=tokens["id_token"], state="s")
    assert response.status_code == 200
    _no_redirect(response)
    assert not _signed_in(browser)


@pytest.mark.parametrize(
    "uri",
    [
        "https://attacker.example/bye",
        "https://rp.example/bye/x",
        "https://rp.example/cb",
        "https://rp.example/bye?x=1",
    ],
)
def test_unregistered_post_logout_redirect_uri_is_not_followed(browser, account, rp, uri):
    tokens = _tokens(browser, account, rp)
    response = _logout(browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=uri, state="s")
    assert response.status_code == 200
    _no_redirect(response)
    assert "attacker.example" not in response.get_data(as_text=True)


def test_logout_without_hint_asks_for_confirmation(browser, account, rp):
    tokens = _tokens(browser, account, rp)
    page = _logout(browser, client_id=rp["client_id"], post_logout_redirect_uri=POST_LOGOUT_URI, state="s")
    assert _is_confirmation(page)
    assert _signed_in(browser)
    assert userinfo(browser.client, tokens["access_token"]).status_code == 200

    done = browser.submit("/logout/confirm", {"client_id": rp["client_id"]}, page=page)
    # rpinitiated §3: no redirection without an id_token_hint (nothing proves the RP asked).
    assert done.status_code == 200
    _no_redirect(done)
    assert not _signed_in(browser)
    assert userinfo(browser.client, tokens["access_token"]).status_code == 401


def test_confirmation_needs_csrf(browser, account, rp):
    _tokens(browser, account, rp)
    assert _is_confirmation(_logout(browser))
    response = browser.client.post("/logout/confirm", data={})
    assert response.status_code == 400
    assert _signed_in(browser)


def test_confirmation_page_without_session(browser, rp):
    response = _logout(browser)
    assert response.status_code == 200
    _no_redirect(response)


def test_hint_for_another_user_asks_for_confirmation(app, browser, account, make_account, rp):
    from ..helpers import Browser

    other = make_account(login="77-0000002")
    other_tokens, _ = sign_in_for_tokens(Browser(app.test_client()), other, rp)
    _tokens(browser, account, rp)
    page = _logout(browser, id_token_hint=other_tokens["id_token"], post_logout_redirect_uri=POST_LOGOUT_URI)
    assert _is_confirmation(page)
    assert _signed_in(browser)


def test_confirming_with_hint_redirects(browser, account, make_account, rp, app):
    from ..helpers import Browser

    other = make_account(login="77-0000002")
    other_tokens, _ = sign_in_for_tokens(Browser(app.test_client()), other, rp)
    _tokens(browser, account, rp)
    form = {"id_token_hint": other_tokens["id_token"], "post_logout_redirect_uri": BYE, "state": "z"}
    page = _logout(browser, **form)
    assert _is_confirmation(page)
    done = browser.submit("/logout/confirm", form, page=page)
    assert done.status_code == 302 and done.headers["Location"] == POST_LOGOUT_URI + "?state=z"
    assert not _signed_in(browser)


def test_prompt_none_after_logout(browser, account, rp):
    tokens = _tokens(browser, account, rp)
    _logout(browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=POST_LOGOUT_URI)
    done = authorize(browser, rp, prompt="none")
    result = done.result
    assert result["error"] == "login_required" and result["iss"] == ISSUER


def test_logout_revokes_tokens_of_the_session(browser, account, rp):
    tokens = _tokens(browser, account, rp)
    assert userinfo(browser.client, tokens["access_token"]).status_code == 200
    _logout(browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=POST_LOGOUT_URI)
    assert userinfo(browser.client, tokens["access_token"]).status_code == 401
    refused = refresh(browser.client, rp, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"


def test_logout_spares_other_sessions(app, browser, account, rp):
    from ..helpers import Browser

    elsewhere = Browser(app.test_client())
    kept = _tokens(elsewhere, account, rp)
    tokens = _tokens(browser, account, rp)
    _logout(browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=POST_LOGOUT_URI)
    assert _signed_in(elsewhere)
    assert userinfo(elsewhere.client, kept["access_token"]).status_code == 200


def test_logout_without_session_still_redirects(browser, account, rp):
    tokens = _tokens(browser, account, rp)
    _logout(browser, id_token_hint=tokens["id_token"])
    assert not _signed_in(browser)
    hint = tokens["id_token"]
    response = _logout(browser, id_token_hint=hint, post_logout_redirect_uri=POST_LOGOUT_URI, state="a")
    assert response.status_code == 302 and response.headers["Location"] == POST_LOGOUT_URI + "?state=a"


def test_expired_id_token_hint_is_accepted(browser, account, rp, monkeypatch):
    # rpinitiated §2: the OP SHOULD accept an ID token whose exp has passed.
    monkeypatch.setattr(grants, "_now", lambda: 1_000_000_000)
    tokens = _tokens(browser, account, rp)
    monkeypatch.undo()
    claims = verify_id_token(browser.client, tokens["id_token"]).claims
    assert claims["exp"] < 1_000_100_000
    response = _logout(browser, id_token_hint=tokens["id_token"], post_logout_redirect_uri=POST_LOGOUT_URI)
    assert response.status_code == 302 and response.headers["Location"] == POST_LOGOUT_URI
    assert not _signed_in(browser)


@pytest.mark.parametrize("hint", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_invalid_hint_is_an_error_without_redirect(browser, account, rp, hint):
    _tokens(browser, account, rp)
    response = _logout(browser, id_token_hint=hint, post_logout_redirect_uri=POST_LOGOUT_URI, state="s")
    assert response.status_code == 400
    _no_redirect(response)
    assert _signed_in(browser)
