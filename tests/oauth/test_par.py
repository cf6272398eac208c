"""Pushed authorization requests (RFC 9126): the push, the single-use request_uri at /authorize, the
clients that must push, and what a pushed request may not carry."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import PushedRequest
from idp.oauth.par import MAX_PARAMS_BYTES
from idp.services import maintenance

from ..helpers import settings_of
from ._flow import ISSUER
from ._flow import at_redirect_uri
from ._flow import auth_params
from ._flow import is_consent_page
from ._flow import is_login_page
from ._flow import public_rp
from ._flow import redeem
from ._flow import userinfo
from ._flow import verify_id_token

URN = "urn:ietf:params:oauth:request_uri:"


def _push(client, rp, params: dict, *, auth=True):
    kwargs = {"data": params}
    if auth and rp.get("client_secret"):
        kwargs["auth"] = (rp["client_id"], rp["client_secret"])
    return client.post("/par", **kwargs)


def _pushed(client, rp, **overrides):
    params, verifier = auth_params(rp, **overrides)
    response = _push(client, rp, params)
    assert response.status_code == 201, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json(), params, verifier


def _authorize_pushed(browser, account, rp, request_uri: str, **extra):
    response = browser.authorize(client_id=rp["client_id"], request_uri=request_uri, **extra)
    if account is not None and is_login_page(response):
        response = browser.sign_in(account["login"], account["password"], page=response)
    return response


def test_push_then_authorize_then_redeem(browser, account, rp):
    answer, params, verifier = _pushed(browser.client, rp, scope="openid profile")
    assert answer["request_uri"].startswith(URN) and len(answer["request_uri"]) > len(URN) + 40
    assert answer["expires_in"] == 60
    # Parameters beside request_uri are not the request (RFC 9126 §4): the pushed scope and state win.
    response = _authorize_pushed(browser, account, rp, answer["request_uri"], scope="openid phone", state="x")
    result = at_redirect_uri(response)
    assert result["state"] == params["state"] and result["iss"] == ISSUER
    tokens = redeem(browser.client, rp, result["code"], verifier)
    assert tokens.status_code == 200 and tokens.get_json()["scope"] == "openid profile"


def test_a_request_uri_is_single_use(browser, account, rp):
    answer, _, _ = _pushed(browser.client, rp)
    at_redirect_uri(_authorize_pushed(browser, account, rp, answer["request_uri"]))
    again = _authorize_pushed(browser, None, rp, answer["request_uri"])
    assert again.status_code == 400 and "invalid_request_uri" in again.get_data(as_text=True)


def test_a_request_uri_expires(browser, account, rp, clock):
    answer, _, _ = _pushed(browser.client, rp)
    clock.now += 61
    late = _authorize_pushed(browser, account, rp, answer["request_uri"])
    assert late.status_code == 400 and "invalid_request_uri" in late.get_data(as_text=True)


def test_a_request_uri_belongs_to_its_client(browser, account, rp, make_rp):
    other = make_rp(name="Другой портал")
    answer, _, _ = _pushed(browser.client, rp)
    stolen = _authorize_pushed(browser, account, other, answer["request_uri"])
    assert stolen.status_code == 400 and "invalid_request_uri" in stolen.get_data(as_text=True)
    made_up = _authorize_pushed(browser, account, rp, URN + "made-up")
    assert made_up.status_code == 400 and "invalid_request_uri" in made_up.get_data(as_text=True)


def test_a_client_that_must_push_is_refused_without(browser, account, make_rp):
    rp = make_rp(require_par=True)
    assert rp["require_pushed_authorization_requests"] is True
    params, _ = auth_params(rp)
    result = at_redirect_uri(browser.authorize(**params))
    assert result["error"] == "invalid_request" and result["state"] == params["state"]
    answer, _, _ = _pushed(browser.client, rp)
    assert "code" in at_redirect_uri(_authorize_pushed(browser, account, rp, answer["request_uri"]))


@pytest.mark.config(par={"required": True})
def test_every_client_must_push_when_configured(client, browser, rp):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["require_pushed_authorization_requests"] is True
    params, _ = auth_params(rp)
    assert at_redirect_uri(browser.authorize(**params))["error"] == "invalid_request"


def test_public_client_pushes_with_its_client_id(browser, account, make_rp):
    rp = public_rp(make_rp)
    params, verifier = auth_params(rp)
    response = _push(browser.client, rp, params)
    assert response.status_code == 201, response.get_json()
    result = at_redirect_uri(_authorize_pushed(browser, account, rp, response.get_json()["request_uri"]))
    assert redeem(browser.client, rp, result["code"], verifier).status_code == 200


@pytest.mark.parametrize(
    "change, error",
    [
        ({"request_uri": URN + "x"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
    ],
    ids=["request_uri", "request-object", "redirect_uri", "response_type", "pkce-plain"],
)
def test_push_refuses_what_authorize_would(client, rp, change, error):
    params, _ = auth_params(rp, **change)
    response = _push(client, rp, params)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == error


def test_push_needs_client_authentication(client, rp):
    params, _ = auth_params(rp)
    response = client.post("/par", data=params, auth=(rp["client_id"], "wrong"))
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    # A confidential client cannot push as a public one.
    assert _push(client, rp, params, auth=False).get_json()["error"] == "invalid_client"


def test_discovery_advertises_par(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["pushed_authorization_request_endpoint"] == ISSUER + "/par"
    assert meta["require_pushed_authorization_requests"] is False


@pytest.mark.config(par={"enabled": False})
def test_par_off(client, browser, rp):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert "pushed_authorization_request_endpoint" not in meta
    params, _ = auth_params(rp)
    assert _push(client, rp, params).status_code == 404
    refused = at_redirect_uri(browser.authorize(**params, request_uri=URN + "x"))
    assert refused["error"] == "request_uri_not_supported"


def _large_request(rp, **overrides) -> tuple[dict, str | None]:
    """About 8 KB of parameters: a long claims request, a long state and nonce (OIDC Core §5.5, §3.1.2.1)."""
    wanted = {"name": {"essential": True}, **{f"urn:example:claim:{n:04d}": None for n in range(150)}}
    claims = json.dumps({"userinfo": wanted, "id_token": {"phone_number": None}})
    params, verifier = auth_params(
        rp,
        scope="openid profile phone email patent offline_access",
        state="s" * 1500,
        nonce="n" * 500,
        claims=claims,
        **overrides,
    )
    assert 7000 < sum(len(k) + len(v) for k, v in params.items()) < MAX_PARAMS_BYTES
    return params, verifier


def _pushed_rows(app) -> list[PushedRequest]:
    with app.app_context():
        return list(db.session.scalars(select(PushedRequest)))


def test_a_large_pushed_request_goes_through_sign_in_and_consent(app, browser, account, make_rp):
    untrusted = make_rp(trusted=False)
    params, verifier = _large_request(untrusted)
    response = _push(browser.client, untrusted, params)
    assert response.status_code == 201, response.get_json()
    request_uri = response.get_json()["request_uri"]
    page = _authorize_pushed(browser, account, untrusted, request_uri)
    assert is_consent_page(page), (page.status_code, page.request.path)
    # The session cookie holds the row's id, not the 8 KB of parameters.
    cookie = browser.client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None and len(cookie.value) < 1500
    path = page.request.path + "?" + page.request.query_string.decode()
    result = at_redirect_uri(browser.follow(browser.submit(path, {"allow": "Разрешить"}, page=page)))
    assert result["state"] == params["state"]
    tokens = redeem(browser.client, untrusted, result["code"], verifier)
    assert tokens.status_code == 200, tokens.get_json()
    assert tokens.get_json()["scope"] == params["scope"]
    id_token = verify_id_token(browser.client, tokens.get_json()["id_token"])
    assert id_token.claims["nonce"] == params["nonce"]
    info = userinfo(browser.client, tokens.get_json()["access_token"]).get_json()
    assert info["name"]
    # Answered: the pushed request is gone, and its request_uri stays spent.
    assert _pushed_rows(app) == []
    again = _authorize_pushed(browser, None, untrusted, request_uri)
    assert again.status_code == 400 and "invalid_request_uri" in again.get_data(as_text=True)


def test_a_pushed_request_outlives_its_request_uri_while_the_user_signs_in(app, browser, account, rp, clock):
    params, verifier = _large_request(rp)
    request_uri = _push(browser.client, rp, params).get_json()["request_uri"]
    clock.now = clock.now
    page = _authorize_pushed(browser, None, rp, request_uri)
    assert is_login_page(page)
    # Past the request_uri's 60 s, within [oauth] interaction_ttl, and after a purge.
    clock.now += 120
    with app.app_context():
        maintenance.purge_expired(db.session, now=clock.now, retention=86400)
        db.session.commit()
    result = at_redirect_uri(browser.sign_in(account["login"], account["password"], page=page))
    assert result["state"] == params["state"]
    assert redeem(browser.client, rp, result["code"], verifier).status_code == 200


def test_a_pushed_request_is_forgotten_after_the_interaction_ttl(app, browser, account, rp, clock):
    params, _ = _large_request(rp)
    request_uri = _push(browser.client, rp, params).get_json()["request_uri"]
    clock.now = clock.now
    page = _authorize_pushed(browser, None, rp, request_uri)
    clock.now += settings_of(app).oauth.interaction_ttl + 1
    with app.app_context():
        maintenance.purge_expired(db.session, now=clock.now, retention=86400)
        db.session.commit()
    assert _pushed_rows(app) == []
    late = browser.sign_in(account["login"], account["password"], page=page)
    assert late.status_code in (200, 400) and "code=" not in late.headers.get("Location", "")


def test_a_large_request_at_authorize_is_told_to_use_par(browser, account, rp):
    params, _ = _large_request(rp)
    # POSTed (OIDC Core §3.1.2.1): a query string this long is refused before anything reads it (414).
    result = at_redirect_uri(browser.follow(browser.client.post("/authorize", data=params)))
    assert result["error"] == "invalid_request" and "PAR" in result["error_description"]
    assert result["state"] == params["state"]


def test_a_pushed_request_larger_than_the_limit_is_refused(client, rp):
    params, _ = auth_params(rp, state="s" * (MAX_PARAMS_BYTES + 1))
    response = _push(client, rp, params)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
