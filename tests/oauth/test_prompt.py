"""prompt, max_age, id_token_hint and login_hint (OIDC Core §3.1.2.1, §3.1.2.6): conformance "Basic OP"
oidcc-prompt-none-*, oidcc-prompt-login, oidcc-max-age-*, oidcc-id-token-hint, oidcc-login-hint.

Sessions are aged in the database rather than by sleeping: ``auth_time`` has one-second resolution,
and a sign-in in the same second as the request counts as answering that request."""

import html
import re
import time

from joserfc import jwt
from joserfc.jwk import RSAKey

from ..helpers import Browser
from ..helpers import authz_of
from ._flow import ISSUER
from ._flow import age_sso_sessions
from ._flow import authorize
from ._flow import is_consent_page
from ._flow import is_login_page
from ._flow import redeem
from ._flow import sign_in_for_tokens
from ._flow import sso_auth_times
from ._flow import verify_id_token


def _error(done, error: str):
    result = done.result
    assert result.get("error") == error, result
    assert result["state"] == done.request["state"]
    assert result["iss"] == ISSUER
    assert "code" not in result


def _id_token(browser, done, rp) -> dict:
    response = redeem(browser.client, rp, done.code, done.verifier)
    assert response.status_code == 200, response.get_json()
    return verify_id_token(browser.client, response.get_json()["id_token"]).claims


def test_prompt_none_without_session(browser, account, rp):
    _error(authorize(browser, rp, prompt="none"), "login_required")


def test_prompt_none_with_session(browser, account, rp):
    first, _ = sign_in_for_tokens(browser, account, rp)
    done = authorize(browser, rp, prompt="none")
    assert done.result["code"] and done.result["iss"] == ISSUER
    claims = _id_token(browser, done, rp)
    assert claims["sub"] == account["sub"]
    assert claims["auth_time"] == verify_id_token(browser.client, first["id_token"]).claims["auth_time"]


def test_prompt_login_asks_again(app, browser, account, rp):
    sign_in_for_tokens(browser, account, rp)
    age_sso_sessions(app, 100)
    [old_auth_time] = sso_auth_times(app)

    page = authorize(browser, rp, prompt="login").response
    assert is_login_page(page), page.status_code

    done = authorize(browser, rp, account, prompt="login")
    claims = _id_token(browser, done, rp)
    assert claims["auth_time"] > old_auth_time
    assert claims["auth_time"] >= int(time.time()) - 5


def test_prompt_login_cannot_be_skipped_by_resuming(app, browser, account, rp):
    sign_in_for_tokens(browser, account, rp)
    age_sso_sessions(app, 100)
    page = authorize(browser, rp, prompt="login").response
    assert is_login_page(page)
    # Going straight back to the parked request without signing in shows the form again.
    resumed = browser.follow(browser.get("/authorize/continue/" + authz_of(page)))
    assert is_login_page(resumed)


def test_max_age_forces_sign_in(app, browser, account, rp):
    sign_in_for_tokens(browser, account, rp)
    age_sso_sessions(app, 5)
    [old_auth_time] = sso_auth_times(app)

    page = authorize(browser, rp, max_age="1").response
    assert is_login_page(page)

    done = authorize(browser, rp, account, max_age="1")
    claims = _id_token(browser, done, rp)
    assert claims["auth_time"] > old_auth_time


def test_max_age_satisfied_by_recent_sign_in(app, browser, account, rp):
    sign_in_for_tokens(browser, account, rp)
    age_sso_sessions(app, 5)
    [auth_time] = sso_auth_times(app)
    done = authorize(browser, rp, max_age="3600")
    assert _id_token(browser, done, rp)["auth_time"] == auth_time


def test_max_age_with_prompt_none(app, browser, account, rp):
    sign_in_for_tokens(browser, account, rp)
    age_sso_sessions(app, 5)
    _error(authorize(browser, rp, max_age="1", prompt="none"), "login_required")


def test_max_age_invalid(browser, account, rp):
    sign_in_for_tokens(browser, account, rp)
    _error(authorize(browser, rp, max_age="-1"), "invalid_request")
    _error(authorize(browser, rp, max_age="soon"), "invalid_request")


def test_id_token_hint_for_signed_in_user(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp)
    done = authorize(browser, rp, prompt="none", id_token_hint=tokens["id_token"])
    assert _id_token(browser, done, rp)["sub"] == account["sub"]


def test_id_token_hint_for_another_user_with_prompt_none(app, browser, account, make_account, rp):
    other = make_account(login="77-0000002")
    other_browser = Browser(app.test_client())
    other_tokens, _ = sign_in_for_tokens(other_browser, other, rp)

    sign_in_for_tokens(browser, account, rp)
    _error(authorize(browser, rp, prompt="none", id_token_hint=other_tokens["id_token"]), "login_required")
    # Still fails once the session is older than the request.
    age_sso_sessions(app, 100)
    _error(authorize(browser, rp, prompt="none", id_token_hint=other_tokens["id_token"]), "login_required")


def test_id_token_hint_for_another_user_asks_to_sign_in(app, browser, account, make_account, rp):
    other = make_account(login="77-0000002")
    other_tokens, _ = sign_in_for_tokens(Browser(app.test_client()), other, rp)
    sign_in_for_tokens(browser, account, rp)
    age_sso_sessions(app, 100)
    page = authorize(browser, rp, id_token_hint=other_tokens["id_token"]).response
    assert is_login_page(page)
    done = authorize(browser, rp, other, id_token_hint=other_tokens["id_token"])
    assert _id_token(browser, done, rp)["sub"] == other["sub"]


def test_garbage_id_token_hint(browser, account, rp):
    sign_in_for_tokens(browser, account, rp)
    _error(authorize(browser, rp, id_token_hint="not.a.jwt"), "invalid_request")
    _error(authorize(browser, rp, prompt="none", id_token_hint="garbage"), "invalid_request")


def test_garbage_id_token_hint_without_session(browser, rp):
    _error(authorize(browser, rp, id_token_hint="eyJhbGciOiJSUzI1NiJ9.e30.AAAA"), "invalid_request")


def test_id_token_hint_signed_by_someone_else(browser, account, rp):
    sign_in_for_tokens(browser, account, rp)
    key = RSAKey.generate_key(2048, parameters={"kid": "forged"})
    claims = {"iss": ISSUER, "sub": account["sub"], "aud": rp["client_id"]}
    forged = jwt.encode({"alg": "RS256", "kid": "forged"}, claims, key)
    _error(authorize(browser, rp, prompt="none", id_token_hint=forged), "invalid_request")


def _login_value(page) -> str:
    """The value of the login input, unescaped as a browser would."""
    body = page.get_data(as_text=True)
    tag = re.search(r'<input[^>]*name="login"[^>]*>', body)
    assert tag, "no login field"
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else ""


def test_login_hint_prefills_login(browser, rp):
    page = authorize(browser, rp, login_hint="77-0000042").response
    assert is_login_page(page)
    assert _login_value(page) == "77-0000042"


def test_login_hint_is_escaped(browser, rp):
    hint = '"><script>alert(1)</script>'
    page = authorize(browser, rp, login_hint=hint).response
    assert "<script>alert(1)</script>" not in page.get_data(as_text=True)
    assert _login_value(page) == hint


def test_login_page_without_hint_is_empty(browser, rp):
    page = authorize(browser, rp).response
    assert is_login_page(page)
    assert _login_value(page) == ""


def test_prompt_none_with_temporary_password(browser, make_account, rp):
    temporary = make_account(login="77-0000005", temporary=True)
    changed = browser.sign_in(temporary["login"], temporary["password"])
    assert changed.request.path == "/password/change"
    _error(authorize(browser, rp, prompt="none"), "interaction_required")


def test_temporary_password_is_changed_before_the_code(browser, make_account, rp):
    temporary = make_account(login="77-0000006", temporary=True)
    page = authorize(browser, rp, temporary).response
    assert page.status_code == 200 and page.request.path == "/password/change", page.request.path
    path = page.request.path + "?" + page.request.query_string.decode()
    new_password = "a much better passphrase 2024"
    done = browser.follow(
        browser.submit(
            path, {"old": temporary["password"], "new": new_password, "repeat": new_password}, page=page
        )
    )
    result = done.headers.get("Location", "")
    assert result.startswith("https://rp.example/cb?"), (done.status_code, result)
    assert "code=" in result


def test_prompt_none_needs_consent(browser, account, rp, make_rp):
    untrusted = make_rp(trusted=False)
    sign_in_for_tokens(browser, account, rp)
    _error(authorize(browser, untrusted, prompt="none"), "consent_required")


def test_without_prompt_none_consent_page_is_shown(browser, account, rp, make_rp):
    untrusted = make_rp(trusted=False)
    sign_in_for_tokens(browser, account, rp)
    assert is_consent_page(authorize(browser, untrusted).response)


def test_prompt_none_with_other_value_is_invalid(browser, account, rp):
    sign_in_for_tokens(browser, account, rp)
    _error(authorize(browser, rp, prompt="none consent"), "invalid_request")
    _error(authorize(browser, rp, prompt="bogus"), "invalid_request")


def test_prompt_select_account_is_accepted(app, browser, account, rp):
    # Choosing an account is signing in again (tests/oauth/test_rp_features.py has the whole journey).
    sign_in_for_tokens(browser, account, rp)
    age_sso_sessions(app, 5)
    done = authorize(browser, rp, prompt="select_account")
    assert is_login_page(done.response)
