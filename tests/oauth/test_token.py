"""The token endpoint (RFC 6749 §3.2, §4.1.3-§4.1.4, §4.4, §5; OIDC Core §3.1.3): conformance "Basic OP"
oidcc-codereuse*, oidcc-ensure-redirect-uri-in-token, oidcc-client-auth-*."""

import time

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuthorizationCode

from ._flow import REDIRECT_URI
from ._flow import authorize
from ._flow import client_auth
from ._flow import public_rp
from ._flow import redeem
from ._flow import refresh
from ._flow import userinfo


def _assert_error(response, error: str, status: int = 400):
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    assert response.get_json()["error"] == error
    assert "no-store" in response.headers.get("Cache-Control", "")


def test_code_exchange_response(browser, account, rp):
    done = authorize(browser, rp, account, scope="openid profile")
    response = redeem(browser.client, rp, done.code, done.verifier)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"].lower() == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert set(body["scope"].split()) == {"openid", "profile"}
    assert body["access_token"] and body["id_token"]
    assert "refresh_token" not in body


def test_token_responses_are_not_cached(browser, account, rp):
    done = authorize(browser, rp, account)
    ok = redeem(browser.client, rp, done.code, done.verifier)
    assert ok.status_code == 200
    assert "no-store" in ok.headers["Cache-Control"]
    assert ok.headers.get("Pragma") == "no-cache"
    failed = redeem(browser.client, rp, done.code, done.verifier)
    assert failed.status_code == 400
    assert "no-store" in failed.headers["Cache-Control"]


def test_reused_code_fails_and_revokes_its_tokens(browser, account, rp):
    done = authorize(browser, rp, account, scope="openid offline_access")
    first = redeem(browser.client, rp, done.code, done.verifier)
    assert first.status_code == 200
    tokens = first.get_json()
    assert userinfo(browser.client, tokens["access_token"]).status_code == 200

    _assert_error(redeem(browser.client, rp, done.code, done.verifier), "invalid_grant")

    assert userinfo(browser.client, tokens["access_token"]).status_code == 401
    _assert_error(refresh(browser.client, rp, tokens["refresh_token"]), "invalid_grant")


def test_reused_code_revokes_tokens_refreshed_from_it(browser, account, rp):
    done = authorize(browser, rp, account, scope="openid offline_access")
    tokens = redeem(browser.client, rp, done.code, done.verifier).get_json()
    rotated = refresh(browser.client, rp, tokens["refresh_token"]).get_json()
    assert userinfo(browser.client, rotated["access_token"]).status_code == 200

    _assert_error(redeem(browser.client, rp, done.code, done.verifier), "invalid_grant")

    assert userinfo(browser.client, rotated["access_token"]).status_code == 401
    _assert_error(refresh(browser.client, rp, rotated["refresh_token"]), "invalid_grant")


@pytest.mark.config(oauth={"code_ttl": 10})
def test_code_expires_after_code_ttl(app, browser, account, rp, clock):
    early = authorize(browser, rp, account)
    late = authorize(browser, rp)
    with app.app_context():
        rows = db.session.scalars(select(AuthorizationCode).order_by(AuthorizationCode.id)).all()
        assert [row.expires_at - row.created_at for row in rows] == [10, 10]
        early_created, late_created = rows[0].created_at, rows[1].created_at

    clock.now = early_created + 9
    assert redeem(browser.client, rp, early.code, early.verifier).status_code == 200

    clock.now = late_created + 10
    _assert_error(redeem(browser.client, rp, late.code, late.verifier), "invalid_grant")


def test_expired_code_row(app, browser, account, rp):
    done = authorize(browser, rp, account)
    with app.app_context():
        row = db.session.scalar(select(AuthorizationCode))
        row.expires_at = int(time.time()) - 1
        db.session.commit()
    _assert_error(redeem(browser.client, rp, done.code, done.verifier), "invalid_grant")


@pytest.mark.parametrize("redirect_uri", ["https://rp.example/other", "", None])
def test_redirect_uri_must_match_the_authorization_request(browser, account, make_rp, redirect_uri):
    rp = make_rp(redirect_uris=[REDIRECT_URI, "https://rp.example/other"])
    done = authorize(browser, rp, account)
    data = {"grant_type": "authorization_code", "code": done.code, "code_verifier": done.verifier}
    if redirect_uri is not None:
        data["redirect_uri"] = redirect_uri
    _assert_error(browser.client.post("/token", **client_auth(rp, data)), "invalid_grant")


def test_code_of_another_client(browser, account, rp, make_rp):
    other = make_rp()
    done = authorize(browser, rp, account)
    _assert_error(redeem(browser.client, other, done.code, done.verifier), "invalid_grant")
    # The rightful client still gets its tokens: a stranger's attempt does not burn the code.
    assert redeem(browser.client, rp, done.code, done.verifier).status_code == 200


def test_unknown_code(client, rp):
    _assert_error(redeem(client, rp, "no-such-code", "v" * 43), "invalid_grant")


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_confidential_client_authentication_methods(browser, account, rp, method):
    done = authorize(browser, rp, account)
    response = redeem(browser.client, rp, done.code, done.verifier, method=method)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["id_token"]


def test_wrong_secret_basic_is_401(browser, account, rp):
    done = authorize(browser, rp, account)
    wrong = dict(rp, client_secret="not-the-secret")
    response = redeem(browser.client, wrong, done.code, done.verifier, method="client_secret_basic")
    _assert_error(response, "invalid_client", 401)
    assert response.headers["WWW-Authenticate"].lower().startswith("basic")
    # The code was not spent by the failed attempt.
    assert redeem(browser.client, rp, done.code, done.verifier).status_code == 200


def test_wrong_secret_post(browser, account, rp):
    done = authorize(browser, rp, account)
    wrong = dict(rp, client_secret="not-the-secret")
    response = redeem(browser.client, wrong, done.code, done.verifier, method="client_secret_post")
    _assert_error(response, "invalid_client", 401)


def test_confidential_client_without_secret(browser, account, rp):
    done = authorize(browser, rp, account)
    response = redeem(browser.client, rp, done.code, done.verifier, method="none")
    _assert_error(response, "invalid_client", 401)


def test_public_client_with_none(browser, account, make_rp):
    public = public_rp(make_rp)
    assert public["client_secret"] is None
    done = authorize(browser, public, account, scope="openid offline_access")
    response = redeem(browser.client, public, done.code, done.verifier)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["id_token"] and body["refresh_token"]
    assert refresh(browser.client, public, body["refresh_token"]).status_code == 200


def test_public_client_cannot_use_a_secret(browser, account, make_rp):
    public = public_rp(make_rp)
    done = authorize(browser, public, account)
    with_secret = dict(public, client_secret="anything")
    response = redeem(browser.client, with_secret, done.code, done.verifier, method="client_secret_basic")
    _assert_error(response, "invalid_client", 401)


def test_client_credentials(client, rp):
    data = {"grant_type": "client_credentials", "scope": "patent"}
    response = client.post("/token", **client_auth(rp, data))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["access_token"] and body["scope"] == "patent"
    assert "refresh_token" not in body and "id_token" not in body
    assert "no-store" in response.headers["Cache-Control"]


@pytest.mark.parametrize("scope", ["openid", "openid patent", "offline_access", "unknown"])
def test_client_credentials_refuses_user_scopes(client, rp, scope):
    data = {"grant_type": "client_credentials", "scope": scope}
    _assert_error(client.post("/token", **client_auth(rp, data)), "invalid_scope")


def test_client_credentials_for_client_without_that_grant(client, make_rp):
    code_only = make_rp(grant_types=["authorization_code", "refresh_token"])
    data = {"grant_type": "client_credentials", "scope": "patent"}
    _assert_error(client.post("/token", **client_auth(code_only, data)), "unauthorized_client")


def test_client_credentials_for_public_client(client, make_rp):
    public = public_rp(make_rp)
    data = {"grant_type": "client_credentials", "scope": "patent"}
    response = client.post("/token", **client_auth(public, data))
    _assert_error(response, "invalid_client", 401)


@pytest.mark.parametrize(
    # The device grant (RFC 8628) is supported now: tests/oauth/test_device.py.
    "grant_type",
    ["password", "implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
)
def test_unsupported_grant_type(client, rp, grant_type):
    data = {"grant_type": grant_type, "username": "x", "password": "y"}
    _assert_error(client.post("/token", **client_auth(rp, data)), "unsupported_grant_type")


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type=client_credentials&scope=patent&scope=patent",
        b"grant_type=client_credentials&grant_type=authorization_code&scope=patent",
    ],
)
def test_repeated_parameter_refused(client, rp, body):
    # RFC 6749 §3.2: request parameters MUST NOT be included more than once.
    auth = (rp["client_id"], rp["client_secret"])
    response = client.post("/token", data=body, content_type="application/x-www-form-urlencoded", auth=auth)
    _assert_error(response, "invalid_request")


def test_missing_grant_type(client, rp):
    response = client.post("/token", **client_auth(rp, {"code": "x"}))
    assert response.status_code == 400
    assert response.get_json()["error"] in ("invalid_request", "unsupported_grant_type")
