"""UserInfo (OIDC Core §5.3-§5.4) and bearer tokens (RFC 6750 §2.1, §3): conformance "Basic OP"
oidcc-userinfo-get/post-header, oidcc-scope-*."""

import time

import pytest
from sqlalchemy import update

from idp.extensions import db
from idp.models import Token

from ._flow import bearer
from ._flow import sign_in_for_tokens
from ._flow import userinfo
from ._flow import verify_id_token

PROFILE = {"family_name", "given_name", "middle_name", "name", "locale", "updated_at"}


def _unauthorized(response, error: str | None = "invalid_token"):
    assert response.status_code == 401, response.get_data(as_text=True)
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.lower().startswith("bearer"), challenge
    if error:
        assert f'error="{error}"' in challenge, challenge
        assert response.get_json()["error"] == error


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo_with_bearer_header(browser, account, rp, method):
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid profile")
    response = userinfo(browser.client, tokens["access_token"], method)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    claims = response.get_json()
    assert claims["sub"] == account["sub"]
    assert claims["family_name"] == "Рахимов"


def test_sub_equals_id_token_sub(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp)
    id_sub = verify_id_token(browser.client, tokens["id_token"]).claims["sub"]
    assert userinfo(browser.client, tokens["access_token"]).get_json()["sub"] == id_sub == account["sub"]


def test_openid_only_releases_sub(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid")
    assert userinfo(browser.client, tokens["access_token"]).get_json() == {"sub": account["sub"]}


def test_profile_scope(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid profile")
    claims = userinfo(browser.client, tokens["access_token"]).get_json()
    assert set(claims) == PROFILE | {"sub"}
    assert claims["name"] == "Рахимов Алишер Бахтиёрович"
    assert claims["given_name"] == "Алишер" and claims["middle_name"] == "Бахтиёрович"
    assert claims["locale"] == "ru"
    assert isinstance(claims["updated_at"], int)


def test_profile_without_middle_name(browser, make_account, rp):
    someone = make_account(login="77-0000003", middle_name=None)
    tokens, _ = sign_in_for_tokens(browser, someone, rp, scope="openid profile")
    claims = userinfo(browser.client, tokens["access_token"]).get_json()
    assert "middle_name" not in claims
    assert claims["name"] == "Рахимов Алишер"


def test_phone_scope(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid phone")
    claims = userinfo(browser.client, tokens["access_token"]).get_json()
    assert claims == {"sub": account["sub"], "phone_number": "+79161234567", "phone_number_verified": True}


def test_patent_scope(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid patent")
    claims = userinfo(browser.client, tokens["access_token"]).get_json()
    assert claims == {"sub": account["sub"], "patent_application_number": account["login"]}


def test_email_scope_without_email(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid email")
    claims = userinfo(browser.client, tokens["access_token"]).get_json()
    assert "email" not in claims and "email_verified" not in claims
    assert claims["sub"] == account["sub"]


def test_email_scope_with_email(browser, make_account, rp):
    someone = make_account(login="77-0000004", email="rahimov@example.com")
    tokens, _ = sign_in_for_tokens(browser, someone, rp, scope="openid email")
    claims = userinfo(browser.client, tokens["access_token"]).get_json()
    assert claims["email"] == "rahimov@example.com"
    assert claims["email_verified"] is False


def test_all_scopes(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid profile phone email patent")
    claims = userinfo(browser.client, tokens["access_token"]).get_json()
    others = {"sub", "phone_number", "phone_number_verified", "patent_application_number"}
    assert set(claims) == PROFILE | others


def test_no_token(client):
    _unauthorized(client.get("/userinfo"), error=None)
    _unauthorized(client.post("/userinfo"), error=None)


@pytest.mark.parametrize("header", ["Bearer ", "Basic Zm9vOmJhcg==", "bearer"])
def test_no_bearer_token(client, header):
    _unauthorized(client.get("/userinfo", headers={"Authorization": header}), error=None)


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Bearer a b", "Bearer " + "x" * 600])
def test_invalid_token(client, header):
    _unauthorized(client.get("/userinfo", headers={"Authorization": header}))


def test_unknown_token(client):
    _unauthorized(userinfo(client, "not-a-token"))


def test_expired_token(app, browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp)
    assert userinfo(browser.client, tokens["access_token"]).status_code == 200
    with app.app_context():
        db.session.execute(update(Token).values(issued_at=int(time.time()) - 10_000))
        db.session.commit()
    _unauthorized(userinfo(browser.client, tokens["access_token"]))


def test_revoked_token(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp)
    revoked = browser.client.post(
        "/revoke", data={"token": tokens["access_token"]}, auth=(rp["client_id"], rp["client_secret"])
    )
    assert revoked.status_code == 200
    _unauthorized(userinfo(browser.client, tokens["access_token"]))


def test_client_credentials_token_has_no_user(client, rp):
    data = {"grant_type": "client_credentials", "scope": "patent"}
    response = client.post("/token", data=data, auth=(rp["client_id"], rp["client_secret"]))
    access_token = response.get_json()["access_token"]
    result = client.get("/userinfo", headers=bearer(access_token))
    # RFC 6750 §3.1: the token is valid but was not issued for the openid scope.
    assert result.status_code == 403
    assert result.get_json()["error"] == "insufficient_scope"
    # RFC 6750 §3: every error response carries the challenge.
    challenge = result.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer ") and 'error="insufficient_scope"' in challenge
    assert 'scope="openid"' in challenge


def test_blocked_account_token_stops_working(app, browser, account, rp):
    from idp.models import Account

    tokens, _ = sign_in_for_tokens(browser, account, rp)
    with app.app_context():
        db.session.execute(update(Account).values(status="blocked"))
        db.session.commit()
    _unauthorized(userinfo(browser.client, tokens["access_token"]))
