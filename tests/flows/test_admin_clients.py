"""Admins: relying parties (create, edit, secret, disable, delete, per-client lifetimes), staff members,
the audit log and its filters."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent
from idp.models import OAuth2Client
from idp.models import StaffUser

from ..helpers import Browser
from ..oauth._flow import bearer
from ..oauth._flow import sign_in_for_tokens
from ..oauth._flow import verify_id_token
from ..staff import post_form
from ..staff import staff_sign_in

CLIENT = {
    "name": "Кабинет мигранта",
    "client_type": "confidential",
    "redirect_uris": "https://rp.example/cb\nhttp://127.0.0.1:8000/cb",
    "post_logout_redirect_uris": "https://rp.example/bye",
    "backchannel_logout_uri": "https://rp.example/backchannel",
    "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
    "scopes": ["openid", "profile", "offline_access"],
    "trusted": "y",
    "id_token_alg": "RS256",
    "access_token_ttl": "",
    "id_token_ttl": "",
    "refresh_token_ttl": "",
}


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _created(response) -> dict:
    page = _text(response)
    secret = re.search(r'id="client-secret" value="([^"]+)"', page)
    return {
        "client_id": re.search(r'id="client-id" value="([^"]+)"', page).group(1),
        "client_secret": secret.group(1) if secret else None,
    }


def _client_credentials(client, registered: dict):
    return client.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "profile"},
        auth=(registered["client_id"], registered["client_secret"]),
    )


def _row(app, client_id: str) -> OAuth2Client | None:
    with app.app_context():
        row = db.session.scalar(select(OAuth2Client).filter_by(client_id=client_id))
        if row is not None:
            db.session.expunge(row)
        return row


def test_register_a_client_and_use_its_secret_once_shown(app, admin_client):
    response = post_form(admin_client, "/admin/clients/new", CLIENT)
    assert response.status_code == 200
    page = _text(response)
    assert "Секрет показан один раз" in page
    registered = _created(response)
    row = _row(app, registered["client_id"])
    assert row.client_metadata["backchannel_logout_uri"] == "https://rp.example/backchannel"
    assert row.client_metadata["backchannel_logout_session_required"] is True
    assert row.redirect_uris == ["https://rp.example/cb", "http://127.0.0.1:8000/cb"] and row.trusted
    assert not row.dynamically_registered
    assert registered["client_secret"] not in str(row.client_metadata)
    assert row.secret_hash != registered["client_secret"]
    assert _client_credentials(admin_client, registered).status_code == 200
    assert registered["client_secret"] not in _text(
        admin_client.get(f"/admin/clients/{registered['client_id']}")
    )
    [event] = db_events(app, "client.created")
    assert event.client_id == registered["client_id"] and "secret" not in str(event.details)


def db_events(app, name: str) -> list[AuditEvent]:
    with app.app_context():
        return db.session.scalars(select(AuditEvent).filter_by(event=name)).all()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("redirect_uris", "http://rp.example/cb", "нужен https"),
        ("redirect_uris", "https://rp.example/cb#frag", "без «#»"),
        ("post_logout_redirect_uris", "ftp://rp.example/", "нужен https"),
        ("backchannel_logout_uri", "http://rp.example/bc", "нужен https"),
        ("frontchannel_logout_uri", "https://other.example/fc", "на том же сайте"),
        ("scopes", [], "Выберите хотя бы одну область доступа."),
        ("access_token_ttl", "100000", "От 60 до 600 секунд"),
        ("name", "", "обязательн"),
    ],
)
def test_bad_client_data_is_refused_on_its_field(app, admin_client, field, value, message):
    response = post_form(admin_client, "/admin/clients/new", {**CLIENT, field: value})
    page = _text(response)
    assert message.lower() in page.lower()
    assert 'class="field-error"' in page or 'class="invalid"' in page
    with app.app_context():
        assert db.session.scalars(select(OAuth2Client)).all() == []


def test_a_public_client_has_no_secret(app, admin_client):
    data = {**CLIENT, "client_type": "public", "grant_types": ["authorization_code"], "trusted": ""}
    response = post_form(admin_client, "/admin/clients/new", data)
    registered = _created(response)
    assert registered["client_secret"] is None and "секрета нет" in _text(response)
    assert _row(app, registered["client_id"]).is_public
    refused = post_form(admin_client, "/admin/clients/new", {**data, "grant_types": ["client_credentials"]})
    assert "client_credentials недоступен" in _text(refused)


def test_edit_rotate_disable_enable_delete(app, admin_client, account):
    registered = _created(post_form(admin_client, "/admin/clients/new", CLIENT))
    path = f"/admin/clients/{registered['client_id']}"
    edit = {
        **CLIENT,
        "name": "Новое имя",
        "redirect_uris": "https://rp.example/cb",
        "trusted": "",
        "access_token_ttl": "120",
        "id_token_ttl": "300",
    }
    assert post_form(admin_client, path, edit).status_code == 302
    row = _row(app, registered["client_id"])
    assert (
        row.client_name == "Новое имя" and row.redirect_uris == ["https://rp.example/cb"] and not row.trusted
    )
    assert row.client_metadata["access_token_ttl"] == 120
    assert row.client_metadata["backchannel_logout_uri"] == "https://rp.example/backchannel"
    edit["backchannel_logout_uri"] = ""
    edit["frontchannel_logout_uri"] = "https://rp.example/frontchannel"
    assert post_form(admin_client, path, edit).status_code == 302
    metadata = _row(app, registered["client_id"]).client_metadata
    assert "backchannel_logout_uri" not in metadata and "backchannel_logout_session_required" not in metadata
    assert metadata["frontchannel_logout_uri"] == "https://rp.example/frontchannel"
    assert post_form(admin_client, path, {**edit, "client_type": "public"}).status_code == 302
    assert not _row(app, registered["client_id"]).is_public  # the type stays as registered

    # Per-client lifetimes are honoured by the token endpoint and the ID token.
    rp = {**registered, "redirect_uris": ["https://rp.example/cb"]}
    post_form(admin_client, path, {**edit, "trusted": "y"})
    tokens, _ = sign_in_for_tokens(Browser(app.test_client()), account, rp)
    assert tokens["expires_in"] == 120
    claims = verify_id_token(admin_client, tokens["id_token"]).claims
    assert claims["exp"] - claims["iat"] == 300

    # A new secret: the old one stops at once.
    unconfirmed = post_form(admin_client, f"{path}/secret", {}, page_path=path)
    assert unconfirmed.status_code == 400
    rotated = _created(post_form(admin_client, f"{path}/secret", {"secret-confirm": "y"}, page_path=path))
    assert (
        rotated["client_id"] == registered["client_id"]
        and rotated["client_secret"] != registered["client_secret"]
    )
    assert _client_credentials(admin_client, registered).status_code == 401
    assert _client_credentials(admin_client, rotated).status_code == 200

    # Disabled: no tokens, and the ones it holds die.
    assert admin_client.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 200
    assert (
        post_form(admin_client, f"{path}/disable", {"state-confirm": "y"}, page_path=path).status_code == 302
    )
    assert _client_credentials(admin_client, rotated).status_code == 401
    assert admin_client.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    assert (
        post_form(admin_client, f"{path}/enable", {"state-confirm": "y"}, page_path=path).status_code == 302
    )
    assert _client_credentials(admin_client, rotated).status_code == 200

    # Deleted, after confirmation.
    assert post_form(admin_client, f"{path}/delete", {}, page_path=path).status_code == 400
    deleted = post_form(
        admin_client, f"{path}/delete", {"delete-confirm": "y", "delete-reason": "закрыт"}, page_path=path
    )
    assert deleted.status_code == 302 and _row(app, registered["client_id"]) is None
    assert admin_client.get(path).status_code == 404
    assert [e.reason for e in db_events(app, "client.deleted")] == ["закрыт"]
    assert {e.event for e in db_events(app, "client.disabled") + db_events(app, "client.secret_rotated")} == {
        "client.disabled",
        "client.secret_rotated",
    }


def test_manage_staff(app, admin_client):
    created = post_form(
        admin_client,
        "/admin/staff/new",
        {"username": "Sidorova", "full_name": "Сидорова Анна", "role": "operator"},
    )
    page = _text(created)
    password = re.search(r'id="enrolled-password">([^<]+)<', page).group(1)
    secret = re.search(r'id="enrolled-totp-secret">([^<]+)<', page).group(1)
    assert 'src="data:image/png;base64,' in page and f"secret={secret}" in page
    member = {"username": "sidorova", "password": password, "totp_secret": secret}
    client = app.test_client()
    assert staff_sign_in(client, member).headers["Location"] == "/admin/password"
    with app.app_context():
        new = db.session.scalar(select(StaffUser).filter_by(username="sidorova"))
        assert new.role == "operator" and secret not in new.totp_secret_encrypted
    path = f"/admin/staff/{new.id}"
    # Promoted: the session ends, the next one is an admin's.
    promoted = post_form(
        admin_client, f"{path}/role", {"role-role": "admin", "role-confirm": "y"}, page_path=path
    )
    assert promoted.status_code == 302
    assert client.get("/admin/password").status_code == 302
    # Credentials reset: new password and secret, shown once.
    reset = _text(post_form(admin_client, f"{path}/reset", {"reset-confirm": "y"}, page_path=path))
    assert re.search(r'id="enrolled-totp-secret">([^<]+)<', reset).group(1) != secret
    taken = post_form(
        admin_client, "/admin/staff/new", {"username": "sidorova", "full_name": "x", "role": "admin"}
    )
    assert "Такое имя пользователя уже есть." in _text(taken)


def test_the_last_admin_stays(app, admin_client):
    me = admin_client.member["id"]
    path = f"/admin/staff/{me}"
    refused = post_form(
        admin_client, f"{path}/role", {"role-role": "operator", "role-confirm": "y"}, page_path=path
    )
    assert "последний администратор" in _text(refused)
    refused = post_form(admin_client, f"{path}/disable", {"state-confirm": "y"}, page_path=path)
    assert "последний администратор" in _text(refused)
    with app.app_context():
        user = db.session.get(StaffUser, me)
        assert user.role == "admin" and user.enabled


def test_audit_log_filters(app, admin_client, make_account):
    other = make_account(login="77-0000009", surname="Другой")
    target = make_account(login="77-0000008", surname="Нужный")
    post_form(
        admin_client, f"/admin/accounts/{target['id']}/phone", {"phone": "+79990001122", "reason": "сменил"}
    )
    post_form(
        admin_client, f"/admin/accounts/{other['id']}/phone", {"phone": "+79990001133", "reason": "тоже"}
    )
    registered = _created(post_form(admin_client, "/admin/clients/new", CLIENT))

    def rows(**query):
        page = _text(admin_client.get("/admin/audit", query_string=query))
        body = page[page.index("<tbody>") :] if "<tbody>" in page else ""
        return re.findall(r"<tr>(.*?)</tr>", body, re.S)

    assert len(rows(account="77 0000008")) == 1 and "сменил" in rows(account="77 0000008")[0]
    assert len(rows(event="account.phone_changed")) == 2
    assert len(rows(client=registered["client_id"])) == 1
    assert len(rows(actor="admin1")) >= 4
    assert rows(actor="nobody") == []
    assert rows(account="77-9999999") == []
    assert len(rows(since="2000-01-01", until="2000-01-02")) == 0
    assert len(rows(event="account.phone_changed", since="2000-01-01")) == 2
    # Details read in Russian, with the values as staff typed them; booleans as «да»/«нет».
    [changed] = rows(account="77 0000008")
    assert "было: +79161234567" in changed and "стало: +79990001122" in changed
    [created] = rows(client=registered["client_id"])
    assert re.search(r"публичный: (да|нет)", created) and "True" not in created and "False" not in created


def test_an_admin_may_also_serve_at_the_counter(admin_client):
    assert admin_client.get("/admin/accounts/").status_code == 200
    assert admin_client.get("/admin/").headers["Location"] == "/admin/clients"


def test_the_console_sets_the_protocol_metadata(app, admin_client):
    """README "High-assurance relying parties": auth method and keys, JWT access tokens and resources, PAR
    and DPoP, set in the console, shown again on the edit page, kept by an edit."""
    import json

    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-256", parameters={"kid": "c-1"}, private=True)
    jwks = {"keys": [key.as_dict(private=False)]}
    fields = {
        "auth_method": "private_key_jwt",
        "jwks": json.dumps(jwks),
        "access_token_format": "jwt",
        "resources": "https://api.rp.example",
        "require_par": "y",
        "dpop_bound": "y",
    }
    registered = _created(post_form(admin_client, "/admin/clients/new", {**CLIENT, **fields}))
    metadata = _row(app, registered["client_id"]).client_metadata
    assert metadata["token_endpoint_auth_method"] == "private_key_jwt" and metadata["jwks"] == jwks
    assert metadata["access_token_format"] == "jwt"
    assert metadata["allowed_resources"] == ["https://api.rp.example"]
    assert metadata["require_pushed_authorization_requests"] is True
    assert metadata["dpop_bound_access_tokens"] is True
    path = f"/admin/clients/{registered['client_id']}"
    page = _text(admin_client.get(path))
    assert "private_key_jwt" in page and "https://api.rp.example" in page and '"kid": "c-1"' in page
    assert post_form(admin_client, path, {**CLIENT, **fields, "name": "Переименованный"}).status_code == 302
    kept = _row(app, registered["client_id"]).client_metadata
    assert kept["client_name"] == "Переименованный" and kept["jwks"] == jwks
    assert kept["dpop_bound_access_tokens"] is True
    refused = post_form(admin_client, path, {**CLIENT, **fields, "jwks": "{not json"})
    assert refused.status_code == 200 and 'class="field-error"' in _text(refused)
    assert _row(app, registered["client_id"]).client_metadata["jwks"] == jwks
