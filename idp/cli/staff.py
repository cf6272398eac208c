"""``idp staff``: the staff of the console at /admin — create, reset credentials, list."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ..errors import StaffDataError
from ..extensions import db
from ..models import StaffUser
from ..models.staff import ROLES
from ..services.staff import members
from ..services.staff import totp
from .common import cli_context
from .common import committed
from .common import emit
from .common import json_option
from .common import settings

staff_group = click.Group("staff", help="Staff of the console at /admin: operators and admins.")


@staff_group.command("create")
@click.option("--username", required=True, help="Lower-case Latin letters, digits, dot, dash, underscore.")
@click.option("--name", "full_name", required=True, help="Full name, as the audit log shows it.")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option(
    "--qr-png", "qr_png", type=click.Path(dir_okay=False, writable=True), help="Also write the QR code here."
)
@json_option
@with_appcontext
def staff_create(username, full_name, role, qr_png, as_json):
    """Add a staff member (the first admin, say); prints the password and the TOTP QR code once."""
    with committed(StaffDataError):
        enrolment = members.create_staff(
            db.session,
            cli_context(),
            username=username,
            full_name=full_name,
            role=role,
            settings=settings(),
        )
    _emit_enrolment(enrolment, qr_png, as_json)


@staff_group.command("reset-credentials")
@click.option("--username", required=True)
@click.option(
    "--qr-png", "qr_png", type=click.Path(dir_okay=False, writable=True), help="Also write the QR code here."
)
@json_option
@with_appcontext
def staff_reset_credentials(username, qr_png, as_json):
    """A new password and TOTP secret for a staff member (lost phone, changed [staff] totp_key)."""
    user = db.session.scalar(select(StaffUser).filter_by(username=username.strip().lower()))
    if user is None:
        raise click.ClickException(f"no staff member {username}")
    enrolment = members.reset_credentials(db.session, cli_context(), user, settings=settings())
    db.session.commit()
    _emit_enrolment(enrolment, qr_png, as_json)


@staff_group.command("list")
@json_option
@with_appcontext
def staff_list(as_json):
    """Every staff member: username, role, enabled or disabled, full name."""
    users = list(db.session.scalars(select(StaffUser).order_by(StaffUser.username)))
    data = [
        {"username": user.username, "role": user.role, "enabled": user.enabled, "full_name": user.full_name}
        for user in users
    ]
    lines = [
        f"{user.username} {user.role} {'enabled' if user.enabled else 'disabled'} {user.full_name}"
        for user in users
    ]
    emit(as_json, data, lines)


def _emit_enrolment(enrolment: members.Enrolment, qr_png: str | None, as_json: bool) -> None:
    user = enrolment.user
    uri = totp.provisioning_uri(user, enrolment.totp_secret, settings().staff.totp_issuer)
    if qr_png:
        with open(qr_png, "wb") as fh:
            fh.write(totp.qr_png(uri))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "username": user.username,
                    "role": user.role,
                    "password": enrolment.password,
                    "totp_secret": enrolment.totp_secret,
                    "provisioning_uri": uri,
                }
            )
        )
        return
    click.echo(f"username:  {user.username} ({user.role})")
    click.echo(f"password:  {enrolment.password}   (shown once; to be changed at the first sign-in)")
    click.echo(f"TOTP URI:  {uri}")
    click.echo(f"TOTP key:  {enrolment.totp_secret}   (shown once; for typing into an app by hand)")
    click.echo("Scan this QR code with an authenticator app (RFC 6238: 6 digits, 30 seconds):")
    click.echo(totp.qr_text(uri))
    if qr_png:
        click.echo(f"QR code written to {qr_png}")
    click.echo(f"Sign in at {settings().server.issuer}/admin/")
