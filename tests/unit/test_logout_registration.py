"""Registering logout URIs (`idp clients create --backchannel-logout-uri/--frontchannel-logout-uri`) and
the demo relying parties of `idp demo`."""

from __future__ import annotations

import json
import os
import stat

import pytest
from sqlalchemy import select

from clients import cabinet
from idp.errors import ClientDataError
from idp.extensions import db
from idp.models import OAuth2Client

from ..helpers import settings_of


def _create(app, *args):
    return app.test_cli_runner().invoke(
        args=[
            "clients",
            "create",
            "--name",
            "Кабинет",
            "--redirect-uri",
            "https://rp.example/cb",
            *args,
            "--json",
        ]
    )


def test_logout_uris_are_stored_with_session_required(app):
    result = _create(
        app,
        "--backchannel-logout-uri",
        "https://rp.example/bc?x=1",
        "--frontchannel-logout-uri",
        "https://rp.example/fc",
    )
    assert result.exit_code == 0, result.output
    registered = json.loads(result.output)
    # Back-Channel Logout §2.2 and Front-Channel Logout §2: sid is always sent, and the client is told so.
    assert registered["backchannel_logout_uri"] == "https://rp.example/bc?x=1"
    assert registered["backchannel_logout_session_required"] is True
    assert registered["frontchannel_logout_uri"] == "https://rp.example/fc"
    assert registered["frontchannel_logout_session_required"] is True
    with app.app_context():
        client = db.session.scalar(select(OAuth2Client).filter_by(client_id=registered["client_id"]))
        assert client.backchannel_logout_uri == "https://rp.example/bc?x=1"
        assert client.frontchannel_logout_uri == "https://rp.example/fc"
        assert not client.dynamically_registered


def test_without_logout_uris_nothing_is_added(app):
    registered = json.loads(_create(app).output)
    assert not {key for key in registered if "channel_logout" in key}


BACK, FRONT = "--backchannel-logout-uri", "--frontchannel-logout-uri"
NOT_AN_ORIGIN_OF_OURS = "must have the scheme, host and port of a redirect URI"


@pytest.mark.parametrize(
    "option, uri, message",
    [
        (BACK, "http://rp.example/bc", "back-channel logout URI 'http://rp.example/bc' must use https"),
        (BACK, "https://rp.example/bc#x", "must not contain a fragment"),
        (BACK, "rp.example/bc", "must use https"),
        (FRONT, "http://rp.example/fc", "front-channel logout URI 'http://rp.example/fc' must use https"),
        (FRONT, "https://rp.example/fc#x", "must not contain a fragment"),
        # Front-Channel Logout §2: scheme, host and port of a registered redirect URI.
        (FRONT, "https://other.example/fc", NOT_AN_ORIGIN_OF_OURS),
        (FRONT, "https://rp.example:8443/fc", NOT_AN_ORIGIN_OF_OURS),
    ],
)
def test_bad_logout_uris_are_refused(app, option, uri, message):
    result = _create(app, option, uri)
    assert result.exit_code != 0 and message in result.output
    with app.app_context():
        assert db.session.scalar(select(OAuth2Client)) is None


def test_loopback_http_logout_uris_are_accepted(make_rp):
    registered = make_rp(
        redirect_uris=["http://127.0.0.1:5001/callback"],
        backchannel_logout_uri="http://127.0.0.1:5001/backchannel-logout",
        frontchannel_logout_uri="http://127.0.0.1:5001/frontchannel-logout",
    )
    assert registered["backchannel_logout_uri"].startswith("http://127.0.0.1:5001/")


def test_create_client_refuses_directly_too(app):
    from idp.services.clients import ClientInput
    from idp.services.clients import create_client

    data = ClientInput(
        name="X", redirect_uris=["https://rp.example/cb"], backchannel_logout_uri="ftp://rp.example/bc"
    )
    with app.app_context(), pytest.raises(ClientDataError) as error:
        create_client(db.session, data, limits=settings_of(app).oauth, now=0)
    assert (error.value.field, error.value.reason) == ("backchannel_logout_uri", "uri_scheme")


def _demo(app, directory):
    result = app.test_cli_runner().invoke(args=["demo", "--registrations", str(directory)])
    assert result.exit_code == 0, result.output
    return {name: json.loads((directory / f"{name}.json").read_text()) for name in ("cabinet", "portal")}


def test_demo_registers_the_demo_relying_parties_once(app, tmp_path):
    first = _demo(app, tmp_path)
    cabinet_rp, portal_rp = first["cabinet"], first["portal"]
    assert cabinet_rp["redirect_uris"] == ["http://127.0.0.1:5001/callback"]
    assert cabinet_rp["post_logout_redirect_uris"] == ["http://127.0.0.1:5001/logged-out"]
    assert cabinet_rp["backchannel_logout_uri"] == "http://127.0.0.1:5001/backchannel-logout"
    assert cabinet_rp["scope"] == cabinet.SCOPE and portal_rp["scope"] == "openid profile"
    assert cabinet_rp["client_secret"] and cabinet_rp["issuer"] == "http://localhost"
    assert portal_rp["redirect_uris"] == ["http://127.0.0.1:5002/callback"]
    # The files hold secrets: owner only.
    assert stat.S_IMODE(os.stat(tmp_path / "cabinet.json").st_mode) == 0o600
    # The cabinet starts from its file.
    assert cabinet.create_app({"REGISTRATION": str(tmp_path / "cabinet.json")}).extensions["oidc_rp"]

    # Idempotent: a second run keeps both registrations.
    assert _demo(app, tmp_path) == first
    # A lost file: that RP is registered anew and its old registration removed.
    (tmp_path / "portal.json").unlink()
    third = _demo(app, tmp_path)
    assert third["cabinet"] == cabinet_rp and third["portal"]["client_id"] != portal_rp["client_id"]
    with app.app_context():
        names = sorted(c.client_name for c in db.session.scalars(select(OAuth2Client)))
    assert names == ["Демонстрационный кабинет", "Личный кабинет иностранного гражданина", "Портал услуг"]
