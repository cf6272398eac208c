"""/openapi.json (OpenAPI 3.1) against the provider's real answers: every described JSON body of every
endpoint a program calls is validated with jsonschema (Draft 2020-12, OpenAPI 3.1's dialect)."""

from __future__ import annotations

import time

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from idp.extensions import db
from idp.services import audit
from idp.services import registration

from ..helpers import pkce_pair
from ._flow import bearer
from ._flow import public_rp
from ._flow import refresh
from ._flow import sign_in_for_tokens

PATHS = {
    "/token": ["post"],
    "/introspect": ["post"],
    "/revoke": ["post"],
    "/userinfo": ["get", "post"],
    "/register": ["post"],
    "/register/{client_id}": ["get", "put", "delete"],
    "/device/authorize": ["post"],
    "/par": ["post"],
    "/.well-known/openid-configuration": ["get"],
    "/.well-known/oauth-authorization-server": ["get"],
    "/.well-known/oauth-authorization-server/{issuer_path}": ["get"],
    "/jwks.json": ["get"],
}
# The keys of a path item that are not operations (OpenAPI 3.1 §4.8.9).
NOT_METHODS = {"parameters", "servers", "summary", "description"}


@pytest.fixture
def spec(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def _check(spec: dict, path: str, method: str, response) -> None:
    """Validate ``response`` against what the description says of its status at that operation."""
    described = spec["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in described, (path, method, status, response.get_data(as_text=True)[:300])
    content = described[status].get("content")
    if content is None:
        return
    assert response.mimetype in content, (path, status, response.mimetype)
    schema = content[response.mimetype]["schema"]
    Draft202012Validator({**schema, "components": spec["components"]}).validate(response.get_json())


def test_the_description_is_openapi_3_1_with_valid_schemas(spec):
    assert spec["openapi"] == "3.1.0" and spec["servers"] == [{"url": "http://localhost"}]
    assert {path: sorted(m for m in ops if m not in NOT_METHODS) for path, ops in spec["paths"].items()} == {
        path: sorted(methods) for path, methods in PATHS.items()
    }
    for name, schema in spec["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema), name
    # Every $ref names a schema that exists.
    text = str(spec)
    for name in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in spec["components"]["schemas"], name
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in NOT_METHODS:
                assert op["responses"] and op["summary"], (path, method)


def test_the_schemas_can_fail(spec):
    # An honest check: a body that breaks the description is refused by the same validation.
    schema = {"$ref": "#/components/schemas/TokenResponse", "components": spec["components"]}
    with pytest.raises(ValidationError):
        Draft202012Validator(schema).validate({"access_token": "x", "token_type": "Bearer"})
    jwks = {"$ref": "#/components/schemas/JWKS", "components": spec["components"]}
    with pytest.raises(ValidationError):
        private = {"kty": "RSA", "kid": "k", "alg": "RS256", "use": "sig", "d": "x"}
        Draft202012Validator(jwks).validate({"keys": [private]})


def test_metadata_and_jwks(spec, client):
    documents = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/jwks.json")
    for path in documents:
        _check(spec, path, "get", client.get(path))


@pytest.mark.config(server={"issuer": "http://localhost/idp"})
def test_metadata_of_an_issuer_with_a_path(client):
    """RFC 8414 §3.1: the path variant is described at the host's root, outside the issuer's path."""
    spec = client.get("/idp/openapi.json").get_json()
    path = "/.well-known/oauth-authorization-server/{issuer_path}"
    assert spec["servers"] == [{"url": "http://localhost/idp"}]
    assert spec["paths"][path]["servers"] == [{"url": "http://localhost"}]
    answer = client.get("/.well-known/oauth-authorization-server/idp")
    assert answer.status_code == 200 and answer.get_json()["issuer"] == "http://localhost/idp"
    _check(spec, path, "get", answer)
    _check(spec, path, "get", client.get("/.well-known/oauth-authorization-server/other"))
    under_the_issuer = client.get("/idp/.well-known/oauth-authorization-server")
    _check(spec, "/.well-known/oauth-authorization-server", "get", under_the_issuer)


def test_token_userinfo_introspection_revocation(spec, browser, account, rp):
    tokens, done = sign_in_for_tokens(browser, account, rp, scope="openid profile phone offline_access")
    client = browser.client
    # The token answer itself, through a refresh (the code one was consumed by the helper).
    fresh = refresh(client, rp, tokens["refresh_token"])
    _check(spec, "/token", "post", fresh)
    _check(spec, "/token", "post", refresh(client, rp, "not-a-refresh-token"))
    _check(spec, "/token", "post", client.post("/token", data={"grant_type": "refresh_token"}))
    access = fresh.get_json()["access_token"]
    for method in ("get", "post"):
        _check(spec, "/userinfo", method, getattr(client, method)("/userinfo", headers=bearer(access)))
        _check(spec, "/userinfo", method, getattr(client, method)("/userinfo", headers=bearer("nope")))
    auth = (rp["client_id"], rp["client_secret"])
    _check(spec, "/introspect", "post", client.post("/introspect", data={"token": access}, auth=auth))
    _check(spec, "/introspect", "post", client.post("/introspect", data={"token": "nope"}, auth=auth))
    _check(spec, "/introspect", "post", client.post("/introspect", data={"token": access}))
    _check(spec, "/revoke", "post", client.post("/revoke", data={"token": access}, auth=auth))
    wrong = (rp["client_id"], "x")
    _check(spec, "/revoke", "post", client.post("/revoke", data={"token": access}, auth=wrong))


def test_registration_and_configuration(spec, app, client):
    with app.app_context():
        ctx = audit.Context(audit.Actor("cli", None, "tests"), None, int(time.time()))
        _, initial = registration.issue_initial_token(
            db.session, ctx, label="openapi", ttl=600, single_use=True
        )
        db.session.commit()
    body = {"client_name": "Портал агентства", "redirect_uris": ["https://agency.example/cb"]}
    created = client.post("/register", json=body, headers=bearer(initial))
    _check(spec, "/register", "post", created)
    _check(spec, "/register", "post", client.post("/register", json=body, headers=bearer("nope")))
    registered = created.get_json()
    path = "/register/" + registered["client_id"]
    headers = bearer(registered["registration_access_token"])
    _check(spec, "/register/{client_id}", "get", client.get(path, headers=headers))
    update = {**body, "client_id": registered["client_id"], "client_name": "Портал агентства 2"}
    _check(spec, "/register/{client_id}", "put", client.put(path, json=update, headers=headers))
    _check(spec, "/register/{client_id}", "delete", client.delete(path, headers=headers))


def test_device_authorization(spec, client, make_rp):
    tv = make_rp(public=True, grant_types=["urn:ietf:params:oauth:grant-type:device_code"], redirect_uris=[])
    started = client.post("/device/authorize", data={"client_id": tv["client_id"], "scope": "openid"})
    _check(spec, "/device/authorize", "post", started)
    web = public_rp(lambda **kw: make_rp(**kw))
    refused = client.post("/device/authorize", data={"client_id": web["client_id"]})
    _check(spec, "/device/authorize", "post", refused)
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": started.get_json()["device_code"],
        "client_id": tv["client_id"],
    }
    _check(spec, "/token", "post", client.post("/token", data=poll))


def test_pushed_authorization_request(spec, client, rp):
    _, challenge = pkce_pair()
    form = {
        "response_type": "code",
        "client_id": rp["client_id"],
        "redirect_uri": "https://rp.example/cb",
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    pushed = client.post("/par", data=form, auth=(rp["client_id"], rp["client_secret"]))
    assert pushed.status_code == 201, pushed.get_data(as_text=True)
    _check(spec, "/par", "post", pushed)
    _check(spec, "/par", "post", client.post("/par", data=form, auth=(rp["client_id"], "wrong")))
