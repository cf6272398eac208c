"""Steps shared by the protocol tests: the authorization request, the sign-in, the code exchange,
and the checks a relying party makes on what comes back."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlencode
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import update

from idp.extensions import db
from idp.models import SsoSession

from ..helpers import is_sign_in_page as is_login_page
from ..helpers import pkce_pair
from ..helpers import query

ISSUER = "http://localhost"
REDIRECT_URI = "https://rp.example/cb"
POST_LOGOUT_URI = "https://rp.example/bye"


def auth_params(rp: dict, pkce: bool = True, **overrides) -> tuple[dict, str | None]:
    """A valid authorization request for ``rp`` (fresh state and nonce), and its PKCE verifier.
    An override of None drops the parameter."""
    params = {
        "response_type": "code",
        "client_id": rp["client_id"],
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
    }
    verifier = None
    if pkce:
        verifier, challenge = pkce_pair()
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}, verifier


def is_consent_page(response) -> bool:
    return response.status_code == 200 and response.request.path.startswith("/consent")


def at_redirect_uri(response, redirect_uri: str = REDIRECT_URI) -> dict:
    """Assert ``response`` sends the browser back to the relying party; return the response parameters."""
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:2000]
    location = response.headers["Location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == redirect_uri, location
    return query(location)


@dataclass
class Authorized:
    """An authorization request that came back to the relying party."""

    request: dict
    verifier: str | None
    response: object

    @property
    def result(self) -> dict:
        return at_redirect_uri(self.response, self.request.get("redirect_uri", REDIRECT_URI))

    @property
    def code(self) -> str:
        result = self.result
        assert "code" in result, result
        return result["code"]


def authorize(browser, rp: dict, account: dict | None = None, *, pkce=True, method="GET", **params):
    """Send an authorization request; sign in as ``account`` if the provider asks. Returns the last
    response (a redirect to the RP, or a page of ours) wrapped with the request that was sent."""
    request, verifier = auth_params(rp, pkce=pkce, **params)
    if method == "POST":
        response = browser.follow(browser.client.post("/authorize", data=request))
    else:
        response = browser.authorize(**request)
    if account is not None and is_login_page(response):
        response = browser.sign_in(account["login"], account["password"], page=response)
    return Authorized(request, verifier, response)


def public_rp(make_rp, **overrides) -> dict:
    """A public client (no secret, PKCE, token endpoint auth "none")."""
    return make_rp(public=True, grant_types=["authorization_code", "refresh_token"], **overrides)


def client_auth(rp: dict, data: dict, method: str | None = None) -> dict:
    """Keyword arguments for the test client that authenticate ``rp`` with ``method``
    (default: client_secret_basic, or none for a public client)."""
    method = method or ("none" if not rp.get("client_secret") else "client_secret_basic")
    data = dict(data)
    if method == "client_secret_basic":
        return {"data": data, "auth": (rp["client_id"], rp["client_secret"])}
    if method == "client_secret_post":
        data.update(client_id=rp["client_id"], client_secret=rp["client_secret"])
        return {"data": data}
    data["client_id"] = rp["client_id"]
    return {"data": data}


def redeem(
    client,
    rp: dict,
    code: str,
    verifier: str | None,
    *,
    redirect_uri: str = REDIRECT_URI,
    method: str | None = None,
    **extra,
):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, **extra}
    if verifier is not None:
        data["code_verifier"] = verifier
    return client.post("/token", **client_auth(rp, data, method))


def refresh(client, rp: dict, refresh_token: str, method: str | None = None, **extra):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return client.post("/token", **client_auth(rp, data, method))


def sign_in_for_tokens(browser, account: dict, rp: dict, **params) -> tuple[dict, Authorized]:
    """authorize → sign in → code → token; returns the token response and the authorization."""
    done = authorize(browser, rp, account, **params)
    response = redeem(browser.client, rp, done.code, done.verifier)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json(), done


def bearer(access_token: str) -> dict:
    return {"Authorization": "Bearer " + access_token}


def userinfo(client, access_token: str, method: str = "GET"):
    return getattr(client, method.lower())("/userinfo", headers=bearer(access_token))


def jwks(client) -> dict:
    response = client.get("/jwks.json")
    assert response.status_code == 200
    return response.get_json()


def verify_id_token(client, id_token: str):
    """Verify the signature against the published JWKS, as a relying party does; returns joserfc's token."""
    return jwt.decode(id_token, KeySet.import_key_set(jwks(client)), algorithms=["RS256", "ES256", "EdDSA"])


def age_sso_sessions(app, seconds: int) -> None:
    """Pretend every SSO session signed in ``seconds`` earlier (instead of sleeping)."""
    with app.app_context():
        db.session.execute(update(SsoSession).values(auth_time=SsoSession.auth_time - seconds))
        db.session.commit()


def sso_auth_times(app) -> list[int]:
    with app.app_context():
        return [s.auth_time for s in db.session.scalars(db.select(SsoSession).order_by(SsoSession.id))]


def authorize_url(params: dict) -> str:
    return "/authorize?" + urlencode(params)
