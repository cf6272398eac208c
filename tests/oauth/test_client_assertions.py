"""private_key_jwt and client_secret_jwt (RFC 7523 §2.2, OIDC Core §9): authlib's own client
authentication classes against the live provider, and the assertions it must refuse."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from base64 import urlsafe_b64encode
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.requests_client import OAuthError
from authlib.oauth2.rfc7523 import ClientSecretJWT
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import ECKey
from joserfc.jwk import RSAKey

from idp.oauth import client_auth

from ..outbound import network  # noqa: F401 - the fixture
from ._flow import ISSUER

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _key(kid: str = "k1") -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)


def _public_jwks(*keys) -> dict:
    return {"keys": [key.as_dict(private=False) for key in keys]}


def _assertion(key, client_id: str, *, aud=ISSUER + "/token", alg="RS256", lifetime=60, jti=None, **extra):
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + lifetime}
    claims["jti"] = jti or uuid.uuid4().hex
    claims.update(extra)
    header = {"alg": alg}
    if getattr(key, "kid", None):
        header["kid"] = key.kid
    return jwt.encode(header, claims, key, algorithms=[alg])


def _token(client, client_id: str, assertion: str, **extra):
    data = {
        "grant_type": "client_credentials",
        "scope": "profile",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        **extra,
    }
    return client.post("/token", data=data)


@pytest.fixture
def signing_key():
    return _key()


@pytest.fixture
def pkj_rp(make_rp, signing_key):
    return make_rp(auth_method="private_key_jwt", jwks=_public_jwks(signing_key))


def test_registration_of_a_private_key_jwt_client_has_no_secret(pkj_rp):
    assert pkj_rp["client_secret"] is None
    assert pkj_rp["token_endpoint_auth_method"] == "private_key_jwt"
    assert pkj_rp["jwks"]["keys"][0]["kid"] == "k1"


def test_authlib_private_key_jwt_client(live_server, pkj_rp, signing_key):
    token_url = live_server.url + "/token"
    session = OAuth2Session(
        pkj_rp["client_id"], signing_key, token_endpoint_auth_method=PrivateKeyJWT(token_url), scope="profile"
    )
    session.trust_env = False
    token = session.fetch_token(token_url, grant_type="client_credentials")
    assert token["token_type"] == "Bearer" and token["scope"] == "profile"
    # The same client with a shared-secret method is refused: it registered a key, not a secret.
    with pytest.raises(OAuthError) as refused:
        OAuth2Session(pkj_rp["client_id"], "guess").fetch_token(token_url, grant_type="client_credentials")
    assert refused.value.error == "invalid_client"


def test_authlib_client_secret_jwt_client(live_server, make_rp):
    rp = make_rp(auth_method="client_secret_jwt")
    assert rp["client_secret"]
    token_url = live_server.url + "/token"
    session = OAuth2Session(
        rp["client_id"],
        rp["client_secret"],
        token_endpoint_auth_method=ClientSecretJWT(token_url),
        scope="profile",
    )
    session.trust_env = False
    assert session.fetch_token(token_url, grant_type="client_credentials")["scope"] == "profile"
    wrong = OAuth2Session(
        rp["client_id"],
        "not-the-secret",
        token_endpoint_auth_method=ClientSecretJWT(token_url),
        scope="profile",
    )
    wrong.trust_env = False
    with pytest.raises(OAuthError) as refused:
        wrong.fetch_token(token_url, grant_type="client_credentials")
    assert refused.value.error == "invalid_client"


def test_the_issuer_is_an_accepted_audience(client, pkj_rp, signing_key):
    response = _token(client, pkj_rp["client_id"], _assertion(signing_key, pkj_rp["client_id"], aud=ISSUER))
    assert response.status_code == 200, response.get_json()


def test_a_replayed_assertion_is_refused(client, pkj_rp, signing_key):
    assertion = _assertion(signing_key, pkj_rp["client_id"])
    assert _token(client, pkj_rp["client_id"], assertion).status_code == 200
    again = _token(client, pkj_rp["client_id"], assertion)
    assert again.status_code in (400, 401) and again.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "change",
    [
        {"aud": "https://elsewhere.example/token"},
        {"lifetime": 7200},
        {"lifetime": -120},
        {"iss": "someone-else"},
    ],
    ids=["audience", "too-long", "expired", "issuer"],
)
def test_bad_assertions_are_invalid_client(client, pkj_rp, signing_key, change):
    change = dict(change)
    extra = {"iss": change.pop("iss")} if "iss" in change else {}
    assertion = _assertion(signing_key, pkj_rp["client_id"], **change, **extra)
    response = _token(client, pkj_rp["client_id"], assertion)
    assert response.status_code in (400, 401) and response.get_json()["error"] == "invalid_client"


def test_a_key_the_client_did_not_register_is_refused(client, pkj_rp):
    stranger = _key("k1")
    response = _token(client, pkj_rp["client_id"], _assertion(stranger, pkj_rp["client_id"]))
    assert response.get_json()["error"] == "invalid_client"


def test_hmac_with_the_public_key_is_refused(client, pkj_rp, signing_key):
    # The classic confusion: an HS256 assertion keyed with the client's public key material.
    # (joserfc will not even build such a key, so the JWS is put together by hand.)
    def b64(data: bytes) -> str:
        return urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    cid = pkj_rp["client_id"]
    claims = {"iss": cid, "sub": cid, "aud": ISSUER + "/token", "exp": now + 60, "jti": uuid.uuid4().hex}
    header = b64(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
    signing_input = header + "." + b64(json.dumps(claims).encode())
    secret = signing_key.as_pem(private=False)
    forged = signing_input + "." + b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
    response = _token(client, pkj_rp["client_id"], forged)
    assert response.get_json()["error"] == "invalid_client"


class _JwksServer:
    """A relying party's jwks_uri on 127.0.0.1, counting its fetches."""

    def __init__(self, document: dict):
        self.document = document
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.fetches += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks_server():
    client_auth._JWKS_CACHE.clear()
    served = _JwksServer({"keys": []})
    yield served
    served.close()
    client_auth._JWKS_CACHE.clear()


def test_jwks_uri_is_fetched_cached_and_refetched_for_a_new_kid(client, make_rp, jwks_server, network):
    first = ECKey.generate_key("P-256", parameters={"kid": "ec-1"}, private=True)
    jwks_server.document = _public_jwks(first)
    rp = make_rp(auth_method="private_key_jwt", jwks_uri=jwks_server.url)
    for _ in range(2):
        response = _token(client, rp["client_id"], _assertion(first, rp["client_id"], alg="ES256"))
        assert response.status_code == 200
    assert jwks_server.fetches == 1
    # The client rotates: a kid the cache does not hold is fetched (the cache is older than 10 s).
    second = ECKey.generate_key("P-256", parameters={"kid": "ec-2"}, private=True)
    jwks_server.document = _public_jwks(first, second)
    uri = jwks_server.url
    fetched_at, keyset = client_auth._JWKS_CACHE._sets[uri]
    client_auth._JWKS_CACHE._sets[uri] = (fetched_at - client_auth.REFETCH_INTERVAL - 1, keyset)
    response = _token(client, rp["client_id"], _assertion(second, rp["client_id"], alg="ES256"))
    assert response.status_code == 200
    assert jwks_server.fetches == 2
    assert network.outside == []


def test_jwks_uri_that_answers_garbage_is_invalid_client(client, make_rp, jwks_server):
    jwks_server.document = {"keys": "nope"}
    key = _key()
    rp = make_rp(auth_method="private_key_jwt", jwks_uri=jwks_server.url)
    response = _token(client, rp["client_id"], _assertion(key, rp["client_id"]))
    assert response.get_json()["error"] == "invalid_client"


def test_jwks_uri_must_pass_the_outbound_rules(make_rp):
    from idp.errors import ClientDataError

    with pytest.raises(ClientDataError) as refused:
        make_rp(auth_method="private_key_jwt", jwks_uri="https://10.0.0.5/jwks")
    assert refused.value.field == "jwks_uri"


@pytest.mark.parametrize(
    "jwks",
    [None, {"keys": []}, {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "private"],
    ids=["missing", "empty", "symmetric", "private"],
)
def test_private_key_jwt_needs_public_keys(make_rp, jwks):
    from idp.errors import ClientDataError

    if jwks == "private":
        jwks = {"keys": [_key().as_dict(private=True)]}
    with pytest.raises(ClientDataError) as refused:
        make_rp(auth_method="private_key_jwt", jwks=jwks)
    assert refused.value.field == "jwks"
