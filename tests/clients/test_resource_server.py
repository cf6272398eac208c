"""The resource-server example (clients/resource_server): the provider's JWT access tokens checked offline
against its JWKS, and DPoP-bound ones with their proofs."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from clients import resource_server

from ..live import http_session

API = "http://127.0.0.1:5003/api"
ME = "http://localhost/api/me"


def _proof(key, htm, htu, access_token=None, **more):
    claims = {"jti": uuid.uuid4().hex, "htm": htm, "htu": htu, "iat": int(time.time()), **more}
    if access_token is not None:
        digest = hashlib.sha256(access_token.encode()).digest()
        claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    return jwt.encode(header, claims, key, algorithms=["ES256"])


@pytest.fixture
def api(live_server):
    app = resource_server.create_app(live_server.url, API, session=http_session())
    return app.test_client()


@pytest.fixture
def rp(make_rp):
    return make_rp(access_token_format="jwt", resources=[API], scope="openid profile phone")


def _token(live_server, rp, *, resource=API, dpop_key=None, scope="profile"):
    data = {"grant_type": "client_credentials", "scope": scope}
    if resource:
        data["resource"] = resource
    headers = {"DPoP": _proof(dpop_key, "POST", live_server.url + "/token")} if dpop_key else {}
    answer = http_session().post(
        live_server.url + "/token",
        data=data,
        headers=headers,
        auth=(rp["client_id"], rp["client_secret"]),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def test_a_bearer_jwt_for_this_api(live_server, api, rp):
    token = _token(live_server, rp)
    answer = api.get("/api/me", headers={"Authorization": "Bearer " + token})
    assert answer.status_code == 200, answer.get_json()
    expected = {"sub": rp["client_id"], "client_id": rp["client_id"], "scope": "profile", "bound": False}
    assert answer.get_json() == expected


def test_tokens_this_api_refuses(live_server, api, rp, make_rp):
    other_audience = _token(live_server, rp, resource=None)
    assert api.get("/api/me", headers={"Authorization": "Bearer " + other_audience}).status_code == 401
    token = _token(live_server, rp)
    head, body, signature = token.split(".")
    tampered = ".".join([head, body, signature[::-1]])
    refused = api.get("/api/me", headers={"Authorization": "Bearer " + tampered})
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    opaque_rp = make_rp(name="Непрозрачный")
    opaque = http_session().post(
        live_server.url + "/token",
        data={"grant_type": "client_credentials", "scope": "profile"},
        auth=(opaque_rp["client_id"], opaque_rp["client_secret"]),
        timeout=10,
    )
    opaque_token = opaque.json()["access_token"]
    assert api.get("/api/me", headers={"Authorization": "Bearer " + opaque_token}).status_code == 401
    no_scope = _token(live_server, rp, scope="phone")
    assert api.get("/api/me", headers={"Authorization": "Bearer " + no_scope}).status_code == 403
    assert api.get("/api/me").status_code == 401


def test_a_dpop_bound_jwt_needs_its_proof(live_server, api, rp):
    key = ECKey.generate_key("P-256", private=True)
    token = _token(live_server, rp, dpop_key=key)
    proof = _proof(key, "GET", ME, access_token=token)
    ok = api.get("/api/me", headers={"Authorization": "DPoP " + token, "DPoP": proof})
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["bound"] is True
    # The same proof again, the token as a bearer token, a proof by another key, or for another token.
    replay = api.get("/api/me", headers={"Authorization": "DPoP " + token, "DPoP": proof})
    assert replay.status_code == 401 and 'error="invalid_dpop_proof"' in replay.headers["WWW-Authenticate"]
    assert api.get("/api/me", headers={"Authorization": "Bearer " + token}).status_code == 401
    stranger = ECKey.generate_key("P-256", private=True)
    for bad in (
        _proof(stranger, "GET", ME, access_token=token),
        _proof(key, "GET", ME, access_token="another token"),
        _proof(key, "GET", ME + "/other", access_token=token),
        _proof(key, "POST", ME, access_token=token),
    ):
        assert api.get("/api/me", headers={"Authorization": "DPoP " + token, "DPoP": bad}).status_code == 401


def test_the_jwks_is_cached(live_server, api, rp):
    for _ in range(3):
        token = _token(live_server, rp)
        assert api.get("/api/me", headers={"Authorization": "Bearer " + token}).status_code == 200
    assert api.application.extensions["resource_server"].fetches == 1
