"""Back-channel logout URIs the provider must not call (issue 10, SSRF), each refused on every way a
client is registered or changed — RFC 7591 registration, RFC 7592 update, the staff console (new and
edit) and `idp clients create` — in production. Nothing is ever sent to them: they are refused before
any request. (Refusals at delivery time: tests/oauth/test_backchannel_logout.py.)"""

from __future__ import annotations

import html
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from idp import create_app
from idp.errors import UNSAFE_URL_EXPLANATIONS as EXPLANATIONS
from idp.extensions import db
from idp.extensions import limiter
from idp.models import OAuth2Client
from idp.runtime import of

from ..conftest import make_config
from ..conftest import wipe_tables
from ..helpers import csrf_token
from ..oauth.test_registration import METADATA
from ..oauth.test_registration import _initial_token
from ..oauth.test_registration import _manage
from ..oauth.test_registration import _register
from ..outbound import FORBIDDEN
from ..staff import create_member
from ..staff import post_form
from ..staff import staff_sign_in
from .test_admin_clients import CLIENT

PRODUCTION = {"environment": "production", "secret_key": "s" * 32}
GOOD_URI = "https://rp.example/backchannel"
# Where each path's answer says why. A URI without https at all is refused by the redirect URI rules
# before the outbound ones, in their words.
WHY = {**EXPLANATIONS, "scheme": "must use https"}
RUSSIAN_WHY = {
    "userinfo": "не должен содержать имя пользователя или пароль",
    "scheme": "нужен https",
    "address": "ведёт во внутреннюю или служебную сеть",
    "numeric_host": "в необычной числовой форме",
    "host": "имя хоста записано необычно",
    "internal_name": "ведёт на внутреннее имя",
    "syntax": "не подходит",
}


@pytest.fixture(scope="module")
def production(_schema):
    """One app in production mode for every case of this module (an app per case would cost minutes):
    a client registered through RFC 7591 and one by an admin, whose changes the cases try, and an admin
    signed in to the console."""
    app = create_app(make_config(server=PRODUCTION))
    app.config["TESTING"] = True
    with app.app_context():
        limiter.reset()
        of(app).keys.forget()
    client, admin = app.test_client(), app.test_client()
    assert staff_sign_in(admin, create_member(app, "admin", "admin1")).status_code == 302
    registered = _register(client, _initial_token(app)).get_json()
    assert post_form(admin, "/admin/clients/new", CLIENT).status_code == 200
    [by_admin] = [row.client_id for row in _clients(app) if row.client_id != registered["client_id"]]
    csrf = csrf_token(admin.get("/admin/clients/new").get_data(as_text=True))
    yield SimpleNamespace(
        app=app, client=client, admin=admin, registered=registered, by_admin=by_admin, csrf=csrf
    )
    wipe_tables(app)


def _clients(app) -> list[OAuth2Client]:
    with app.app_context():
        rows = db.session.scalars(select(OAuth2Client)).all()
        db.session.expunge_all()
        return rows


def _unchanged(app) -> None:
    """Still the two clients of the module, with their back-channel URIs as registered."""
    assert [row.backchannel_logout_uri for row in _clients(app)] == [GOOD_URI, GOOD_URI]


@pytest.mark.parametrize("uri, reason", FORBIDDEN)
def test_refused_at_registration_and_at_update(production, uri, reason):
    app, client, registered = production.app, production.client, production.registered
    bad = _register(client, _initial_token(app), {**METADATA, "backchannel_logout_uri": uri})
    assert bad.status_code == 400, bad.get_data(as_text=True)
    # RFC 7591 §3.2.2: a logout URI is client metadata, not a redirection URI.
    assert bad.get_json()["error"] == "invalid_client_metadata"
    assert bad.get_json()["error_description"].startswith("backchannel_logout_uri: ")

    update = {**METADATA, "client_id": registered["client_id"], "backchannel_logout_uri": uri}
    refused = _manage(client, "PUT", registered, json=update)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_client_metadata"
    assert refused.get_json()["error_description"].startswith("backchannel_logout_uri: ")
    _unchanged(app)


def test_registration_says_why(production):
    metadata = {**METADATA, "backchannel_logout_uri": "https://10.0.0.5/bc"}
    bad = _register(production.client, _initial_token(production.app), metadata)
    description = bad.get_json()["error_description"]
    assert description == f"backchannel_logout_uri: {EXPLANATIONS['address']} (private 10.0.0.0/8)"


@pytest.mark.parametrize("uri, reason", FORBIDDEN)
def test_refused_in_the_console_on_its_field(production, uri, reason):
    data = {"csrf_token": production.csrf, **CLIENT, "backchannel_logout_uri": uri}
    for path in ("/admin/clients/new", f"/admin/clients/{production.by_admin}"):
        response = production.admin.post(path, data=data)
        assert response.status_code == 200
        page = html.unescape(response.get_data(as_text=True))
        field = page[page.index('name="backchannel_logout_uri"') - 600 :][:1500]
        assert RUSSIAN_WHY[reason] in field, field
    _unchanged(production.app)


@pytest.mark.parametrize("uri, reason", FORBIDDEN)
def test_refused_by_the_cli(production, uri, reason):
    result = production.app.test_cli_runner().invoke(
        args=[
            "clients",
            "create",
            "--name",
            "Кабинет",
            "--redirect-uri",
            "https://rp.example/cb",
            "--backchannel-logout-uri",
            uri,
        ]
    )
    assert result.exit_code != 0
    assert f"back-channel logout URI {uri!r}" in result.output and WHY[reason] in result.output, result.output
    _unchanged(production.app)
