"""Dynamic client registration (RFC 7591) and client management (RFC 7592), never without a token: an
initial access token an admin issued, then the registration access token the client received."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select
from sqlalchemy import update

from idp.extensions import db
from idp.models import AuditEvent
from idp.models import InitialAccessToken
from idp.models import OAuth2Client
from idp.models import Token
from idp.services import audit
from idp.services import registration

from ..helpers import Browser
from ..staff import post_form
from ._flow import ISSUER
from ._flow import authorize
from ._flow import is_consent_page
from ._flow import redeem
from ._flow import sign_in_for_tokens

METADATA = {
    "client_name": "Портал партнёра",
    "redirect_uris": ["https://rp.example/cb"],
    "post_logout_redirect_uris": ["https://rp.example/bye"],
    "backchannel_logout_uri": "https://rp.example/backchannel",
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "scope": "openid profile offline_access",
    "token_endpoint_auth_method": "client_secret_basic",
    "logo_uri": "https://rp.example/logo.png",
}


def _initial_token(app, *, single_use=True, ttl=3600) -> str:
    with app.app_context():
        ctx = audit.Context(audit.Actor("cli", None, "tests"), None, int(time.time()))
        _, token = registration.issue_initial_token(
            db.session, ctx, label="партнёр", ttl=ttl, single_use=single_use
        )
        db.session.commit()
        return token


def _register(client, token: str | None, body=None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/register", json=METADATA if body is None else body, headers=headers, **kwargs)


def _manage(client, method: str, registered: dict, token: str | None = None, **kwargs):
    token = registered["registration_access_token"] if token is None else token
    path = registered["registration_client_uri"][len(ISSUER) :]
    return client.open(path, method=method, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def _assert_invalid_token(response):
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_discovery_advertises_the_registration_endpoint(client):
    assert (
        client.get("/.well-known/openid-configuration").get_json()["registration_endpoint"]
        == ISSUER + "/register"
    )


def test_registration_without_or_with_a_bad_token_is_refused(app, client):
    _assert_invalid_token(_register(client, None))
    _assert_invalid_token(_register(client, "not-a-token"))
    _assert_invalid_token(client.post("/register", json=METADATA, headers={"Authorization": "Basic eDp5"}))
    expired = _initial_token(app, ttl=60)
    with app.app_context():
        db.session.execute(update(InitialAccessToken).values(expires_at=int(time.time()) - 1))
        db.session.commit()
    _assert_invalid_token(_register(client, expired))
    with app.app_context():
        assert db.session.scalars(select(OAuth2Client)).all() == []


def test_register_a_confidential_client_and_sign_in_with_it(app, client, account):
    token = _initial_token(app)
    response = _register(client, token)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    for key in ("client_id", "client_secret", "registration_access_token", "client_id_issued_at"):
        assert body[key]
    assert body["client_secret_expires_at"] == 0
    assert body["registration_client_uri"] == f"{ISSUER}/register/{body['client_id']}"
    assert body["redirect_uris"] == METADATA["redirect_uris"]
    assert body["backchannel_logout_uri"] == METADATA["backchannel_logout_uri"]
    assert body["backchannel_logout_session_required"] is True
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert "logo_uri" not in body  # not kept, so not echoed (RFC 7591 §3.2.1)
    with app.app_context():
        row = db.session.scalar(select(OAuth2Client).filter_by(client_id=body["client_id"]))
        assert not row.trusted and row.secret_hash != body["client_secret"]
        [event] = db.session.scalars(select(AuditEvent).filter_by(event="client.created")).all()
        assert event.actor_type == "initial_token" and event.actor_name == "партнёр"
        assert body["client_secret"] not in str(event.details)
    # The single-use token is spent.
    _assert_invalid_token(_register(client, token))
    # The client works: a sign-in (with the consent page, since it is not trusted) and a token.
    browser = Browser(app.test_client())
    rp = {"client_id": body["client_id"], "client_secret": body["client_secret"]}
    done = authorize(browser, rp, account, scope="openid profile")
    assert is_consent_page(done.response)
    allowed = browser.follow(
        browser.submit(done.response.request.full_path, {"allow": "y"}, page=done.response)
    )
    code = re.search(r"code=([^&]+)", allowed.headers["Location"]).group(1)
    assert redeem(browser.client, rp, code, done.verifier).status_code == 200


def test_a_public_client_gets_no_secret(app, client):
    body = _register(
        client, _initial_token(app), {**METADATA, "token_endpoint_auth_method": "none"}
    ).get_json()
    assert "client_secret" not in body and body["token_endpoint_auth_method"] == "none"


def test_a_multi_use_token_registers_several_clients(app, client):
    token = _initial_token(app, single_use=False)
    assert _register(client, token).status_code == 201
    assert _register(client, token, {**METADATA, "client_name": "Второй"}).status_code == 201
    with app.app_context():
        assert db.session.scalar(select(InitialAccessToken)).uses == 2


def test_a_revoked_token_is_refused(app, admin_client, client):
    data = {"label": "интеграция", "hours": "2", "single_use": ""}
    page = post_form(
        admin_client, "/admin/registration-tokens/new", data, page_path="/admin/registration-tokens"
    )
    token = re.search(r'id="initial-token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    with app.app_context():
        row = db.session.scalar(select(InitialAccessToken))
        assert row.token_hash != token and not row.single_use and row.created_by == "admin1"
    assert _register(client, token).status_code == 201
    revoked = post_form(
        admin_client,
        f"/admin/registration-tokens/{row.id}/revoke",
        {"revoke-confirm": "y"},
        page_path="/admin/registration-tokens",
    )
    assert revoked.status_code == 302
    _assert_invalid_token(_register(client, token))


@pytest.mark.parametrize(
    "change, error",
    [
        ({"redirect_uris": ["http://rp.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://rp.example/cb#x"]}, "invalid_redirect_uri"),
        ({"post_logout_redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
        # RFC 7591 §3.2.2: invalid_redirect_uri is for redirection URIs; a logout URI is client metadata.
        ({"frontchannel_logout_uri": "https://elsewhere.example/fc"}, "invalid_client_metadata"),
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        ({"scope": "openid admin"}, "invalid_client_metadata"),
        ({"grant_types": ["implicit"]}, "invalid_client_metadata"),
        ({"response_types": ["token"]}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({"id_token_signed_response_alg": "none"}, "invalid_client_metadata"),
        ({"client_name": ""}, "invalid_client_metadata"),
        ({"contacts": "not a list"}, "invalid_client_metadata"),
    ],
)
def test_bad_metadata_is_refused_and_the_token_kept(app, client, change, error):
    token = _initial_token(app)
    response = _register(client, token, {**METADATA, **change})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == error
    # A refused registration does not use up a single-use token.
    assert _register(client, token).status_code == 201


def test_a_body_that_is_not_json_is_refused(app, client):
    token = _initial_token(app)
    response = client.post("/register", data="client_name=x", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_read_update_delete_with_the_registration_access_token(app, client, account):
    registered = _register(client, _initial_token(app)).get_json()
    other = _register(client, _initial_token(app), {**METADATA, "client_name": "Чужой"}).get_json()

    read = _manage(client, "GET", registered)
    assert read.status_code == 200
    assert read.get_json()["client_id"] == registered["client_id"] and "client_secret" not in read.get_json()
    assert read.get_json()["registration_access_token"] == registered["registration_access_token"]
    # Without it, with a wrong one, or with another client's: invalid_token.
    _assert_invalid_token(client.get(registered["registration_client_uri"][len(ISSUER) :]))
    _assert_invalid_token(_manage(client, "GET", registered, token="wrong"))
    _assert_invalid_token(_manage(client, "GET", registered, token=other["registration_access_token"]))

    update_body = {
        **METADATA,
        "client_id": registered["client_id"],
        "client_name": "Переименован",
        "redirect_uris": ["https://rp.example/new-cb"],
        "scope": "openid",
    }
    updated = _manage(client, "PUT", registered, json=update_body)
    assert updated.status_code == 200, updated.get_data(as_text=True)
    assert updated.get_json()["client_name"] == "Переименован"
    assert updated.get_json()["redirect_uris"] == ["https://rp.example/new-cb"]
    # RFC 7592 §2.2: the client_id must be there and match; a secret, if sent, must be the right one.
    no_id = _manage(
        client, "PUT", registered, json={k: v for k, v in update_body.items() if k != "client_id"}
    )
    assert no_id.status_code == 400 and no_id.get_json()["error"] == "invalid_request"
    wrong_secret = _manage(client, "PUT", registered, json={**update_body, "client_secret": "wrong"})
    assert wrong_secret.status_code == 400
    with_secret = {**update_body, "client_secret": registered["client_secret"]}
    right_secret = _manage(client, "PUT", registered, json=with_secret)
    assert right_secret.status_code == 200
    to_public = _manage(client, "PUT", registered, json={**update_body, "token_endpoint_auth_method": "none"})
    assert to_public.status_code == 400 and to_public.get_json()["error"] == "invalid_client_metadata"
    bad_uri = _manage(
        client, "PUT", registered, json={**update_body, "redirect_uris": ["http://evil.example/"]}
    )
    assert bad_uri.get_json()["error"] == "invalid_redirect_uri"

    # Delete: the client, its tokens and its registration access token go.
    rp = {"client_id": registered["client_id"], "client_secret": registered["client_secret"]}
    with app.app_context():
        row = db.session.scalar(select(OAuth2Client).filter_by(client_id=registered["client_id"]))
        row.trusted = True
        row.client_metadata = {**row.client_metadata, "redirect_uris": ["https://rp.example/cb"]}
        db.session.commit()
    sign_in_for_tokens(Browser(app.test_client()), account, rp)
    deleted = _manage(client, "DELETE", registered)
    assert deleted.status_code == 204
    with app.app_context():
        assert db.session.scalar(select(OAuth2Client).filter_by(client_id=registered["client_id"])) is None
        assert db.session.scalars(select(Token).filter_by(client_id=registered["client_id"])).all() == []
        query = select(AuditEvent).filter_by(client_id=registered["client_id"])
        events = [e.event for e in db.session.scalars(query)]
        assert events.count("client.updated") == 2 and "client.deleted" in events
    _assert_invalid_token(_manage(client, "GET", registered))
    assert _manage(client, "GET", other).status_code == 200


def test_a_disabled_client_cannot_manage_itself(app, client):
    registered = _register(client, _initial_token(app)).get_json()
    with app.app_context():
        db.session.execute(update(OAuth2Client).values(enabled=False))
        db.session.commit()
    assert _manage(client, "GET", registered).status_code == 403


def test_protocol_errors_outside_authlib_are_json_too(client):
    response = client.get("/register")
    assert response.status_code == 405 and response.get_json()["error"] == "invalid_request"


# -- names of admin-registered clients are reserved (issue 10) ------------------------------------------

CABINET = "Личный кабинет иностранного гражданина"


@pytest.mark.parametrize(
    "admin_name, name",
    [
        (CABINET, CABINET),
        (CABINET, "ЛИЧНЫЙ КАБИНЕТ иностранного гражданина"),
        (CABINET, "  Личный   кабинет иностранного\u00a0гражданина. "),
        (CABINET, "«Личный кабинет» — иностранного гражданина"),
        (CABINET, "Личный\u200bкабинет иностранного гражданина"),
        (CABINET, "Личныи кабинет иностранного гражданина"),
        # Latin a, o, c, e, p, x and the like for their Cyrillic look-alikes
        (CABINET, "Личный кабинeт инoстрaннoгo грaждaнинa"),
        ("Портал услуг", "Пopтaл ycлуг"),
        ("Справочная", "Cпpaвoчнaя"),
        ("Учёт патентов", "Учет патентов"),
        ("Portal", "Ｐｏｒｔａｌ"),
        ("Portal", "Роrtаl"),
    ],
)
def test_a_client_may_not_take_the_name_of_an_admin_registered_one(app, client, make_rp, admin_name, name):
    make_rp(name=admin_name, trusted=False)
    refused = _register(client, _initial_token(app), {**METADATA, "client_name": name})
    assert refused.status_code == 400
    assert refused.get_json() == {"error": "invalid_client_metadata", "error_description": "name: reserved"}
    # Nor rename itself so (RFC 7592).
    registered = _register(client, _initial_token(app)).get_json()
    update_body = {**METADATA, "client_id": registered["client_id"], "client_name": name}
    renamed = _manage(client, "PUT", registered, json=update_body)
    assert renamed.status_code == 400 and renamed.get_json()["error"] == "invalid_client_metadata"
    assert _manage(client, "GET", registered).get_json()["client_name"] == METADATA["client_name"]


def test_only_admin_names_are_reserved(app, client, make_rp):
    make_rp(name=CABINET)
    # A name that merely resembles: allowed (the consent page says who registered it).
    first = _register(client, _initial_token(app), {**METADATA, "client_name": "Личный кабинет мигранта"})
    assert first.status_code == 201
    # Dynamically registered names reserve nothing, and a client keeps its own name on update.
    second = _register(client, _initial_token(app), {**METADATA, "client_name": "Личный кабинет мигранта"})
    assert second.status_code == 201
    registered = first.get_json()
    same = _manage(
        client,
        "PUT",
        registered,
        json={**METADATA, "client_id": registered["client_id"], "client_name": "Личный кабинет мигранта"},
    )
    assert same.status_code == 200
    with app.app_context():
        kinds = {c.client_name: c.dynamically_registered for c in db.session.scalars(select(OAuth2Client))}
    assert kinds == {CABINET: False, "Личный кабинет мигранта": True}


def test_client_uri_is_registered_and_published(app, client):
    registered = _register(
        client, _initial_token(app), body={**METADATA, "client_uri": "https://rp.example/"}
    )
    assert registered.status_code == 201, registered.get_json()
    assert registered.get_json()["client_uri"] == "https://rp.example/"
    bad = _register(client, _initial_token(app), body={**METADATA, "client_uri": "javascript:alert(1)"})
    assert bad.status_code == 400
    read = _manage(client, "GET", registered.get_json())
    assert read.get_json()["client_uri"] == "https://rp.example/"


def test_registration_of_the_protocol_features(app, client):
    """RFC 7591 §2 jwks / token_endpoint_auth_method, and this provider's
    access_token_format and allowed_resources: stored, published, and private_key_jwt gets no secret."""
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-256", parameters={"kid": "rp-1"}, private=True)
    body = {
        **METADATA,
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.as_dict(private=False)]},
        "access_token_format": "jwt",
        "allowed_resources": ["https://api.rp.example"],
        "require_pushed_authorization_requests": True,
        "dpop_bound_access_tokens": True,
    }
    response = _register(client, _initial_token(app), body)
    assert response.status_code == 201, response.get_json()
    registered = response.get_json()
    assert "client_secret" not in registered
    for name in ("token_endpoint_auth_method", "jwks", "access_token_format", "allowed_resources"):
        assert registered[name] == body[name]
    assert registered["require_pushed_authorization_requests"] is True
    assert registered["dpop_bound_access_tokens"] is True
    read = _manage(client, "GET", registered).get_json()
    assert read["jwks"] == body["jwks"]
    bad = _register(client, _initial_token(app), {**body, "jwks_uri": "https://rp.example/jwks"})
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_client_metadata"
    worse = _register(client, _initial_token(app), {**body, "access_token_format": "paseto"})
    assert worse.status_code == 400 and worse.get_json()["error"] == "invalid_client_metadata"
