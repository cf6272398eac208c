"""The ID token (OIDC Core §2, §3.1.3.6-§3.1.3.7): conformance "Basic OP" oidcc-server, oidcc-idtoken-*,
oidcc-ensure-request-without-nonce-succeeds-for-code-flow."""

import base64
import hashlib
import time

from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from ._flow import ISSUER
from ._flow import age_sso_sessions
from ._flow import authorize
from ._flow import jwks
from ._flow import redeem
from ._flow import sign_in_for_tokens
from ._flow import sso_auth_times
from ._flow import verify_id_token


def _at_hash(access_token: str) -> str:
    half = hashlib.sha256(access_token.encode("ascii")).digest()[:16]
    return base64.urlsafe_b64encode(half).rstrip(b"=").decode()


def test_id_token_signature_and_claims(browser, account, rp):
    before = int(time.time())
    tokens, done = sign_in_for_tokens(browser, account, rp)
    after = int(time.time())
    token = verify_id_token(browser.client, tokens["id_token"])
    claims, header = token.claims, token.header

    assert header["alg"] == "RS256" and header["kid"]
    assert claims["iss"] == ISSUER
    assert claims["aud"] == rp["client_id"]
    assert claims["sub"] == account["sub"]
    assert before <= claims["iat"] <= after
    assert claims["exp"] > claims["iat"]
    assert before <= claims["auth_time"] <= after
    assert claims["nonce"] == done.request["nonce"]
    assert claims["amr"] == ["pwd"]
    assert isinstance(claims["sid"], str) and claims["sid"]
    assert claims["at_hash"] == _at_hash(tokens["access_token"])

    options = {
        "iss": {"essential": True, "value": ISSUER},
        "aud": {"essential": True, "value": rp["client_id"]},
        "sub": {"essential": True, "value": account["sub"]},
        "nonce": {"essential": True, "value": done.request["nonce"]},
    }
    params = {"access_token": tokens["access_token"], "nonce": done.request["nonce"]}
    CodeIDToken(claims, header, options=options, params=params).validate()


def test_id_token_does_not_verify_with_a_foreign_key(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp)
    header = verify_id_token(browser.client, tokens["id_token"]).header
    foreign = KeySet.generate_key_set("RSA", 2048, parameters={"kid": header["kid"]}, count=1)
    try:
        jwt.decode(tokens["id_token"], foreign, algorithms=["RS256"])
    except Exception as error:  # noqa: BLE001 - any verification failure will do
        assert "signature" in type(error).__name__.lower() or "signature" in str(error).lower()
    else:
        raise AssertionError("an ID token verified with a key that did not sign it")


def test_at_hash_matches_authlib(browser, account, rp):
    tokens, done = sign_in_for_tokens(browser, account, rp)
    token = verify_id_token(browser.client, tokens["id_token"])
    wrong = CodeIDToken(token.claims, token.header, params={"access_token": tokens["access_token"] + "x"})
    try:
        wrong.validate()
    except Exception as error:  # noqa: BLE001
        assert "at_hash" in str(error)
    else:
        raise AssertionError("at_hash matched an access token it was not computed from")


def test_no_nonce_when_not_sent(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp, nonce=None)
    claims = verify_id_token(browser.client, tokens["id_token"]).claims
    assert "nonce" not in claims
    assert claims["sub"] == account["sub"]


def test_id_token_carries_no_profile_claims(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid profile phone patent")
    claims = verify_id_token(browser.client, tokens["id_token"]).claims
    assert not {"name", "family_name", "phone_number", "patent_application_number"} & set(claims)


def test_es256_client(browser, account, make_rp):
    es = make_rp(id_token_alg="ES256")
    tokens, _ = sign_in_for_tokens(browser, account, es)
    header = verify_id_token(browser.client, tokens["id_token"]).header
    assert header["alg"] == "ES256"
    published = {key["kid"]: key for key in jwks(browser.client)["keys"]}
    assert header["kid"] in published
    assert published[header["kid"]]["alg"] == "ES256"
    assert published[header["kid"]]["kty"] == "EC" and published[header["kid"]]["crv"] == "P-256"


def test_rs256_kid_is_an_rs256_key(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp)
    header = verify_id_token(browser.client, tokens["id_token"]).header
    published = {key["kid"]: key for key in jwks(browser.client)["keys"]}
    assert published[header["kid"]]["alg"] == "RS256" and published[header["kid"]]["kty"] == "RSA"


def test_auth_time_is_the_sign_in_time(app, browser, account, rp, clock):
    before = int(time.time())
    done = authorize(browser, rp, account)
    after = int(time.time())
    [signed_in_at] = sso_auth_times(app)
    assert before <= signed_in_at <= after

    # The token is issued later than the sign-in (within the code's lifetime); auth_time stays put.
    clock.now = after + 30
    response = redeem(browser.client, rp, done.code, done.verifier)
    assert response.status_code == 200, response.get_json()
    claims = verify_id_token(browser.client, response.get_json()["id_token"]).claims
    assert claims["iat"] == after + 30
    assert claims["auth_time"] == signed_in_at


def test_sso_reuse_keeps_auth_time_and_sid(app, browser, account, rp):
    first, _ = sign_in_for_tokens(browser, account, rp)
    # A later authorization answered from the SSO session, after the session was "older".
    age_sso_sessions(app, 50)
    [signed_in_at] = sso_auth_times(app)
    second, _ = sign_in_for_tokens(browser, account, rp)
    one = verify_id_token(browser.client, first["id_token"]).claims
    two = verify_id_token(browser.client, second["id_token"]).claims
    assert two["auth_time"] == signed_in_at == one["auth_time"] - 50
    assert two["sid"] == one["sid"]
    assert two["iat"] >= one["iat"]


def test_each_user_gets_own_sub(browser, account, make_account, rp, app):
    other = make_account(login="77-0000002")
    assert other["sub"] != account["sub"]
    tokens, _ = sign_in_for_tokens(browser, other, rp)
    assert verify_id_token(browser.client, tokens["id_token"]).claims["sub"] == other["sub"]
