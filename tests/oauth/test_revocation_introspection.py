"""Token revocation (RFC 7009) and introspection (RFC 7662)."""

import pytest

from ._flow import client_auth
from ._flow import public_rp
from ._flow import refresh
from ._flow import sign_in_for_tokens
from ._flow import userinfo


def _tokens(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid profile offline_access")
    assert tokens["refresh_token"]
    return tokens


def _revoke(client, rp, token, hint=None, method=None):
    data = {"token": token}
    if hint:
        data["token_type_hint"] = hint
    return client.post("/revoke", **client_auth(rp, data, method))


def _introspect(client, rp, token, hint=None, method=None):
    data = {"token": token}
    if hint:
        data["token_type_hint"] = hint
    return client.post("/introspect", **client_auth(rp, data, method))


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token"])
def test_revoke_access_token(browser, account, rp, hint):
    tokens = _tokens(browser, account, rp)
    response = _revoke(browser.client, rp, tokens["access_token"], hint)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert userinfo(browser.client, tokens["access_token"]).status_code == 401
    assert _introspect(browser.client, rp, tokens["access_token"]).get_json() == {"active": False}


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"])
def test_revoke_refresh_token_kills_the_family(browser, account, rp, hint):
    tokens = _tokens(browser, account, rp)
    rotated = refresh(browser.client, rp, tokens["refresh_token"]).get_json()
    response = _revoke(browser.client, rp, rotated["refresh_token"], hint)
    assert response.status_code == 200
    refused = refresh(browser.client, rp, rotated["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    # RFC 7009 §2.1: the access tokens of the same grant go too.
    assert userinfo(browser.client, rotated["access_token"]).status_code == 401


def test_revoke_with_post_authentication(browser, account, rp):
    tokens = _tokens(browser, account, rp)
    assert _revoke(browser.client, rp, tokens["access_token"], method="client_secret_post").status_code == 200
    assert userinfo(browser.client, tokens["access_token"]).status_code == 401


def test_revoke_unknown_token_is_200(client, rp):
    response = _revoke(client, rp, "no-such-token")
    assert response.status_code == 200
    assert _revoke(client, rp, "no-such-token", "refresh_token").status_code == 200


def test_revoke_twice_is_200(browser, account, rp):
    tokens = _tokens(browser, account, rp)
    assert _revoke(browser.client, rp, tokens["refresh_token"]).status_code == 200
    assert _revoke(browser.client, rp, tokens["refresh_token"]).status_code == 200


@pytest.mark.parametrize("hint", ["id_token", "pct", "ACCESS_TOKEN"])
def test_revoke_unknown_hint_is_ignored(browser, account, rp, hint):
    # RFC 7009 §2.2: an invalid token type hint value does not influence the revocation response.
    tokens = _tokens(browser, account, rp)
    response = _revoke(browser.client, rp, tokens["refresh_token"], hint)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert refresh(browser.client, rp, tokens["refresh_token"]).status_code == 400
    assert userinfo(browser.client, tokens["access_token"]).status_code == 401


def test_revoke_without_token(client, rp):
    response = client.post("/revoke", **client_auth(rp, {}))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_revoke_needs_client_authentication(browser, account, rp):
    tokens = _tokens(browser, account, rp)
    anonymous = browser.client.post("/revoke", data={"token": tokens["access_token"]})
    assert anonymous.status_code == 401 and anonymous.get_json()["error"] == "invalid_client"
    wrong = _revoke(browser.client, dict(rp, client_secret="wrong"), tokens["access_token"])
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid_client"
    assert userinfo(browser.client, tokens["access_token"]).status_code == 200


def test_client_cannot_revoke_another_clients_token(browser, account, rp, make_rp):
    other = make_rp()
    tokens = _tokens(browser, account, rp)
    response = _revoke(browser.client, other, tokens["access_token"])
    assert response.status_code == 400
    assert userinfo(browser.client, tokens["access_token"]).status_code == 200
    assert refresh(browser.client, rp, tokens["refresh_token"]).status_code == 200


def test_public_client_revokes_its_own_token(browser, account, make_rp):
    public = public_rp(make_rp)
    tokens = _tokens(browser, account, public)
    assert _revoke(browser.client, public, tokens["refresh_token"]).status_code == 200
    assert refresh(browser.client, public, tokens["refresh_token"]).status_code == 400
    assert userinfo(browser.client, tokens["access_token"]).status_code == 401


@pytest.mark.parametrize("hint", [None, "access_token"])
def test_introspect_active_access_token(browser, account, rp, hint):
    tokens = _tokens(browser, account, rp)
    response = _introspect(browser.client, rp, tokens["access_token"], hint)
    assert response.status_code == 200
    body = response.get_json()
    assert body["active"] is True
    assert body["client_id"] == rp["client_id"]
    assert body["sub"] == account["sub"]
    assert set(body["scope"].split()) == {"openid", "profile", "offline_access"}
    assert body["exp"] > body["iat"]
    assert body["iss"] == "http://localhost"
    assert body["token_type"] == "Bearer"


def test_introspect_refresh_token(browser, account, rp):
    tokens = _tokens(browser, account, rp)
    body = _introspect(browser.client, rp, tokens["refresh_token"], "refresh_token").get_json()
    assert body["active"] is True and body["sub"] == account["sub"]
    assert body["token_type"] == "refresh_token"
    refresh(browser.client, rp, tokens["refresh_token"])
    # Rotated out: no longer active.
    assert _introspect(browser.client, rp, tokens["refresh_token"]).get_json() == {"active": False}


def test_introspect_inactive(browser, account, rp):
    tokens = _tokens(browser, account, rp)
    assert _introspect(browser.client, rp, "no-such-token").get_json() == {"active": False}
    _revoke(browser.client, rp, tokens["refresh_token"])
    assert _introspect(browser.client, rp, tokens["access_token"]).get_json() == {"active": False}
    assert _introspect(browser.client, rp, tokens["refresh_token"]).get_json() == {"active": False}


def test_introspect_only_own_tokens(browser, account, rp, make_rp):
    other = make_rp()
    tokens = _tokens(browser, account, rp)
    response = _introspect(browser.client, other, tokens["access_token"])
    assert response.status_code == 200
    assert response.get_json() == {"active": False}


def test_introspect_unknown_hint_is_ignored(browser, account, rp):
    tokens = _tokens(browser, account, rp)
    response = _introspect(browser.client, rp, tokens["access_token"], "id_token")
    assert response.status_code == 200
    assert response.get_json()["active"] is True


def test_introspect_without_token(client, rp):
    response = client.post("/introspect", **client_auth(rp, {}))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_introspect_refused_to_public_client(browser, account, make_rp):
    public = public_rp(make_rp)
    tokens = _tokens(browser, account, public)
    response = _introspect(browser.client, public, tokens["access_token"])
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_introspect_needs_client_authentication(browser, account, rp):
    tokens = _tokens(browser, account, rp)
    response = browser.client.post("/introspect", data={"token": tokens["access_token"]})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    wrong = _introspect(browser.client, dict(rp, client_secret="wrong"), tokens["access_token"])
    assert wrong.status_code == 401


def test_introspect_client_credentials_token(client, rp):
    issued = client.post("/token", **client_auth(rp, {"grant_type": "client_credentials", "scope": "patent"}))
    body = _introspect(client, rp, issued.get_json()["access_token"]).get_json()
    assert body["active"] is True and body["scope"] == "patent"
    assert "sub" not in body
