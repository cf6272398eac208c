"""The ``idp`` command: ``idp db upgrade``, ``idp keys …``, ``idp accounts create``, ``idp clients create``,
``idp staff …``, ``idp demo``, ``idp serve``. With ``--json`` a command prints the created object as one JSON line."""

from __future__ import annotations

import json
import os
import sys
import time

import click
from flask import current_app
from flask.cli import FlaskGroup
from flask.cli import with_appcontext
from sqlalchemy import select

from .errors import AccountDataError
from .errors import ClientDataError
from .extensions import db
from .models import Account
from .models import OAuth2Client
from .models import SigningKey
from .models import StaffUser
from .models.staff import ROLES
from .oauth import keys
from .services import accounts as account_service
from .services import clients as client_service
from .services import maintenance
from .services import audit
from .services import passwords
from .services import staff as staff_service
from .services import sessions

DEMO_LOGIN = "770000000001"
DEMO_CLIENT_NAME = "Демонстрационный кабинет"
# The demo relying parties of clients/ (`make demo`): file name, client name, scope. The paths are
# the routes of clients/oidc.py.
DEMO_RELYING_PARTIES = (
    ("cabinet", "Личный кабинет иностранного гражданина", "openid profile phone patent offline_access"),
    ("portal", "Портал услуг", "openid profile"),
)


def _now() -> int:
    return int(time.time())


def _password_settings() -> account_service.PasswordSettings:
    cfg = current_app.config
    return account_service.PasswordSettings(cfg["PASSWORDS_BCRYPT_ROUNDS"], cfg["PASSWORDS_TEMPORARY_TTL"])


def _emit(as_json: bool, data: dict, lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        for line in lines:
            click.echo(line)


keys_group = click.Group("keys", help="Signing keys: ensure, rotate, list, retire.")
accounts_group = click.Group("accounts", help="Migrants' accounts.")
clients_group = click.Group("clients", help="Relying parties (OAuth clients).")
staff_group = click.Group("staff", help="Staff of the console at /admin: operators and admins.")


@keys_group.command("ensure")
@with_appcontext
def keys_ensure():
    """Create the first signing keys if there are none (idempotent)."""
    created = keys.ensure_keys(db.session, now=_now())
    db.session.commit()
    click.echo(f"signing keys: {len(created)} created" if created else "signing keys: present")


@keys_group.command("rotate")
@click.option("--now", "immediate", is_flag=True, help="Compromise: sign with new keys at once, unpublish old ones.")
@with_appcontext
def keys_rotate(immediate):
    """Publish new keys; they sign after [keys] publish_ahead; old ones verify until their tokens expire."""
    cfg = current_app.config
    retire_after = cfg["OAUTH_ID_TOKEN_TTL"] + cfg["KEYS_JWKS_MAX_AGE"]
    new = keys.rotate_keys(
        db.session, now=_now(), publish_ahead=cfg["KEYS_PUBLISH_AHEAD"], retire_after=retire_after, immediate=immediate
    )
    db.session.commit()
    keys.forget_cached_keys()
    for row in new:
        click.echo(f"{row.alg} {row.kid} published; signs from {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(row.activates_at))} UTC")


@keys_group.command("list")
@with_appcontext
def keys_list():
    for row in db.session.scalars(select(SigningKey).order_by(SigningKey.id)):
        click.echo(f"{row.kid} {row.alg} activates_at={row.activates_at} expires_at={row.expires_at}")


@keys_group.command("retire")
@click.argument("kid")
@with_appcontext
def keys_retire(kid):
    """Take a key out of JWKS now (tokens it signed stop verifying)."""
    if not keys.retire_key(db.session, kid, now=_now()):
        raise click.ClickException(f"no key with kid {kid}")
    db.session.commit()
    keys.forget_cached_keys()
    click.echo(f"{kid} retired")


@accounts_group.command("create")
@click.option("--login", required=True, help="Patent application number.")
@click.option("--phone", required=True)
@click.option("--surname", required=True)
@click.option("--given-name", required=True)
@click.option("--middle-name")
@click.option("--email")
@click.option("--snils")
@click.option("--locale", default="ru", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def accounts_create(login, phone, surname, given_name, middle_name, email, snils, locale, as_json):
    """Create an account; prints its temporary password once."""
    try:
        account, temporary = account_service.create_account(
            db.session,
            login=login,
            phone=phone,
            surname=surname,
            given_name=given_name,
            middle_name=middle_name,
            email=email,
            snils=snils,
            locale=locale,
            now=_now(),
            settings=_password_settings(),
        )
    except AccountDataError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    _emit(as_json, _account_json(account, temporary), _account_lines(account, temporary))


@accounts_group.command("sign-out")
@click.argument("login")
@with_appcontext
def accounts_sign_out(login):
    """End every session of an account (staff action); relying parties are told by back-channel logout."""
    account = db.session.scalar(select(Account).filter_by(login=account_service.normalize_login(login)))
    if account is None:
        raise click.ClickException(f"no account with login {login}")
    ended = len(sessions.end_account_sessions(db.session, account.id, now=_now()))
    db.session.commit()
    click.echo(f"{account.login}: {ended} session(s) ended")


def _account_json(account: Account, temporary: str) -> dict:
    return {
        "sub": account.sub,
        "login": account.login,
        "phone": account.phone,
        "temporary_password": temporary,
        "temporary_password_expires_at": account.temporary_password_expires_at,
    }


def _account_lines(account: Account, temporary: str) -> list[str]:
    expires = time.strftime("%Y-%m-%d %H:%M", time.gmtime(account.temporary_password_expires_at))
    return [
        f"login:              {account.login}",
        f"temporary password: {temporary}   (shown once; expires {expires} UTC)",
        f"sub:                {account.sub}",
    ]


@clients_group.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True)
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True)
@click.option("--scope", default="openid profile phone patent offline_access", show_default=True)
@click.option("--public", is_flag=True, help="No secret; PKCE required (SPA or native app).")
@click.option("--trusted", is_flag=True, help="First-party: no consent screen.")
@click.option("--grant-type", "grant_types", multiple=True, help="Default: authorization_code refresh_token.")
@click.option("--id-token-alg", default="RS256", type=click.Choice(list(keys.ALGORITHMS)), show_default=True)
@click.option("--backchannel-logout-uri", help="Where logout tokens are POSTed (OIDC Back-Channel Logout).")
@click.option("--frontchannel-logout-uri", help="Loaded in an iframe at logout (OIDC Front-Channel Logout).")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def clients_create(
    name, redirect_uris, post_logout_redirect_uris, scope, public, trusted, grant_types, id_token_alg,
    backchannel_logout_uri, frontchannel_logout_uri, as_json,
):
    """Register a relying party; prints client_id and client_secret once."""
    try:
        client, secret = client_service.create_client(
            db.session,
            name=name,
            redirect_uris=list(redirect_uris),
            post_logout_redirect_uris=list(post_logout_redirect_uris),
            scope=scope,
            public=public,
            trusted=trusted,
            grant_types=list(grant_types) or None,
            id_token_alg=id_token_alg,
            now=_now(),
            backchannel_logout_uri=backchannel_logout_uri,
            frontchannel_logout_uri=frontchannel_logout_uri,
        )
    except ClientDataError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    _emit(as_json, _client_json(client, secret), _client_lines(client, secret))


def _client_json(client: OAuth2Client, secret: str | None) -> dict:
    return {
        "client_id": client.client_id,
        "client_secret": secret,
        "issuer": current_app.config["SERVER_ISSUER"],
        **client.client_metadata,
        "trusted": client.trusted,
    }


def _client_lines(client: OAuth2Client, secret: str | None) -> list[str]:
    lines = [f"client_id:     {client.client_id}"]
    if secret:
        lines.append(f"client_secret: {secret}   (shown once)")
    lines.append(f"issuer:        {current_app.config['SERVER_ISSUER']}")
    return lines


@staff_group.command("create")
@click.option("--username", required=True, help="Lower-case Latin letters, digits, dot, dash, underscore.")
@click.option("--name", "full_name", required=True, help="Full name, as the audit log shows it.")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--qr-png", "qr_png", type=click.Path(dir_okay=False, writable=True), help="Also write the QR code here.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def staff_create(username, full_name, role, qr_png, as_json):
    """Add a staff member (the first admin, say); prints the password and the TOTP QR code once."""
    try:
        enrolment = staff_service.create_staff(
            db.session, _cli_context(), username=username, full_name=full_name, role=role, settings=_staff_settings()
        )
    except staff_service.StaffDataError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    _emit_enrolment(enrolment, qr_png, as_json)


@staff_group.command("reset-credentials")
@click.option("--username", required=True)
@click.option("--qr-png", "qr_png", type=click.Path(dir_okay=False, writable=True), help="Also write the QR code here.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def staff_reset_credentials(username, qr_png, as_json):
    """A new password and TOTP secret for a staff member (lost phone, changed [staff] totp_key)."""
    user = db.session.scalar(select(StaffUser).filter_by(username=username.strip().lower()))
    if user is None:
        raise click.ClickException(f"no staff member {username}")
    enrolment = staff_service.reset_credentials(db.session, _cli_context(), user, settings=_staff_settings())
    db.session.commit()
    _emit_enrolment(enrolment, qr_png, as_json)


@staff_group.command("list")
@with_appcontext
def staff_list():
    for user in db.session.scalars(select(StaffUser).order_by(StaffUser.username)):
        state = "enabled" if user.enabled else "disabled"
        click.echo(f"{user.username} {user.role} {state} {user.full_name}")


def _cli_context() -> audit.Context:
    # Whoever runs the command has the server's configuration; the log can say no more than that.
    return audit.Context(audit.Actor("cli", None, "cli"), None, _now())


def _staff_settings() -> staff_service.StaffSettings:
    return staff_service.StaffSettings.from_config(current_app.config)


def _emit_enrolment(enrolment: staff_service.Enrolment, qr_png: str | None, as_json: bool) -> None:
    user = enrolment.user
    uri = staff_service.provisioning_uri(user, enrolment.totp_secret, current_app.config["STAFF_TOTP_ISSUER"])
    if qr_png:
        with open(qr_png, "wb") as fh:
            fh.write(staff_service.qr_png(uri))
    if as_json:
        click.echo(json.dumps({
            "username": user.username,
            "role": user.role,
            "password": enrolment.password,
            "totp_secret": enrolment.totp_secret,
            "provisioning_uri": uri,
        }))
        return
    click.echo(f"username:  {user.username} ({user.role})")
    click.echo(f"password:  {enrolment.password}   (shown once; to be changed at the first sign-in)")
    click.echo(f"TOTP URI:  {uri}")
    click.echo(f"TOTP key:  {enrolment.totp_secret}   (shown once; for typing into an app by hand)")
    click.echo("Scan this QR code with an authenticator app (RFC 6238: 6 digits, 30 seconds):")
    click.echo(staff_service.qr_text(uri))
    if qr_png:
        click.echo(f"QR code written to {qr_png}")
    click.echo(f"Sign in at {current_app.config['SERVER_ISSUER']}/admin/")


@click.command("demo")
@click.option("--redirect-uri", default="http://127.0.0.1:8000/callback", show_default=True)
@click.option(
    "--cabinet-url", default="http://127.0.0.1:5001", show_default=True, help="Base URL of the demo cabinet."
)
@click.option("--portal-url", default="http://127.0.0.1:5002", show_default=True, help="Base URL of the demo portal.")
@click.option(
    "--registrations", type=click.Path(file_okay=False), help="Where their registrations go [default: instance/demo]."
)
@with_appcontext
def demo(redirect_uri, cabinet_url, portal_url, registrations):
    """Create (or refresh) the demo relying parties and a demo account, and explain how to try a sign-in.

    The cabinet and the portal of clients/ are registered once; their registrations (the JSON of
    `idp clients create --json`, with the secret) are written to files they read at start-up. A run
    keeps them while they still match the database, and replaces them otherwise."""
    issuer = current_app.config["SERVER_ISSUER"]
    keys.ensure_keys(db.session, now=_now())
    client = next(
        (c for c in db.session.scalars(select(OAuth2Client)) if c.client_metadata.get("client_name") == DEMO_CLIENT_NAME),
        None,
    )
    secret = None
    if client is None:
        client, secret = client_service.create_client(
            db.session,
            name=DEMO_CLIENT_NAME,
            redirect_uris=[redirect_uri],
            post_logout_redirect_uris=["http://127.0.0.1:8000/"],
            scope="openid profile phone patent offline_access",
            public=True,
            trusted=False,
            grant_types=None,
            id_token_alg="RS256",
            now=_now(),
        )
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
            now=_now(),
            settings=_password_settings(),
        )
    else:
        account_service.set_temporary_password(db.session, account, temporary, now=_now(), settings=_password_settings())
    directory = registrations or os.path.join(current_app.instance_path, "demo")
    base_urls = {"cabinet": cabinet_url.rstrip("/"), "portal": portal_url.rstrip("/")}
    relying_parties = [
        (name, base_urls[key], os.path.join(directory, f"{key}.json"), scope)
        for key, name, scope in DEMO_RELYING_PARTIES
    ]
    new_registrations = [
        (path, _demo_relying_party(path, name, scope, url)) for name, url, path, scope in relying_parties
    ]
    db.session.commit()
    for path, registration in new_registrations:
        if registration is not None:
            _write_private_json(path, registration)
    authorize = (
        f"{issuer}/authorize?response_type=code&client_id={client.client_id}"
        f"&redirect_uri={redirect_uri}&scope=openid+profile+phone+patent&state=demo"
        f"&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGcSGFjb8M&code_challenge_method=S256"
    )
    click.echo("")
    click.echo(f"Demo account    login: {account.login}   temporary password: {temporary}")
    click.echo(f"Demo client     client_id: {client.client_id} (public, PKCE)")
    click.echo(f"Sign in:        {issuer}/login")
    click.echo(f"As a relying party would (PKCE verifier dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk):\n  {authorize}")
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
    client = db.session.scalar(select(OAuth2Client).filter_by(client_id=client_id)) if client_id else None
    redirect_uris = [base_url + "/callback"]
    secret = registered.get("client_secret")
    if client and client.redirect_uris == redirect_uris and client.check_client_secret(secret):
        return None
    for stale in db.session.scalars(select(OAuth2Client)):
        if stale.client_metadata.get("client_name") == name:
            db.session.delete(stale)
    client, secret = client_service.create_client(
        db.session,
        name=name,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=[base_url + "/logged-out"],
        scope=scope,
        public=False,
        trusted=True,
        grant_types=None,
        id_token_alg="RS256",
        now=_now(),
        backchannel_logout_uri=base_url + "/backchannel-logout",
    )
    return _client_json(client, secret)


def _write_private_json(path: str, data: dict) -> None:
    # The file holds a client secret: readable by its owner only.
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)


@click.command("purge")
@click.option("--retention", default=30 * 86400, show_default=True, help="Seconds to keep ended sessions and dead tokens.")
@with_appcontext
def purge(retention):
    """Delete expired codes, sessions and tokens (run daily from cron or a systemd timer)."""
    counts = maintenance.purge_expired(db.session, now=_now(), retention=retention)
    db.session.commit()
    click.echo(", ".join(f"{name}: {count}" for name, count in counts.items()))


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve(host, port):
    """Development server. In production run a WSGI server: gunicorn 'idp:create_app()'."""
    from werkzeug.serving import run_simple

    from . import create_app

    # why: Flask ignores app.run() inside its own CLI, so the server is started directly.
    run_simple(host, port, create_app(), threaded=True, use_reloader=False)


def register(app) -> None:
    for command in (keys_group, accounts_group, clients_group, staff_group, demo, purge, serve):
        app.cli.add_command(command)


def _create_app():
    from . import create_app

    return create_app()


cli = FlaskGroup(create_app=_create_app, add_default_commands=False, add_version_option=False, help=__doc__)


def main() -> None:
    try:
        cli.main(prog_name="idp")
    except Exception as error:  # noqa: BLE001 - a config error is a message, not a traceback
        from .config import ConfigError

        if isinstance(error, ConfigError):
            click.echo(f"configuration error: {error}", err=True)
            sys.exit(2)
        raise
