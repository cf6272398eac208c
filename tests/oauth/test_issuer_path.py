"""An issuer with a path (``[server] issuer = "http://localhost/idp"``, the provider behind a proxy that
serves it under /idp): OIDC Discovery appends /.well-known/openid-configuration to the issuer, RFC 8414 §3.1
inserts /.well-known/oauth-authorization-server before the path; every URL in them, every page's links and
redirects, and the tokens' iss stay under the path (idp/urls.py)."""

from __future__ import annotations

import html
import re
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oauth2.rfc8414 import get_well_known_url
from joserfc import jwt
from joserfc.jwk import KeySet

from ..helpers import csrf_token
from ..helpers import pkce_pair
from ..helpers import query
from ..staff import create_member
from ..staff import fresh_code
from ._flow import REDIRECT_URI
from ._flow import bearer

ISSUER = "http://localhost/idp"
pytestmark = pytest.mark.config(server={"issuer": ISSUER})

ENDPOINTS = [
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "end_session_endpoint",
    "revocation_endpoint",
    "introspection_endpoint",
    "registration_endpoint",
    "device_authorization_endpoint",
]


def _path(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "http://localhost", url
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_openid_configuration_is_the_issuer_followed_by_the_well_known_path(client):
    response = client.get(_path(ISSUER + "/.well-known/openid-configuration"))
    assert response.status_code == 200
    meta = response.get_json()
    assert meta["issuer"] == ISSUER
    assert meta["authorization_endpoint"] == ISSUER + "/authorize"
    assert meta["token_endpoint"] == ISSUER + "/token"
    for key in ENDPOINTS:
        assert meta[key].startswith(ISSUER + "/"), (key, meta[key])
        # Each URL is served there (whatever the answer to an empty request, not 404).
        answer = client.open(_path(meta[key]), method="GET" if key in ("jwks_uri",) else "POST")
        assert answer.status_code != 404, (key, answer.status_code)
    assert client.get(_path(meta["jwks_uri"])).get_json()["keys"]


def test_oauth_metadata_has_the_well_known_part_inserted_before_the_path(client):
    """RFC 8414 §3.1, with the address authlib's own helper builds from the issuer."""
    url = get_well_known_url(ISSUER, external=True)
    assert url == "http://localhost/.well-known/oauth-authorization-server/idp"
    response = client.get(_path(url))
    assert response.status_code == 200
    meta = AuthorizationServerMetadata(response.get_json())
    meta.validate()
    assert meta["issuer"] == ISSUER
    assert meta == client.get("/idp/.well-known/openid-configuration").get_json()
    # CORS as on the other metadata document.
    assert "Origin" in response.headers.get("Vary", "")


@pytest.mark.parametrize(
    "path",
    [
        # Built from another issuer (http://localhost): its metadata would name an issuer it does not match.
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        # Another path inserted, or the inserted form under the path.
        "/.well-known/oauth-authorization-server/other",
        "/.well-known/oauth-authorization-server/idp/more",
        "/idp/.well-known/oauth-authorization-server/idp",
    ],
)
def test_no_metadata_at_addresses_of_other_issuers(client, path):
    # The documents' fast path (idp/oauth/documents.py) has learned the ones under the issuer's path.
    for _ in range(2):
        assert client.get("/idp/.well-known/openid-configuration").status_code == 200
        assert client.get("/idp/.well-known/oauth-authorization-server").status_code == 200
    assert client.get(path).status_code == 404


def test_a_sign_in_stays_under_the_path(client, account, rp):
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": rp["client_id"],
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile",
        "state": "st",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    # The sign-in form is /authorize's own answer (idp.views.oauth.proceed).
    page = client.get("/idp/authorize?" + urlencode(params))
    assert page.status_code == 200, page.headers.get("Location")
    text = page.get_data(as_text=True)
    # Links, the form and static files carry the path: the browser asks the proxy for them under it.
    action = html.unescape(re.search(r'<form[^>]* action="([^"]*/login[^"]*)"', text).group(1))
    assert action.startswith("/idp/login"), action
    assert re.search(r'(href|src)="/idp/static/', text)
    assert not re.search(r'(href|src|action)="/(?!idp/)', text), re.findall(
        r'(?:href|src|action)="(/[^"]*)"', text
    )
    data = {"csrf_token": csrf_token(text), "login": account["login"], "password": account["password"]}
    response = client.post(action, data=data, headers={"Origin": "http://localhost"})
    for _ in range(5):
        location = response.headers["Location"]
        if not location.startswith("/"):
            break
        assert location.startswith("/idp/"), location
        response = client.get(location)
    result = query(response.headers["Location"])
    assert response.headers["Location"].startswith(REDIRECT_URI + "?")
    assert result["iss"] == ISSUER and result["state"] == "st"
    tokens = client.post(
        "/idp/token",
        data={
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(rp["client_id"], rp["client_secret"]),
    )
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    tokens = tokens.get_json()
    keys = KeySet.import_key_set(client.get("/idp/jwks.json").get_json())
    assert jwt.decode(tokens["id_token"], keys).claims["iss"] == ISSUER
    info = client.get("/idp/userinfo", headers=bearer(tokens["access_token"]))
    assert info.status_code == 200 and info.get_json()["given_name"] == "Алишер"


def test_device_verification_uri_is_under_the_issuer(client, make_rp):
    tv = make_rp(public=True, grant_types=["urn:ietf:params:oauth:grant-type:device_code"], redirect_uris=[])
    data = client.post("/idp/device/authorize", data={"client_id": tv["client_id"]}).get_json()
    assert data["verification_uri"] == ISSUER + "/device"
    assert data["verification_uri_complete"].startswith(ISSUER + "/device?user_code=")
    assert client.get(_path(data["verification_uri_complete"])).status_code == 200


def test_the_staff_console_and_its_cookie_are_under_the_path(app, client):
    member = create_member(app, "admin", "admin1")
    wanted = client.get("/idp/admin/clients")
    assert wanted.status_code == 302
    login = wanted.headers["Location"]
    assert login.startswith("/idp/admin/login?next="), login
    page = client.get(login)
    data = {
        "csrf_token": csrf_token(page.get_data(as_text=True)),
        "username": member["username"],
        "password": member["password"],
        "code": fresh_code(member),
    }
    signed_in = client.post(login, data=data, headers={"Origin": "http://localhost"})
    # Back to the page asked for, under the path; the console's cookie is sent to /idp/admin only.
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/idp/admin/clients"
    cookie = next(h for h in signed_in.headers.getlist("Set-Cookie") if "Path=/idp/admin" in h)
    assert cookie and client.get("/idp/admin/clients").status_code == 200
