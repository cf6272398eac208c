"""``idp accounts``: migrants' accounts — create, show, block, unblock, sign out; audited as the
server's console."""

from __future__ import annotations

import time

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ..errors import AccountDataError
from ..extensions import db
from ..languages import available
from ..models import Account
from ..services import account_admin
from ..services import accounts as account_service
from ..services import audit
from ..services import sessions
from .common import cli_context
from .common import committed
from .common import emit
from .common import json_option
from .common import runtime
from .common import settings

accounts_group = click.Group("accounts", help="Migrants' accounts.")


def _find_account(login: str) -> Account:
    account = db.session.scalar(select(Account).filter_by(login=account_service.normalize_login(login)))
    if account is None:
        raise click.ClickException(f"no account with login {login}")
    return account


@accounts_group.command("create")
@click.option("--login", required=True, help="Patent application number.")
@click.option("--phone", required=True)
@click.option("--surname", required=True)
@click.option("--given-name", required=True)
@click.option("--middle-name")
@click.option("--email")
@click.option("--snils")
@click.option(
    "--locale",
    default="ru",
    show_default=True,
    help="the person's language: pages after sign-in, SMS, e-mail, the slip (ru, uz, tg, ky, en)",
)
@json_option
@with_appcontext
def accounts_create(login, phone, surname, given_name, middle_name, email, snils, locale, as_json):
    """Create an account; prints its temporary password once."""
    if locale not in available():
        raise click.BadParameter(f"{locale!r} is not one of {', '.join(available())}", param_hint="--locale")
    with committed(AccountDataError):
        account, temporary = account_admin.create(
            db.session,
            cli_context(),
            settings=settings().passwords,
            sms_countries=settings().sms.allowed_country_codes,
            login=login,
            phone=phone,
            surname=surname,
            given_name=given_name,
            middle_name=middle_name,
            email=email,
            snils=snils,
            locale=locale,
        )
    emit(as_json, _account_json(account, temporary), _account_lines(account, temporary))


@accounts_group.command("show")
@click.argument("login")
@json_option
@with_appcontext
def accounts_show(login, as_json):
    """An account as the console's card shows it (never the SNILS itself, only whether there is one)."""
    account = _find_account(login)
    ctx = cli_context()
    resets = account_admin.resets_today(db.session, account, now=ctx.now, settings=settings())
    data = {
        "sub": account.sub,
        "login": account.login,
        "surname": account.surname,
        "given_name": account.given_name,
        "middle_name": account.middle_name,
        "phone": account.phone,
        "email": account.email,
        "snils_on_file": bool(account.snils),
        "locale": account.locale,
        "status": account.status,
        "failed_logins": account.failed_logins,
        "locked_until": account.locked_until or None,
        "must_change_password": account.must_change_password,
        "temporary_password_expires_at": account.temporary_password_expires_at,
        "resets_today": resets,
        "created_at": account.created_at,
        "updated_at": account.updated_at,
    }
    lines = [f"{key + ':':<31} {'—' if value is None else value}" for key, value in data.items()]
    # Reading a person's data from the server is on record too.
    audit.record(db.session, ctx, "account.viewed", account_id=account.id)
    db.session.commit()
    emit(as_json, data, lines)


@accounts_group.command("block")
@click.argument("login")
@click.option("--reason", required=True, help="Why, for the audit log and the account's history.")
@json_option
@with_appcontext
def accounts_block(login, reason, as_json):
    """Block an account: nobody signs in, its sessions end and its tokens stop working at once."""
    events = runtime().events
    _change_account(
        login,
        as_json,
        lambda ctx, account: account_admin.block(db.session, ctx, account, reason=reason, events=events),
    )


@accounts_group.command("unblock")
@click.argument("login")
@click.option("--reason", required=True, help="Why, for the audit log and the account's history.")
@json_option
@with_appcontext
def accounts_unblock(login, reason, as_json):
    """Let a blocked account sign in again."""
    _change_account(
        login, as_json, lambda ctx, account: account_admin.unblock(db.session, ctx, account, reason=reason)
    )


def _change_account(login: str, as_json: bool, change) -> None:
    account = _find_account(login)
    with committed(AccountDataError):
        change(cli_context(), account)
    emit(as_json, {"login": account.login, "status": account.status}, [f"{account.login}: {account.status}"])


@accounts_group.command("sign-out")
@click.argument("login")
@click.option("--reason", help="Why, for the audit log and the account's history.")
@json_option
@with_appcontext
def accounts_sign_out(login, reason, as_json):
    """End every session of an account (staff action); relying parties are told by back-channel logout."""
    account = _find_account(login)
    ctx = cli_context()
    ended = len(sessions.end_account_sessions(db.session, account.id, now=ctx.now, events=runtime().events))
    audit.record(db.session, ctx, "account.signed_out", account_id=account.id, reason=reason)
    db.session.commit()
    emit(
        as_json,
        {"login": account.login, "sessions_ended": ended},
        [f"{account.login}: {ended} session(s) ended"],
    )


def _account_json(account: Account, temporary: str) -> dict:
    return {
        "sub": account.sub,
        "login": account.login,
        "phone": account.phone,
        "locale": account.locale,
        "temporary_password": temporary,
        "temporary_password_expires_at": account.temporary_password_expires_at,
    }


def _account_lines(account: Account, temporary: str) -> list[str]:
    expires = time.strftime("%Y-%m-%d %H:%M", time.gmtime(account.temporary_password_expires_at or 0))
    return [
        f"login:              {account.login}",
        f"temporary password: {temporary}   (shown once; expires {expires} UTC)",
        f"sub:                {account.sub}",
        f"language:           {account.locale}",
    ]
