"""EdDSA (Ed25519, RFC 8037) signing keys beside RS256 and ES256: in JWKS as OKP keys, chosen per client
with id_token_signed_response_alg, rotated with the others; verified by authlib's client over HTTP."""

from __future__ import annotations

import json

from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from ..live import http_session
from ..live import sign_in
from ._flow import jwks
from ._flow import sign_in_for_tokens
from ._flow import verify_id_token

REDIRECT_URI = "https://rp.example/cb"


def test_jwks_publishes_an_okp_key(client):
    keys = [key for key in jwks(client)["keys"] if key["alg"] == "EdDSA"]
    assert len(keys) == 1
    (key,) = keys
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["use"] == "sig" and "d" not in key


def test_eddsa_client_gets_eddsa_id_tokens(browser, account, make_rp):
    ed = make_rp(id_token_alg="EdDSA")
    tokens, _ = sign_in_for_tokens(browser, account, ed)
    token = verify_id_token(browser.client, tokens["id_token"])
    assert token.header["alg"] == "EdDSA"
    published = {key["kid"]: key for key in jwks(browser.client)["keys"]}
    assert published[token.header["kid"]]["kty"] == "OKP"
    # at_hash with SHA-512 for Ed25519 (OIDC Core §3.1.3.6 via the hash of the curve), as authlib checks it.
    CodeIDToken(token.claims, token.header, params={"access_token": tokens["access_token"]}).validate()


def test_discovery_and_cli(app, client):
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256", "ES256", "EdDSA"]
    result = app.test_cli_runner().invoke(args=["keys", "list"])
    assert result.exit_code == 0 and " EdDSA " in result.output
    args = ["clients", "create", "--name", "Ed", "--redirect-uri", REDIRECT_URI, "--id-token-alg", "EdDSA"]
    created = app.test_cli_runner().invoke(args=[*args, "--json"])
    assert created.exit_code == 0, created.output
    assert json.loads(created.output)["id_token_signed_response_alg"] == "EdDSA"


def test_authlib_client_verifies_an_eddsa_id_token(live_server, account, make_rp):
    registered = make_rp(public=True, grant_types=["authorization_code"], id_token_alg="EdDSA")
    http = http_session()
    meta = http.get(live_server.url + "/.well-known/openid-configuration", timeout=10).json()
    rp = OAuth2Session(
        client_id=registered["client_id"],
        token_endpoint_auth_method="none",
        scope="openid",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    rp.trust_env = False
    verifier, nonce = generate_token(48), generate_token(20)
    url, _ = rp.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    callback = sign_in(http_session(), live_server.url, url, account["login"], account["password"])
    token = rp.fetch_token(
        meta["token_endpoint"], authorization_response=callback.headers["Location"], code_verifier=verifier
    )
    keyset = KeySet.import_key_set(http.get(meta["jwks_uri"], timeout=10).json())
    decoded = jwt.decode(token["id_token"], keyset, algorithms=meta["id_token_signing_alg_values_supported"])
    assert decoded.header["alg"] == "EdDSA"
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={"iss": {"essential": True, "value": meta["issuer"]}},
        params={"nonce": nonce, "access_token": token["access_token"], "client_id": registered["client_id"]},
    )
    claims.validate()
    assert claims["sub"] == account["sub"]
