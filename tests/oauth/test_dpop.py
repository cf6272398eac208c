"""DPoP (RFC 9449): proofs at the token endpoint and UserInfo, the key binding of access and refresh
tokens, replay, nonces, and what introspection says. Proofs are made here with joserfc, as a client
library makes them."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from joserfc.jwk import KeySet
from joserfc.jwk import OctKey

from ._flow import ISSUER
from ._flow import REDIRECT_URI
from ._flow import Authorized
from ._flow import auth_params
from ._flow import authorize
from ._flow import client_auth
from ._flow import is_login_page
from ._flow import jwks
from ._flow import public_rp

TOKEN_URL = ISSUER + "/token"
USERINFO_URL = ISSUER + "/userinfo"


def _key() -> ECKey:
    return ECKey.generate_key("P-256", private=True)


def proof(key, htm: str, htu: str, *, access_token=None, nonce=None, iat=None, jti=None, header=None, **more):
    body = {"jti": jti or uuid.uuid4().hex, "htm": htm, "htu": htu, "iat": int(iat or time.time())}
    if access_token is not None:
        digest = hashlib.sha256(access_token.encode()).digest()
        body["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    if nonce is not None:
        body["nonce"] = nonce
    body.update(more)
    head = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    head.update(header or {})
    return jwt.encode(head, body, key, algorithms=[head["alg"]])


def _redeem(client, rp, done, key, **extra):
    data = {
        "grant_type": "authorization_code",
        "code": done.code,
        "redirect_uri": done.request["redirect_uri"],
        "code_verifier": done.verifier,
    }
    headers = {"DPoP": proof(key, "POST", TOKEN_URL)} if key is not None else {}
    return client.post("/token", headers=headers, **client_auth(rp, data))


def _tokens(browser, account, rp, key, scope="openid profile offline_access"):
    done = authorize(browser, rp, account, scope=scope)
    response = _redeem(browser.client, rp, done, key)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _userinfo(client, token, key=None, scheme="DPoP", **proof_args):
    headers = {"Authorization": f"{scheme} {token}"}
    if key is not None:
        headers["DPoP"] = proof(key, "GET", USERINFO_URL, access_token=token, **proof_args)
    return client.get("/userinfo", headers=headers)


def _refresh(client, rp, refresh_token, key):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    headers = {"DPoP": proof(key, "POST", TOKEN_URL)} if key is not None else {}
    return client.post("/token", headers=headers, **client_auth(rp, data))


def test_bound_tokens_work_only_with_their_key(browser, account, rp):
    key = _key()
    tokens = _tokens(browser, account, rp, key)
    assert tokens["token_type"] == "DPoP"
    client = browser.client
    assert _userinfo(client, tokens["access_token"], key).status_code == 200
    # RFC 9449 §7.2: as a bearer token it is refused.
    as_bearer = client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert as_bearer.status_code == 401
    # Another key, or no proof at all.
    other = _userinfo(client, tokens["access_token"], _key())
    assert other.status_code == 401 and "invalid_token" in other.headers["WWW-Authenticate"]
    missing = _userinfo(client, tokens["access_token"])
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith('DPoP error="invalid_dpop_proof"')


def test_introspection_reports_the_binding(browser, account, rp):
    key = _key()
    tokens = _tokens(browser, account, rp, key)
    answer = browser.client.post(
        "/introspect", data={"token": tokens["access_token"]}, auth=(rp["client_id"], rp["client_secret"])
    ).get_json()
    assert answer["active"] is True and answer["token_type"] == "DPoP"
    assert answer["cnf"] == {"jkt": key.thumbprint()}


def test_jwt_access_token_carries_cnf_jkt(browser, account, make_rp):
    rp = make_rp(access_token_format="jwt")
    key = _key()
    tokens = _tokens(browser, account, rp, key)
    claims = jwt.decode(
        tokens["access_token"], KeySet.import_key_set(jwks(browser.client)), algorithms=["RS256"]
    ).claims
    assert claims["cnf"] == {"jkt": key.thumbprint()}


def test_refresh_needs_the_same_key(browser, account, make_rp):
    rp = public_rp(make_rp)
    key = _key()
    tokens = _tokens(browser, account, rp, key)
    client = browser.client
    assert _refresh(client, rp, tokens["refresh_token"], None).get_json()["error"] == "invalid_dpop_proof"
    assert _refresh(client, rp, tokens["refresh_token"], _key()).get_json()["error"] == "invalid_dpop_proof"
    refreshed = _refresh(client, rp, tokens["refresh_token"], key)
    assert refreshed.status_code == 200, refreshed.get_json()
    assert refreshed.get_json()["token_type"] == "DPoP"
    assert _userinfo(client, refreshed.get_json()["access_token"], key).status_code == 200


def test_a_proof_is_used_once(browser, account, rp):
    key = _key()
    tokens = _tokens(browser, account, rp, key)
    headers = {
        "Authorization": "DPoP " + tokens["access_token"],
        "DPoP": proof(key, "GET", USERINFO_URL, access_token=tokens["access_token"]),
    }
    assert browser.client.get("/userinfo", headers=headers).status_code == 200
    replayed = browser.client.get("/userinfo", headers=headers)
    assert replayed.status_code == 401 and "invalid_dpop_proof" in replayed.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "make",
    [
        lambda k: proof(k, "GET", TOKEN_URL),
        lambda k: proof(k, "POST", ISSUER + "/userinfo"),
        lambda k: proof(k, "POST", TOKEN_URL, iat=time.time() - 300),
        lambda k: proof(k, "POST", TOKEN_URL, header={"typ": "JWT"}),
        lambda k: proof(k, "POST", TOKEN_URL, header={"jwk": k.as_dict(private=True)}),
        lambda k: proof(k, "POST", TOKEN_URL, jti=12345),
        lambda k: jwt.encode(
            {"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}},
            {"jti": "x", "htm": "POST", "htu": TOKEN_URL, "iat": int(time.time())},
            OctKey.import_key("secret-secret-secret-secret-secret"),
            algorithms=["HS256"],
        ),
        lambda k: "not-a-jwt",
    ],
    ids=["htm", "htu", "old-iat", "typ", "private-jwk", "no-jti", "hmac", "garbage"],
)
def test_bad_proofs_at_the_token_endpoint(browser, account, rp, make):
    done = authorize(browser, rp, account)
    data = {
        "grant_type": "authorization_code",
        "code": done.code,
        "redirect_uri": done.request["redirect_uri"],
        "code_verifier": done.verifier,
    }
    response = browser.client.post("/token", headers={"DPoP": make(_key())}, **client_auth(rp, data))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_dpop_proof"


def test_a_client_registered_for_dpop_must_send_a_proof(browser, account, make_rp):
    rp = make_rp(dpop_bound=True)
    assert rp["dpop_bound_access_tokens"] is True
    done = authorize(browser, rp, account)
    response = _redeem(browser.client, rp, done, None)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_dpop_proof"
    done = authorize(browser, rp, account)
    assert _redeem(browser.client, rp, done, _key()).get_json()["token_type"] == "DPoP"


@pytest.mark.config(dpop={"require_nonce": True})
def test_nonces_when_required(browser, account, rp):
    key = _key()
    done = authorize(browser, rp, account)
    first = _redeem(browser.client, rp, done, key)
    assert first.status_code == 400 and first.get_json()["error"] == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    data = {
        "grant_type": "authorization_code",
        "code": done.code,
        "redirect_uri": done.request["redirect_uri"],
        "code_verifier": done.verifier,
    }
    headers = {"DPoP": proof(key, "POST", TOKEN_URL, nonce=nonce)}
    second = browser.client.post("/token", headers=headers, **client_auth(rp, data))
    assert second.status_code == 200, second.get_json()
    nonce = second.headers["DPoP-Nonce"]
    token = second.get_json()["access_token"]
    without = _userinfo(browser.client, token, key)
    assert without.status_code == 401 and 'error="use_dpop_nonce"' in without.headers["WWW-Authenticate"]
    assert without.headers["DPoP-Nonce"]
    assert _userinfo(browser.client, token, key, nonce=nonce).status_code == 200
    forged = _userinfo(browser.client, token, key, nonce=nonce[:-2] + "AA")
    assert forged.status_code == 401


def test_discovery_advertises_dpop(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["dpop_signing_alg_values_supported"] == ["ES256", "RS256", "PS256", "EdDSA"]


@pytest.mark.config(dpop={"enabled": False})
def test_dpop_off(client, browser, account, rp):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert "dpop_signing_alg_values_supported" not in meta
    tokens = _tokens(browser, account, rp, _key())
    # The header is ignored: a bearer token.
    assert tokens["token_type"] == "Bearer"


PAR_URL = ISSUER + "/par"


def _jkt(key) -> str:
    return key.thumbprint()


def _push(client, rp, params: dict, headers=None):
    auth = (rp["client_id"], rp["client_secret"])
    return client.post("/par", data=params, headers=headers or {}, auth=auth)


def _authorize_pushed(browser, account, rp, request_uri: str):
    response = browser.authorize(client_id=rp["client_id"], request_uri=request_uri)
    if is_login_page(response):
        response = browser.sign_in(account["login"], account["password"], page=response)
    return Authorized({"redirect_uri": REDIRECT_URI}, None, response)


def test_dpop_jkt_binds_the_code_to_its_key(browser, account, rp):
    key, other = _key(), _key()
    done = authorize(browser, rp, account, dpop_jkt=_jkt(key))
    # RFC 9449 §10: another key, or no proof at all, cannot redeem it...
    for wrong in (other, None):
        refused = _redeem(browser.client, rp, done, wrong)
        assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    # ...and the refusal does not spend the code: the client holding the key still redeems it.
    tokens = _redeem(browser.client, rp, done, key)
    assert tokens.status_code == 200, tokens.get_json()
    assert tokens.get_json()["token_type"] == "DPoP"
    introspected = browser.client.post(
        "/introspect",
        data={"token": tokens.get_json()["access_token"]},
        auth=(rp["client_id"], rp["client_secret"]),
    ).get_json()
    assert introspected["cnf"]["jkt"] == _jkt(key)


@pytest.mark.parametrize("value", ["", "short", "a" * 42 + "!", "a" * 44])
def test_a_malformed_dpop_jkt_is_invalid_request(browser, account, rp, value):
    result = authorize(browser, rp, account, dpop_jkt=value).result
    assert result["error"] == "invalid_request" and "dpop_jkt" in result["error_description"]


def test_a_dpop_proof_at_par_binds_the_code(browser, account, rp):
    key, other = _key(), _key()
    params, verifier = auth_params(rp)
    pushed = _push(browser.client, rp, params, {"DPoP": proof(key, "POST", PAR_URL)})
    assert pushed.status_code == 201, pushed.get_json()
    done = _authorize_pushed(browser, account, rp, pushed.get_json()["request_uri"])
    done.verifier = verifier
    refused = _redeem(browser.client, rp, done, other)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert _redeem(browser.client, rp, done, key).get_json()["token_type"] == "DPoP"


def test_dpop_jkt_in_a_pushed_request_binds_the_code(browser, account, rp):
    key, other = _key(), _key()
    params, verifier = auth_params(rp, dpop_jkt=_jkt(key))
    pushed = _push(browser.client, rp, params)
    assert pushed.status_code == 201, pushed.get_json()
    done = _authorize_pushed(browser, account, rp, pushed.get_json()["request_uri"])
    done.verifier = verifier
    assert _redeem(browser.client, rp, done, other).get_json()["error"] == "invalid_grant"
    assert _redeem(browser.client, rp, done, key).status_code == 200


def test_par_refuses_a_dpop_jkt_of_another_key_than_its_proof(client, rp):
    key, other = _key(), _key()
    params, _ = auth_params(rp, dpop_jkt=_jkt(other))
    response = _push(client, rp, params, {"DPoP": proof(key, "POST", PAR_URL)})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_dpop_proof"
    # A proof for another endpoint (htu) is no proof for the push.
    params, _ = auth_params(rp)
    response = _push(client, rp, params, {"DPoP": proof(key, "POST", TOKEN_URL)})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_dpop_proof"


@pytest.mark.config(dpop={"require_nonce": True})
def test_par_asks_for_a_dpop_nonce_when_required(client, rp):
    key = _key()
    params, _ = auth_params(rp)
    first = _push(client, rp, params, {"DPoP": proof(key, "POST", PAR_URL)})
    assert first.status_code == 400 and first.get_json()["error"] == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    second = _push(client, rp, params, {"DPoP": proof(key, "POST", PAR_URL, nonce=nonce)})
    assert second.status_code == 201, second.get_json()
    assert second.headers["DPoP-Nonce"]


@pytest.mark.config(dpop={"enabled": False})
def test_dpop_jkt_is_ignored_with_dpop_off(browser, account, rp):
    done = authorize(browser, rp, account, dpop_jkt=_jkt(_key()))
    assert _redeem(browser.client, rp, done, None).status_code == 200
