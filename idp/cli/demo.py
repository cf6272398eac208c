"""``idp demo``: the demo relying parties of clients/ and a demo account, to try a sign-in."""

from __future__ import annotations

import json
import os
from urllib.parse import urlencode

import click
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from ..extensions import db
from ..models import Account
from ..models import OAuth2Client
from ..services import accounts as account_service
from ..services import clients as client_service
from ..services import keys
from ..services import passwords
from ..services.clients import ClientInput
from .clients import client_json
from .common import json_option
from .common import now
from .common import record
from .common import runtime
from .common import settings

DEMO_LOGIN = "770000000001"
DEMO_CLIENT_NAME = "Демонстрационный кабинет"
# The demo relying parties of clients/ (`make demo`): file name, client name, scope. The paths are
# the routes of clients/oidc.py.
DEMO_RELYING_PARTIES = (
    ("cabinet", "Личный кабинет иностранного гражданина", "openid profile phone patent offline_access"),
    ("portal", "Портал услуг", "openid profile"),
)
# The code verifier of RFC 7636 Appendix B: public, fine for a demonstration only.
DEMO_CODE_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


@click.command("demo")
@click.option("--redirect-uri", default="http://127.0.0.1:8000/callback", show_default=True)
@click.option(
    "--cabinet-url", default="http://127.0.0.1:5001", show_default=True, help="Base URL of the demo cabinet."
)
@click.option(
    "--portal-url", default="http://127.0.0.1:5002", show_default=True, help="Base URL of the demo portal."
)
@click.option(
    "--registrations",
    type=click.Path(file_okay=False),
    help="Where their registrations go [default: instance/demo].",
)
@json_option
@with_appcontext
def demo(redirect_uri, cabinet_url, portal_url, registrations, as_json):
    """Create (or refresh) the demo relying parties and a demo account, and explain how to try a sign-in.

    The cabinet and the portal of clients/ are registered once; their registrations (the JSON of
    `idp clients create --json`, with the secret) are written to files they read at start-up. A run
    keeps them while they still match the database, and replaces them otherwise."""
    issuer = settings().server.issuer
    created = keys.ensure_keys(db.session, now=now())
    if created:
        record("keys.created", details={"kid": " ".join(row.kid for row in created)})
    client = next(
        (
            c
            for c in db.session.scalars(select(OAuth2Client))
            if c.client_metadata.get("client_name") == DEMO_CLIENT_NAME
        ),
        None,
    )
    if client is None:
        data = ClientInput(
            name=DEMO_CLIENT_NAME,
            redirect_uris=[redirect_uri],
            post_logout_redirect_uris=["http://127.0.0.1:8000/"],
            scope="openid profile phone patent offline_access",
            public=True,
        )
        client, _secret = client_service.create_client(db.session, data, limits=settings().oauth, now=now())
    account = db.session.scalar(select(Account).filter_by(login=DEMO_LOGIN))
    temporary = passwords.generate_temporary_password()
    if account is None:
        account, temporary = account_service.create_account(
            db.session,
            login=DEMO_LOGIN,
            phone="+79161234567",
            surname="Иванов",
            given_name="Алишер",
            middle_name=None,
            email=None,
            snils=None,
            locale="ru",
            now=now(),
            settings=settings().passwords,
        )
    else:
        account_service.set_temporary_password(
            db.session, account, temporary, now=now(), settings=settings().passwords
        )
    directory = registrations or os.path.join(current_app.instance_path, "demo")
    base_urls = {"cabinet": cabinet_url.rstrip("/"), "portal": portal_url.rstrip("/")}
    relying_parties = [
        (name, base_urls[key], os.path.join(directory, f"{key}.json"), scope)
        for key, name, scope in DEMO_RELYING_PARTIES
    ]
    new_registrations = [
        (path, _demo_relying_party(path, name, scope, url)) for name, url, path, scope in relying_parties
    ]
    # One event for the whole command: the demo account's new temporary password and demo clients.
    record("demo.prepared", account_id=account.id, details={"login": account.login})
    db.session.commit()
    for path, registration in new_registrations:
        if registration is not None:
            _write_private_json(path, registration)
    query = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid profile phone patent",
        "state": "demo",
        "code_challenge": create_s256_code_challenge(DEMO_CODE_VERIFIER),
        "code_challenge_method": "S256",
    }
    authorize = f"{issuer}/authorize?" + urlencode(query, safe=":/")
    if as_json:
        data = {
            "login": account.login,
            "temporary_password": temporary,
            "client_id": client.client_id,
            "authorization_url": authorize,
            "code_verifier": DEMO_CODE_VERIFIER,
            "registrations": {os.path.basename(path): path for _name, _url, path, _scope in relying_parties},
        }
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    click.echo("")
    click.echo(f"Demo account    login: {account.login}   temporary password: {temporary}")
    click.echo(f"Demo client     client_id: {client.client_id} (public, PKCE)")
    click.echo(f"Sign in:        {issuer}/login")
    click.echo(f"As a relying party would (PKCE verifier {DEMO_CODE_VERIFIER}):\n  {authorize}")
    click.echo(f"Demo relying parties (clients/; registrations in {directory}):")
    for name, url, path, _scope in relying_parties:
        click.echo(f"  {url:<24} {name}   ({os.path.basename(path)})")
    click.echo("")


def _demo_relying_party(path: str, name: str, scope: str, base_url: str) -> dict | None:
    """A new registration for a demo RP, or None while the one in ``path`` still matches the database."""
    try:
        with open(path, encoding="utf-8") as fh:
            registered = json.load(fh)
    except (OSError, ValueError):
        registered = {}
    if not isinstance(registered, dict):
        registered = {}
    client_id = registered.get("client_id")
    client = client_service.find_client(db.session, client_id)
    redirect_uris = [base_url + "/callback"]
    secret = registered.get("client_secret")
    if client and client.redirect_uris == redirect_uris and client.check_client_secret(secret):
        return None
    for stale in db.session.scalars(select(OAuth2Client)):
        if stale.client_metadata.get("client_name") == name:
            db.session.delete(stale)
    data = ClientInput(
        name=name,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=[base_url + "/logged-out"],
        scope=scope,
        trusted=True,
        backchannel_logout_uri=base_url + "/backchannel-logout",
    )
    client, secret = client_service.create_client(
        db.session, data, limits=settings().oauth, now=now(), outbound_policy=runtime().outbound.policy
    )
    return client_json(client, secret)


def _write_private_json(path: str, data: dict) -> None:
    # The file holds a client secret: readable by its owner only.
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)
