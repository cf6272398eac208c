"""What relying parties beyond server-rendered web apps ask for (issue 15): form_post (OAuth 2.0 Form
Post Response Mode), the bearer token in a form body (RFC 6750 §2.2), RFC 8414 metadata,
prompt=select_account, the claims parameter (OIDC Core §5.5), acr, and CORS for browser-based apps.
The live tests drive authlib's requests client over HTTP, as a deployed relying party does."""

from __future__ import annotations

import html
import json
import re

import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.models.oauth import ACR_PASSWORD

from ..helpers import query
from ..live import follow_inside
from ..live import http_session
from ..live import sign_in
from ._flow import age_sso_sessions
from ._flow import authorize
from ._flow import bearer
from ._flow import is_login_page
from ._flow import redeem
from ._flow import sign_in_for_tokens
from ._flow import userinfo
from ._flow import verify_id_token

REDIRECT_URI = "https://rp.example/cb"
_INPUT = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')
_FORM = re.compile(r'<form id="form-post" method="post" action="([^"]*)">')


def _form_post_fields(page_html: str) -> tuple[str, dict]:
    action = _FORM.search(page_html)
    assert action, page_html[:2000]
    fields = {html.unescape(k): html.unescape(v) for k, v in _INPUT.findall(page_html)}
    return html.unescape(action.group(1)), fields


# -- response_mode=form_post ---------------------------------------------------------------------------


def test_form_post_returns_an_auto_submitting_form(browser, account, rp):
    done = authorize(browser, rp, account, response_mode="form_post")
    page = done.response
    assert page.status_code == 200 and page.mimetype == "text/html"
    action, fields = _form_post_fields(page.get_data(as_text=True))
    assert action == REDIRECT_URI
    assert fields["state"] == done.request["state"] and fields["iss"] == "http://localhost" and fields["code"]
    # The script that submits it comes from our origin: the page's CSP allows it, and no inline script.
    body = page.get_data(as_text=True)
    assert '<script src="/static/form_post.js">' in body and "onload" not in body
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "form-action 'self' http: https:" in csp
    assert "no-store" in page.headers["Cache-Control"]
    # The code in the form is a good code.
    response = redeem(browser.client, rp, fields["code"], done.verifier)
    assert response.status_code == 200, response.get_data(as_text=True)


def test_form_post_error_response_is_posted_too(browser, rp):
    # Nobody signed in and prompt=none: login_required, posted like a success (Form Post §2).
    done = authorize(browser, rp, response_mode="form_post", prompt="none")
    action, fields = _form_post_fields(done.response.get_data(as_text=True))
    assert action == REDIRECT_URI
    assert fields["error"] == "login_required" and fields["state"] == done.request["state"]


def test_unknown_response_mode_is_refused_to_the_redirect_uri(browser, account, rp):
    done = authorize(browser, rp, account, response_mode="fragment")
    result = done.result
    assert result["error"] == "invalid_request" and "response_mode" in result["error_description"]


def test_form_post_is_advertised(client):
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["response_modes_supported"] == ["query", "form_post"]


# -- RFC 6750 §2.2: the access token in a form body at UserInfo ----------------------------------------------


def test_userinfo_accepts_the_token_in_a_form_body(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid profile")
    response = browser.client.post("/userinfo", data={"access_token": tokens["access_token"]})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["sub"] == account["sub"] and response.get_json()["given_name"] == "Алишер"


def test_userinfo_form_body_rules(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp)
    token = tokens["access_token"]
    # Never in a GET query (§2.2 forbids GET; §2.3's URI query is not supported).
    assert browser.client.get("/userinfo?access_token=" + token).status_code == 401
    # Two methods at once is an invalid_request (§3.1).
    both = browser.client.post("/userinfo", data={"access_token": token}, headers=bearer(token))
    assert both.status_code == 400 and both.get_json()["error"] == "invalid_request"
    # A wrong token in the body is an invalid_token, as in the header.
    wrong = browser.client.post("/userinfo", data={"access_token": "nope"})
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid_token"
    # Not form-encoded: the body is not read for a token.
    as_json = browser.client.post("/userinfo", json={"access_token": token})
    assert as_json.status_code == 401


# -- RFC 8414 ---------------------------------------------------------------------------------------------


def test_oauth_authorization_server_metadata(client):
    response = client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200 and response.mimetype == "application/json"
    metadata = response.get_json()
    AuthorizationServerMetadata(metadata).validate()
    assert metadata["issuer"] == "http://localhost"
    assert metadata == client.get("/.well-known/openid-configuration").get_json()


# -- prompt=select_account ---------------------------------------------------------------------------------


def test_select_account_shows_the_sign_in_again(app, browser, account, make_account, rp):
    sign_in_for_tokens(browser, account, rp)
    age_sso_sessions(app, 5)
    done = authorize(browser, rp, prompt="select_account")
    assert is_login_page(done.response)
    # The person picks another account there; the relying party gets that one.
    other = make_account(login="77-0000009", phone="+79161230009")
    page = browser.sign_in(other["login"], other["password"], page=done.response)
    response = redeem(browser.client, rp, query(page.headers["Location"])["code"], done.verifier)
    assert verify_id_token(browser.client, response.get_json()["id_token"]).claims["sub"] == other["sub"]


def test_select_account_is_advertised(client):
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert "select_account" in metadata["prompt_values_supported"]


# -- the claims parameter and acr ---------------------------------------------------------------------------


def test_claims_parameter_for_userinfo_and_id_token(browser, account, rp):
    claims = {
        "userinfo": {"name": None, "phone_number": {"essential": True}},
        "id_token": {"given_name": None},
    }
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid", claims=json.dumps(claims))
    info = userinfo(browser.client, tokens["access_token"]).get_json()
    name, phone = "Рахимов Алишер Бахтиёрович", "+79161234567"
    assert info == {"sub": account["sub"], "name": name, "phone_number": phone}
    id_claims = verify_id_token(browser.client, tokens["id_token"]).claims
    assert id_claims["given_name"] == "Алишер" and "name" not in id_claims and "phone_number" not in id_claims


def test_claims_outside_the_clients_scopes_are_not_released(browser, account, make_rp):
    narrow = make_rp(scope="openid profile")
    claims = {"userinfo": {"phone_number": None, "name": None}}
    tokens, _ = sign_in_for_tokens(browser, account, narrow, scope="openid", claims=json.dumps(claims))
    info = userinfo(browser.client, tokens["access_token"]).get_json()
    assert "phone_number" not in info and info["name"]


def test_claims_survive_refresh(browser, account, rp):
    claims = {"userinfo": {"email": None}, "id_token": {"family_name": None}}
    # The account has no e-mail: asking for it releases nothing (no null claim).
    tokens, _ = sign_in_for_tokens(
        browser, account, rp, scope="openid offline_access", claims=json.dumps(claims)
    )
    response = browser.client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(rp["client_id"], rp["client_secret"]),
    )
    fresh = response.get_json()
    assert verify_id_token(browser.client, fresh["id_token"]).claims["family_name"] == "Рахимов"
    assert userinfo(browser.client, fresh["access_token"]).get_json() == {"sub": account["sub"]}


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1]",
        '{"userinfo": []}',
        '{"id_token": {"name": 5}}',
        '{"id_token": {"name": {"essential": "yes"}}}',
        '{"userinfo": {"name": {"values": "Алишер"}}}',
        '{"id_token": {"sub": {"value": 5}}}',
        '{"id_token": {"sub": {"values": [null]}}}',
    ],
)
def test_malformed_claims_parameter_is_invalid_request(browser, account, rp, raw):
    done = authorize(browser, rp, account, claims=raw)
    assert done.result["error"] == "invalid_request"


def test_consent_covers_the_scopes_of_requested_claims(browser, account, make_rp):
    untrusted = make_rp(trusted=False)
    claims = '{"userinfo": {"phone_number": null}}'
    done = authorize(browser, untrusted, account, scope="openid", claims=claims)
    page = done.response.get_data(as_text=True)
    assert "Номер телефона" in page


def test_acr_in_id_token_and_discovery(browser, account, rp, client):
    tokens, _ = sign_in_for_tokens(browser, account, rp, acr_values=ACR_PASSWORD)
    assert verify_id_token(browser.client, tokens["id_token"]).claims["acr"] == ACR_PASSWORD
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["acr_values_supported"] == [ACR_PASSWORD]
    assert metadata["claims_parameter_supported"] is True


def test_essential_acr_that_cannot_be_met_fails(browser, account, rp):
    claims = {"id_token": {"acr": {"essential": True, "values": ["urn:example:mfa"]}}}
    done = authorize(browser, rp, account, claims=json.dumps(claims))
    assert done.result["error"] == "access_denied"
    met = {"id_token": {"acr": {"essential": True, "values": ["urn:example:mfa", ACR_PASSWORD]}}}
    tokens, _ = sign_in_for_tokens(browser, account, rp, claims=json.dumps(met))
    assert verify_id_token(browser.client, tokens["id_token"]).claims["acr"] == ACR_PASSWORD


def test_value_and_values_of_other_claims_are_requests_answered_with_the_accounts_values(
    browser, account, rp
):
    # OIDC Core §5.5.1: "value"/"values" say what the relying party expects; the provider returns the claim
    # as the account has it, each in the member it was asked for.
    claims = {
        "id_token": {
            "given_name": {"value": "Иван"},
            "phone_number": {"essential": True, "values": ["+7000"]},
        },
        "userinfo": {"family_name": {"values": ["Иванов", "Петров"]}},
    }
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid", claims=json.dumps(claims))
    id_claims = verify_id_token(browser.client, tokens["id_token"]).claims
    assert id_claims["given_name"] == "Алишер" and id_claims["phone_number"] == "+79161234567"
    assert "family_name" not in id_claims
    info = userinfo(browser.client, tokens["access_token"]).get_json()
    assert info == {"sub": account["sub"], "family_name": "Рахимов"}


def test_essential_claims_the_account_lacks_are_omitted_not_an_error(browser, make_account, rp):
    # §5.5.1: an essential claim the provider cannot return is not an error; the account has no e-mail and
    # no middle name.
    plain = make_account(login="77-0000002", phone="+79161230002", middle_name=None)
    claims = {
        "id_token": {"email": {"essential": True}, "middle_name": {"essential": True}, "given_name": None},
        "userinfo": {"email": {"essential": True}, "email_verified": {"essential": True}},
    }
    tokens, _ = sign_in_for_tokens(browser, plain, rp, scope="openid", claims=json.dumps(claims))
    id_claims = verify_id_token(browser.client, tokens["id_token"]).claims
    assert "email" not in id_claims and "middle_name" not in id_claims and id_claims["given_name"]
    assert userinfo(browser.client, tokens["access_token"]).get_json() == {"sub": plain["sub"]}


@pytest.mark.parametrize("target", ["id_token", "userinfo"])
def test_sub_value_of_the_signed_in_user_gets_tokens(browser, account, rp, target):
    claims = {target: {"sub": {"value": account["sub"]}}}
    tokens, _ = sign_in_for_tokens(browser, account, rp, claims=json.dumps(claims))
    assert verify_id_token(browser.client, tokens["id_token"]).claims["sub"] == account["sub"]


@pytest.mark.parametrize("request_sub", [{"value": "someone-else"}, {"values": ["someone-else", "a-third"]}])
def test_sub_value_of_another_user_gets_no_tokens(app, browser, account, make_account, rp, request_sub):
    """§3.1.2.2 and §5.5.1: the provider must not answer for a user other than the sub asked for."""
    other = make_account(login="77-0000002", phone="+79161230002")
    claims = json.dumps({"id_token": {"sub": {**request_sub}}})
    # Signing in fresh as the wrong person: login_required, no code.
    done = authorize(browser, rp, account, claims=claims)
    assert done.result["error"] == "login_required" and "code" not in done.result
    # With a session of that person (from before this request), prompt=none: login_required too.
    age_sso_sessions(app, 10)
    assert authorize(browser, rp, prompt="none", claims=claims).result["error"] == "login_required"
    # Without prompt=none the session is not enough: the sign-in page comes back, to switch person.
    assert is_login_page(authorize(browser, rp, claims=claims).response)
    # The person named by sub (their sub in a list) is answered.
    named = json.dumps({"id_token": {"sub": {"values": ["someone-else", other["sub"]]}}})
    tokens, _ = sign_in_for_tokens(browser, other, rp, claims=named)
    assert verify_id_token(browser.client, tokens["id_token"]).claims["sub"] == other["sub"]


def test_sub_value_is_the_pairwise_sub_of_the_client(app, browser, account, make_rp):
    pairwise = make_rp(subject_type="pairwise")
    tokens, _ = sign_in_for_tokens(browser, account, pairwise)
    own = verify_id_token(browser.client, tokens["id_token"]).claims["sub"]
    assert own != account["sub"]
    age_sso_sessions(app, 10)
    # The public sub of the account is not this client's sub for it: refused.
    refused = authorize(
        browser, pairwise, claims=json.dumps({"id_token": {"sub": {"value": account["sub"]}}})
    )
    assert is_login_page(refused.response)
    tokens, _ = sign_in_for_tokens(
        browser, account, pairwise, claims=json.dumps({"userinfo": {"sub": {"value": own}}})
    )
    assert userinfo(browser.client, tokens["access_token"]).get_json()["sub"] == own


# -- CORS --------------------------------------------------------------------------------------------------


CORS_PATHS = ["/token", "/userinfo", "/revoke", "/jwks.json", "/.well-known/openid-configuration"]


@pytest.mark.parametrize("path", CORS_PATHS)
def test_preflight_from_a_registered_origin(client, rp, path):
    response = client.options(
        path,
        headers={
            "Origin": "https://rp.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://rp.example"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize("path", CORS_PATHS)
def test_no_cors_for_other_origins(client, rp, path):
    response = client.options(path, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_cors_at_the_authorization_endpoint(client, rp):
    for method in ("options", "get"):
        response = getattr(client, method)("/authorize", headers={"Origin": "https://rp.example"})
        assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_on_a_real_answer(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp)
    response = browser.client.get(
        "/userinfo", headers={**bearer(tokens["access_token"]), "Origin": "https://rp.example"}
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://rp.example"
    assert "WWW-Authenticate" in response.headers["Access-Control-Expose-Headers"]


def test_disabled_clients_origins_are_not_allowed(app, client, make_rp):
    from idp.extensions import db
    from idp.models import OAuth2Client

    registered = make_rp(redirect_uris=["https://spa.example/cb"])
    response = client.options("/token", headers={"Origin": "https://spa.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://spa.example"
    with app.app_context():
        db.session.execute(
            db.update(OAuth2Client).filter_by(client_id=registered["client_id"]).values(enabled=False)
        )
        db.session.commit()
    response = client.options("/token", headers={"Origin": "https://spa.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


# -- through authlib's client over HTTP ---------------------------------------------------------------------


def test_authlib_client_form_post_claims_and_body_token(live_server, account, make_rp):
    registered = make_rp(public=True, grant_types=["authorization_code", "refresh_token"])
    http = http_session()
    meta = http.get(live_server.url + "/.well-known/oauth-authorization-server", timeout=10).json()
    AuthorizationServerMetadata(meta).validate()
    assert "form_post" in meta["response_modes_supported"]
    rp = OAuth2Session(
        client_id=registered["client_id"],
        token_endpoint_auth_method="none",
        scope="openid",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        # RFC 6750 §2.2: authlib puts the access token in the form body of its requests.
        token_placement="body",
    )
    rp.trust_env = False
    verifier = generate_token(48)
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"],
        code_verifier=verifier,
        nonce=generate_token(20),
        response_mode="form_post",
        claims=json.dumps({"userinfo": {"given_name": None}}),
    )
    browser = http_session()
    page = sign_in(browser, live_server.url, url, account["login"], account["password"])
    page = follow_inside(browser, page, live_server.url)
    assert page.status_code == 200, page.text[:500]
    action, fields = _form_post_fields(page.text)
    assert action == REDIRECT_URI and fields["state"] == state
    token = rp.fetch_token(meta["token_endpoint"], code=fields["code"], code_verifier=verifier, state=state)
    # authlib's client with token_placement="body" POSTs the token as a form field (it leaves the
    # Content-Type to the caller).
    form = {"Origin": "https://rp.example", "Content-Type": "application/x-www-form-urlencoded"}
    response = rp.post(meta["userinfo_endpoint"], timeout=10, headers=form)
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": account["sub"], "given_name": "Алишер"}
    assert response.headers["Access-Control-Allow-Origin"] == "https://rp.example"
    assert token["id_token"]


def _authlib_rp(registered: dict) -> OAuth2Session:
    rp = OAuth2Session(
        client_id=registered["client_id"],
        token_endpoint_auth_method="none",
        scope="openid",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    rp.trust_env = False
    return rp


def test_authlib_client_claims_parameter_in_id_token_and_userinfo(live_server, account, make_rp):
    """OIDC Core §5.5 through authlib's client: each claim where it was asked for, value/values answered
    with the account's own values, an essential claim the account lacks left out, a sub value honoured."""
    registered = make_rp(public=True, grant_types=["authorization_code"])
    meta = http_session().get(live_server.url + "/.well-known/openid-configuration", timeout=10).json()
    assert meta["claims_parameter_supported"] is True
    rp = _authlib_rp(registered)
    claims = {
        "id_token": {
            "sub": {"value": account["sub"]},
            "given_name": {"essential": True, "value": "Иван"},
            "email": {"essential": True},
        },
        "userinfo": {"phone_number": {"essential": True}, "family_name": {"values": ["Иванов"]}},
    }
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce, claims=json.dumps(claims)
    )
    browser = http_session()
    done = sign_in(browser, live_server.url, url, account["login"], account["password"])
    result = query(done.headers["Location"])
    assert result["state"] == state and "code" in result, result
    token = rp.fetch_token(meta["token_endpoint"], code=result["code"], code_verifier=verifier, state=state)
    keys = KeySet.import_key_set(http_session().get(meta["jwks_uri"], timeout=10).json())
    id_claims = jwt.decode(token["id_token"], keys).claims
    assert id_claims["sub"] == account["sub"] and id_claims["nonce"] == nonce
    assert id_claims["given_name"] == "Алишер" and "email" not in id_claims
    assert "phone_number" not in id_claims and "family_name" not in id_claims
    info = rp.get(meta["userinfo_endpoint"], timeout=10).json()
    assert info == {"sub": account["sub"], "phone_number": "+79161234567", "family_name": "Рахимов"}


def test_authlib_client_sub_value_of_someone_else_is_login_required(live_server, account, make_rp):
    registered = make_rp(public=True, grant_types=["authorization_code"])
    rp = _authlib_rp(registered)
    url, state = rp.create_authorization_url(
        live_server.url + "/authorize",
        code_verifier=generate_token(48),
        claims=json.dumps({"userinfo": {"sub": {"value": "not-" + account["sub"]}}}),
    )
    done = sign_in(http_session(), live_server.url, url, account["login"], account["password"])
    result = query(done.headers["Location"])
    assert done.headers["Location"].startswith(REDIRECT_URI + "?")
    assert result["error"] == "login_required" and result["state"] == state and "code" not in result
