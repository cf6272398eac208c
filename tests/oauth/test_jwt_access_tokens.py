"""RFC 9068 JWT access tokens and RFC 8707 resource indicators: what a resource server checks offline,
and what the provider still answers from its store (introspection, revocation, UserInfo)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.requests_client import OAuthError
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import Token

from ..helpers import query
from ..live import http_session
from ..live import sign_in
from ._flow import ISSUER
from ._flow import Authorized
from ._flow import auth_params
from ._flow import authorize
from ._flow import bearer
from ._flow import is_login_page
from ._flow import jwks
from ._flow import redeem
from ._flow import refresh
from ._flow import sign_in_for_tokens
from ._flow import userinfo

API = "https://api.rp.example/v1"
OTHER_API = "https://other.rp.example"


def _decode(client, token: str):
    """What a resource server does: verify the signature by the kid of the published JWKS."""
    decoded = jwt.decode(token, KeySet.import_key_set(jwks(client)), algorithms=["RS256"])
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.header["kid"] in {key["kid"] for key in jwks(client)["keys"]}
    return decoded.claims


def _introspect(client, rp, token):
    return client.post("/introspect", data={"token": token}, auth=(rp["client_id"], rp["client_secret"]))


@pytest.fixture
def jwt_rp(make_rp):
    return make_rp(access_token_format="jwt", resources=[API])


def test_jwt_access_token_claims_and_signature(browser, account, jwt_rp, app):
    tokens, _ = sign_in_for_tokens(browser, account, jwt_rp, scope="openid profile offline_access")
    claims = _decode(browser.client, tokens["access_token"])
    assert claims["iss"] == ISSUER
    # Without a resource indicator: the issuer ([access_tokens] audience is empty).
    assert claims["aud"] == ISSUER
    assert claims["client_id"] == jwt_rp["client_id"]
    assert claims["scope"] == "openid profile offline_access"
    assert claims["sub"] == userinfo(browser.client, tokens["access_token"]).get_json()["sub"]
    assert claims["exp"] - claims["iat"] == tokens["expires_in"] == 600
    assert len(claims["jti"]) >= 32
    assert tokens["token_type"] == "Bearer"
    # Stored as a digest with its jti: the store can answer for it.
    with app.app_context():
        row = db.session.scalar(db.select(Token).filter_by(jti=claims["jti"]))
        assert row is not None and row.audience == ISSUER


def test_introspection_and_revocation_of_a_jwt_access_token(browser, account, jwt_rp):
    tokens, _ = sign_in_for_tokens(browser, account, jwt_rp)
    client = browser.client
    answer = _introspect(client, jwt_rp, tokens["access_token"]).get_json()
    assert answer["active"] is True and answer["aud"] == ISSUER and answer["client_id"] == jwt_rp["client_id"]
    assert answer["token_type"] == "Bearer"
    revoked = client.post(
        "/revoke", data={"token": tokens["access_token"]}, auth=(jwt_rp["client_id"], jwt_rp["client_secret"])
    )
    assert revoked.status_code == 200
    assert _introspect(client, jwt_rp, tokens["access_token"]).get_json() == {"active": False}
    # The signature still verifies offline (RFC 9068 §6: revocation needs introspection), but the
    # provider's own resource refuses it.
    assert _decode(client, tokens["access_token"])["client_id"] == jwt_rp["client_id"]
    assert userinfo(client, tokens["access_token"]).status_code == 401


def test_resource_indicator_chooses_the_audience_and_a_refresh_keeps_it(browser, account, jwt_rp):
    done = authorize(browser, jwt_rp, account, scope="openid offline_access")
    response = redeem(browser.client, jwt_rp, done.code, done.verifier, resource=API)
    assert response.status_code == 200, response.get_json()
    tokens = response.get_json()
    assert _decode(browser.client, tokens["access_token"])["aud"] == API
    assert _introspect(browser.client, jwt_rp, tokens["access_token"]).get_json()["aud"] == API
    refreshed = refresh(browser.client, jwt_rp, tokens["refresh_token"]).get_json()
    assert _decode(browser.client, refreshed["access_token"])["aud"] == API


@pytest.mark.parametrize(
    "resource",
    [OTHER_API, API + "#frag", "relative/path", ISSUER],
    ids=["unlisted", "fragment", "relative", "issuer"],
)
def test_a_resource_the_client_may_not_name_is_invalid_target(browser, account, jwt_rp, resource):
    done = authorize(browser, jwt_rp, account)
    response = redeem(browser.client, jwt_rp, done.code, done.verifier, resource=resource)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_target"


def test_client_credentials_jwt_has_the_client_as_subject(client, jwt_rp):
    response = client.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "profile", "resource": API},
        auth=(jwt_rp["client_id"], jwt_rp["client_secret"]),
    )
    assert response.status_code == 200, response.get_json()
    claims = _decode(client, response.get_json()["access_token"])
    assert claims["sub"] == jwt_rp["client_id"] and claims["aud"] == API and claims["scope"] == "profile"


@pytest.mark.config(access_tokens={"audience": "https://resources.example"})
def test_configured_default_audience(browser, account, jwt_rp):
    tokens, _ = sign_in_for_tokens(browser, account, jwt_rp)
    assert _decode(browser.client, tokens["access_token"])["aud"] == "https://resources.example"


def test_opaque_is_the_default_and_stays_opaque(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp)
    assert tokens["access_token"].count(".") == 0
    answer = _introspect(browser.client, rp, tokens["access_token"]).get_json()
    assert answer["aud"] == rp["client_id"]
    assert userinfo(browser.client, tokens["access_token"]).status_code == 200


def test_a_forged_jwt_is_unknown_to_the_store(browser, account, jwt_rp):
    tokens, _ = sign_in_for_tokens(browser, account, jwt_rp)
    header, payload, signature = tokens["access_token"].split(".")
    forged = ".".join([header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])
    assert browser.client.get("/userinfo", headers=bearer(forged)).status_code == 401


THIRD_API = "https://third.rp.example/api"


@pytest.fixture
def multi_rp(make_rp):
    return make_rp(access_token_format="jwt", resources=[API, OTHER_API, THIRD_API])


def _authorize_for(browser, account, rp, resources: list[str], **extra):
    """An authorization request naming ``resources`` (RFC 8707 §2: the parameter may be repeated)."""
    params, verifier = auth_params(rp, scope="openid offline_access", **extra)
    response = browser.follow(
        browser.client.get("/authorize?" + urlencode({**params, "resource": resources}, doseq=True))
    )
    if is_login_page(response):
        response = browser.sign_in(account["login"], account["password"], page=response)
    return Authorized(params, verifier, response)


def test_resource_at_authorize_is_the_audience_of_the_code_s_tokens(browser, account, jwt_rp):
    done = _authorize_for(browser, account, jwt_rp, [API])
    response = redeem(browser.client, jwt_rp, done.code, done.verifier)
    assert response.status_code == 200, response.get_json()
    tokens = response.get_json()
    assert _decode(browser.client, tokens["access_token"])["aud"] == API
    assert _introspect(browser.client, jwt_rp, tokens["access_token"]).get_json()["aud"] == API
    refreshed = refresh(browser.client, jwt_rp, tokens["refresh_token"]).get_json()
    assert _decode(browser.client, refreshed["access_token"])["aud"] == API


def test_the_token_endpoint_narrows_to_a_granted_resource_only(browser, account, multi_rp):
    done = _authorize_for(browser, account, multi_rp, [API, OTHER_API])
    # RFC 8707 §2.2: THIRD_API is one the client may name, but it was not granted with this code.
    outside = redeem(browser.client, multi_rp, done.code, done.verifier, resource=THIRD_API)
    assert outside.status_code == 400 and outside.get_json()["error"] == "invalid_target"
    response = redeem(browser.client, multi_rp, done.code, done.verifier, resource=OTHER_API)
    assert response.status_code == 200, response.get_json()
    tokens = response.get_json()
    assert _decode(browser.client, tokens["access_token"])["aud"] == OTHER_API
    # The refresh token keeps the granted resources: another granted one is fine, an ungranted one is not.
    refreshed = refresh(browser.client, multi_rp, tokens["refresh_token"], resource=API)
    assert refreshed.status_code == 200, refreshed.get_json()
    assert _decode(browser.client, refreshed.get_json()["access_token"])["aud"] == API
    refused = refresh(browser.client, multi_rp, refreshed.get_json()["refresh_token"], resource=THIRD_API)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_target"


def test_several_granted_resources_are_all_the_audience(browser, account, multi_rp):
    done = _authorize_for(browser, account, multi_rp, [API, OTHER_API])
    tokens = redeem(browser.client, multi_rp, done.code, done.verifier).get_json()
    assert _decode(browser.client, tokens["access_token"])["aud"] == [API, OTHER_API]
    answer = _introspect(browser.client, multi_rp, tokens["access_token"]).get_json()
    assert answer["aud"] == [API, OTHER_API]


@pytest.mark.parametrize(
    "resource",
    [OTHER_API, API + "#frag", "relative/path", ISSUER],
    ids=["unlisted", "fragment", "relative", "issuer"],
)
def test_a_resource_at_authorize_the_client_may_not_name_is_invalid_target(
    browser, account, jwt_rp, resource
):
    done = _authorize_for(browser, account, jwt_rp, [API, resource])
    result = done.result
    assert result["error"] == "invalid_target" and result["state"] == done.request["state"]


def test_resource_in_a_pushed_request(browser, account, jwt_rp):
    auth = (jwt_rp["client_id"], jwt_rp["client_secret"])
    params, verifier = auth_params(jwt_rp, resource=OTHER_API)
    refused = browser.client.post("/par", data=params, auth=auth)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_target"
    params, verifier = auth_params(jwt_rp, resource=API)
    pushed = browser.client.post("/par", data=params, auth=auth)
    assert pushed.status_code == 201, pushed.get_json()
    response = browser.authorize(client_id=jwt_rp["client_id"], request_uri=pushed.get_json()["request_uri"])
    response = browser.sign_in(account["login"], account["password"], page=response)
    code = Authorized(params, verifier, response).code
    tokens = redeem(browser.client, jwt_rp, code, verifier).get_json()
    assert _decode(browser.client, tokens["access_token"])["aud"] == API


def _rp_session(registered: dict) -> OAuth2Session:
    rp = OAuth2Session(
        client_id=registered["client_id"],
        client_secret=registered["client_secret"],
        token_endpoint_auth_method="client_secret_basic",
        scope="openid offline_access",
        redirect_uri="https://rp.example/cb",
        code_challenge_method="S256",
    )
    rp.trust_env = False
    return rp


def _token_request(rp: OAuth2Session, url: str, params: list[tuple[str, str]]):
    """A token request with repeated ``resource`` parameters (RFC 8707 §2.2), authenticated and parsed by
    authlib's client. Its fetch_token and refresh_token send the form as a dict (one value per name), so
    the form goes out as a list of pairs through the session, and the answer is parsed by authlib."""
    response = rp.post(url, data=params, auth=rp.client_auth(rp.token_endpoint_auth_method), timeout=10)
    return rp.parse_response_token(response)


def _several(resources: list[str]) -> list[tuple[str, str]]:
    return [("resource", resource) for resource in resources]


def test_authlib_several_resources_at_the_token_endpoint(live_server, account, make_rp):
    """RFC 8707 §2.2 through authlib's client over HTTP: several resources at /token, each granted at
    /authorize; a subset narrows the token; one not granted among several is invalid_target."""
    registered = make_rp(access_token_format="jwt", resources=[API, OTHER_API, THIRD_API])
    http = http_session()
    meta = http.get(live_server.url + "/.well-known/openid-configuration", timeout=10).json()
    keys = KeySet.import_key_set(http.get(meta["jwks_uri"], timeout=10).json())
    rp = _rp_session(registered)
    verifier = generate_token(48)
    url, _ = rp.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier)
    url += "&" + urlencode(_several([API, OTHER_API]))
    callback = sign_in(http_session(), live_server.url, url, account["login"], account["password"])
    assert callback.status_code == 302, callback.text
    code = query(callback.headers["Location"])["code"]
    redeem_params = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", "https://rp.example/cb"),
        ("code_verifier", verifier),
    ]
    token_url = meta["token_endpoint"]
    # THIRD_API is one the client may name, but it was not granted with this code.
    with pytest.raises(OAuthError) as refused:
        _token_request(rp, token_url, redeem_params + _several([API, THIRD_API]))
    assert refused.value.error == "invalid_target"
    token = _token_request(rp, token_url, redeem_params + _several([OTHER_API, API]))
    assert jwt.decode(token["access_token"], keys).claims["aud"] == [OTHER_API, API]
    answer = http.post(
        meta["introspection_endpoint"],
        data={"token": token["access_token"]},
        auth=(registered["client_id"], registered["client_secret"]),
        timeout=10,
    ).json()
    assert answer["active"] and answer["aud"] == [OTHER_API, API]
    # A refresh naming a subset narrows the token (one is a string); the granted set stays for the next.
    refresh_params = [("grant_type", "refresh_token"), ("refresh_token", token["refresh_token"])]
    narrowed = _token_request(rp, token_url, refresh_params + _several([OTHER_API]))
    assert jwt.decode(narrowed["access_token"], keys).claims["aud"] == OTHER_API
    refresh_params = [("grant_type", "refresh_token"), ("refresh_token", narrowed["refresh_token"])]
    with pytest.raises(OAuthError) as refused:
        _token_request(rp, token_url, refresh_params + _several([API, THIRD_API]))
    assert refused.value.error == "invalid_target"
    both = _token_request(rp, token_url, refresh_params + _several([API, OTHER_API, API]))
    assert jwt.decode(both["access_token"], keys).claims["aud"] == [API, OTHER_API]


def test_authlib_several_resources_for_client_credentials(live_server, make_rp):
    """Without an authorization, each resource must be one the client may name (RFC 8707 §2)."""
    registered = make_rp(access_token_format="jwt", resources=[API, OTHER_API])
    http = http_session()
    meta = http.get(live_server.url + "/.well-known/openid-configuration", timeout=10).json()
    keys = KeySet.import_key_set(http.get(meta["jwks_uri"], timeout=10).json())
    rp = _rp_session(registered)
    params = [("grant_type", "client_credentials"), ("scope", "profile")]
    token = _token_request(rp, meta["token_endpoint"], params + _several([API, OTHER_API]))
    claims = jwt.decode(token["access_token"], keys).claims
    assert claims["aud"] == [API, OTHER_API] and claims["sub"] == registered["client_id"]
    for resources in ([API, THIRD_API], [API, API + "#f"]):
        with pytest.raises(OAuthError) as refused:
            _token_request(rp, meta["token_endpoint"], params + _several(resources))
        assert refused.value.error == "invalid_target", resources
    # Any other parameter repeated is still invalid_request (RFC 6749 §3.2).
    with pytest.raises(OAuthError) as refused:
        _token_request(rp, meta["token_endpoint"], params + [("scope", "profile")] + _several([API]))
    assert refused.value.error == "invalid_request"
