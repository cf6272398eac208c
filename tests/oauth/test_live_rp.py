"""A real relying party against the provider over HTTP: authlib's requests client does what a
deployed RP does, from discovery to logout, once as a confidential client and once as a public one."""

from __future__ import annotations

import json
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.requests_client import OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidClaimError
from joserfc.jwk import KeySet

from ..helpers import query
from ..live import follow_inside
from ..live import http_session
from ..live import sign_in

REDIRECT_URI = "https://rp.example/cb"
POST_LOGOUT_URI = "https://rp.example/bye"
SCOPE = "openid profile offline_access"


def _relying_party(registered: dict, public: bool) -> OAuth2Session:
    rp = OAuth2Session(
        client_id=registered["client_id"],
        client_secret=None if public else registered["client_secret"],
        token_endpoint_auth_method="none" if public else "client_secret_basic",
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    rp.trust_env = False
    return rp


def _verified_id_token(id_token: str, jwks: KeySet, meta: dict, client_id: str, *, nonce, access_token):
    """What an RP must check (OIDC Core §3.1.3.7): signature by a published key, iss, aud, nonce, at_hash."""
    decoded = jwt.decode(id_token, jwks, algorithms=meta["id_token_signing_alg_values_supported"])
    assert decoded.header["kid"] in {key.kid for key in jwks}
    options = {
        "iss": {"essential": True, "value": meta["issuer"]},
        "aud": {"essential": True, "value": client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
    if nonce:
        options["nonce"] = {"essential": True, "value": nonce}
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options=options,
        params={"nonce": nonce, "access_token": access_token, "client_id": client_id},
    )
    claims.validate()
    # authlib checks at_hash only when present; the provider must send it with every access token.
    assert "at_hash" in claims
    return claims, decoded


def _bearer(http, url: str, access_token: str):
    return http.get(url, headers={"Authorization": f"Bearer {access_token}"}, timeout=10)


@pytest.mark.parametrize("public", [False, True], ids=["confidential", "public"])
def test_authlib_relying_party_journey(live_server, account, make_rp, public):
    registered = make_rp(public=public, grant_types=["authorization_code", "refresh_token"])
    client_id = registered["client_id"]
    http = http_session()
    browser = http_session()
    rp = _relying_party(registered, public)

    # (1) Discovery, over HTTP, and everything in it on the issuer's origin.
    resp = http.get(live_server.url + "/.well-known/openid-configuration", timeout=10)
    assert resp.status_code == 200
    meta = resp.json()
    assert meta["issuer"] == live_server.url
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "end_session_endpoint",
    ):
        assert meta[name].startswith(live_server.url + "/"), name
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert "S256" in meta["code_challenge_methods_supported"]

    # (2) The authorization request: PKCE S256, state, nonce.
    verifier = generate_token(48)
    nonce = generate_token(20)
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    sent = query(url)
    assert sent["code_challenge_method"] == "S256" and sent["code_challenge"] and sent["nonce"] == nonce
    assert sent["state"] == state and sent["client_id"] == client_id

    # (3) The user signs in; (4) the browser comes back with code, state and iss.
    callback = sign_in(browser, live_server.url, url, account["login"], account["password"])
    assert callback.status_code == 302, callback.text
    location = callback.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    params = query(location)
    assert params["code"] and params["state"] == state
    assert params["iss"] == meta["issuer"]  # RFC 9207 §2.4: the RP compares it with the issuer it asked

    # (5) Code for tokens, with the verifier.
    token = rp.fetch_token(meta["token_endpoint"], authorization_response=location, code_verifier=verifier)
    assert token["token_type"].lower() == "bearer"
    assert token["access_token"] and token["refresh_token"] and token["id_token"]

    # (6) The ID token, checked against the JWKS fetched over HTTP.
    resp = http.get(meta["jwks_uri"], timeout=10)
    assert resp.status_code == 200
    jwks = KeySet.import_key_set(resp.json())
    claims, decoded = _verified_id_token(
        token["id_token"], jwks, meta, client_id, nonce=nonce, access_token=token["access_token"]
    )
    assert claims["sub"] == account["sub"]
    # The same checks refuse a token meant for another request or another access token.
    for params_override in ({"nonce": "another-nonce"}, {"access_token": "another-access-token"}):
        wrong = CodeIDToken(
            decoded.claims,
            decoded.header,
            params={
                "nonce": nonce,
                "access_token": token["access_token"],
                "client_id": client_id,
                **params_override,
            },
        )
        with pytest.raises(InvalidClaimError):
            wrong.validate()

    # (7) UserInfo names the same subject.
    resp = rp.get(meta["userinfo_endpoint"], timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["sub"] == claims["sub"]

    # (8) Refresh rotates the refresh token; the old one is then refused...
    first_refresh = token["refresh_token"]
    refreshed = rp.refresh_token(meta["token_endpoint"], refresh_token=first_refresh)
    assert refreshed["refresh_token"] != first_refresh
    assert refreshed["access_token"] != token["access_token"]
    refreshed_claims, _ = _verified_id_token(
        refreshed["id_token"], jwks, meta, client_id, nonce=None, access_token=refreshed["access_token"]
    )
    assert refreshed_claims["sub"] == claims["sub"] and "nonce" not in refreshed_claims
    assert _bearer(http, meta["userinfo_endpoint"], refreshed["access_token"]).status_code == 200
    # The rotated token is used in its turn, which ends the grace of the first ([oauth] refresh_grace:
    # a retry of a lost token response; tests/oauth/test_refresh.py).
    latest = rp.refresh_token(meta["token_endpoint"], refresh_token=refreshed["refresh_token"])
    assert latest["refresh_token"] not in (first_refresh, refreshed["refresh_token"])
    with pytest.raises(OAuthError) as replay:
        rp.refresh_token(meta["token_endpoint"], refresh_token=first_refresh)
    assert replay.value.error == "invalid_grant"
    # ...and, being a replay, it ends the whole family (RFC 9700 §4.14.2), the newest token too.
    assert _bearer(http, meta["userinfo_endpoint"], latest["access_token"]).status_code == 401
    with pytest.raises(OAuthError) as dead:
        rp.refresh_token(meta["token_endpoint"], refresh_token=latest["refresh_token"])
    assert dead.value.error == "invalid_grant"

    # The RP starts over; the user's session at the provider makes it silent.
    verifier = generate_token(48)
    nonce = generate_token(20)
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce, prompt="none"
    )
    silent = follow_inside(browser, browser.get(url, allow_redirects=False, timeout=10), live_server.url)
    assert silent.status_code == 302
    location = silent.headers["Location"]
    assert query(location)["iss"] == meta["issuer"] and "error" not in query(location)
    token = rp.fetch_token(meta["token_endpoint"], authorization_response=location, code_verifier=verifier)
    silent_claims, _ = _verified_id_token(
        token["id_token"], jwks, meta, client_id, nonce=nonce, access_token=token["access_token"]
    )
    assert silent_claims["sub"] == claims["sub"] and silent_claims["sid"] == claims["sid"]
    assert _bearer(http, meta["userinfo_endpoint"], token["access_token"]).status_code == 200

    # (9) Revocation: the access token stops working at UserInfo; the refresh token stops refreshing.
    resp = rp.revoke_token(meta["revocation_endpoint"], token["access_token"], token_type_hint="access_token")
    assert resp.status_code == 200, resp.text
    assert _bearer(http, meta["userinfo_endpoint"], token["access_token"]).status_code == 401
    resp = rp.revoke_token(
        meta["revocation_endpoint"], token["refresh_token"], token_type_hint="refresh_token"
    )
    assert resp.status_code == 200, resp.text
    with pytest.raises(OAuthError) as revoked:
        rp.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert revoked.value.error == "invalid_grant"

    # (10) RP-initiated logout back to the registered URI with the state; the session is gone after.
    resp = browser.get(
        meta["end_session_endpoint"],
        params={
            "id_token_hint": token["id_token"],
            "post_logout_redirect_uri": POST_LOGOUT_URI,
            "state": "bye-state",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 302, resp.text
    assert resp.headers["Location"].startswith(POST_LOGOUT_URI + "?")
    assert query(resp.headers["Location"]) == {"state": "bye-state"}
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"],
        code_verifier=generate_token(48),
        nonce=generate_token(20),
        prompt="none",
    )
    after = follow_inside(browser, browser.get(url, allow_redirects=False, timeout=10), live_server.url)
    assert after.status_code == 302
    assert after.headers["Location"].startswith(REDIRECT_URI + "?")
    params = query(after.headers["Location"])
    assert params["error"] == "login_required"
    assert params["state"] == state and params["iss"] == meta["issuer"]
    for session in (http, browser, rp):
        session.close()


API = "https://api.rp.example/v1"
OTHER_API = "https://other.rp.example"


def test_authlib_pushes_a_large_request_with_a_resource(live_server, account, make_rp):
    """authlib's client over HTTP: a pushed authorization request (RFC 9126) of about 8 KB with a resource
    indicator (RFC 8707), then the token endpoint narrowed to that resource only."""
    registered = make_rp(
        access_token_format="jwt",
        resources=[API, OTHER_API],
        grant_types=["authorization_code", "refresh_token"],
    )
    http = http_session()
    meta = http.get(live_server.url + "/.well-known/openid-configuration", timeout=10).json()
    rp = _relying_party(registered, public=False)
    verifier = generate_token(48)
    wanted = {"name": {"essential": True}, **{f"urn:example:claim:{n:04d}": None for n in range(150)}}
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"],
        code_verifier=verifier,
        nonce=generate_token(20),
        state="s" * 1500,
        claims=json.dumps({"userinfo": wanted}),
        resource=API,
    )
    params = query(url)
    assert len(urlsplit(url).query) > 7000 and params["resource"] == API
    # The push authenticates as the token request would (authlib's own client authentication).
    pushed = rp.post(
        meta["pushed_authorization_request_endpoint"],
        data=params,
        auth=rp.client_auth(rp.token_endpoint_auth_method),
        timeout=10,
    )
    assert pushed.status_code == 201, pushed.text
    request_uri = pushed.json()["request_uri"]
    authorization_url = (
        meta["authorization_endpoint"]
        + "?"
        + urlencode({"client_id": registered["client_id"], "request_uri": request_uri})
    )
    browser = http_session()
    callback = sign_in(browser, live_server.url, authorization_url, account["login"], account["password"])
    assert callback.status_code == 302, callback.text
    location = callback.headers["Location"]
    assert query(location)["state"] == state
    # RFC 8707 §2.2: OTHER_API is allowed to the client but was not granted with this code.
    with pytest.raises(OAuthError) as refused:
        rp.fetch_token(
            meta["token_endpoint"],
            authorization_response=location,
            code_verifier=verifier,
            resource=OTHER_API,
        )
    assert refused.value.error == "invalid_target"
    token = rp.fetch_token(meta["token_endpoint"], authorization_response=location, code_verifier=verifier)
    claims = jwt.decode(
        token["access_token"], KeySet.import_key_set(http.get(meta["jwks_uri"]).json())
    ).claims
    assert claims["aud"] == API
    userinfo = rp.get(meta["userinfo_endpoint"], timeout=10).json()
    assert userinfo["name"]
    # The request_uri was spent at the first use (RFC 9126 §4).
    again = follow_inside(browser, browser.get(authorization_url, allow_redirects=False), live_server.url)
    assert again.status_code == 400 and "invalid_request_uri" in again.text
