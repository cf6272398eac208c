"""The operator's command line: `idp --version`, a clean `idp --help`, `--json` on every command that
prints, and the everyday commands on accounts and clients, audited as the console's actions are, with
the actor «консоль сервера» and the operating-system user."""

from __future__ import annotations

import getpass
import importlib.metadata
import json

import click
from click.testing import CliRunner
from sqlalchemy import select

from idp.cli import cli
from idp.extensions import db
from idp.models import AuditEvent
from idp.models import OAuth2Client

# Commands that print nothing of their own (serve), or belong to others (Flask-Migrate's, Flask's and
# Flask-Limiter's under `idp dev`).
WITHOUT_JSON = {"db", "serve", "dev"}


def _invoke(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def _json(app, *args) -> dict | list:
    result = _invoke(app, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _events(app, event: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).filter_by(event=event)))


def test_version_is_the_installed_distribution():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"idp {importlib.metadata.version('idp')}"


def test_help_shows_the_providers_commands_only():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    options, commands = result.output.split("Commands:")
    # No `limiter`, `routes`, `shell` or `run` at the top, and none of Flask's options.
    listed = {line.split()[0] for line in commands.strip().splitlines()}
    expected = {"accounts", "clients", "db", "demo", "dev", "keys", "outbox", "purge", "serve", "staff"}
    assert listed == expected, commands
    for noise in ("--app", "--debug", "--env-file"):
        assert noise not in options
    dev = CliRunner().invoke(cli, ["dev", "--help"])
    assert {"limiter", "routes", "shell"} <= set(dev.output.split())


def test_every_command_that_prints_has_json(app):
    def leaves(group: click.Group, path: str):
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from leaves(command, f"{path} {name}")
            else:
                yield f"{path} {name}", command

    without = [
        name
        for name, command in leaves(app.cli, "idp")
        if name.split()[1] not in WITHOUT_JSON and "as_json" not in {param.name for param in command.params}
    ]
    assert not without, f"no --json on {without}"


def test_keys_staff_and_purge_print_json(app, make_staff):
    make_staff("admin", username="ivanova")
    assert _json(app, "keys", "ensure") == {"created": []}
    assert {key["alg"] for key in _json(app, "keys", "list")} >= {"RS256", "ES256"}
    assert _json(app, "staff", "list") == [
        {"username": "ivanova", "role": "admin", "enabled": True, "full_name": "Тестовый admin"}
    ]
    assert set(_json(app, "purge")) >= {"codes"}


def test_accounts_show_block_and_unblock_are_audited_as_the_server_console(app, account, admin_client):
    shown = _json(app, "accounts", "show", account["login"])
    assert shown["sub"] == account["sub"] and shown["status"] == "active"
    assert shown["snils_on_file"] is False and "snils" not in shown

    blocked = _json(app, "accounts", "block", account["login"], "--reason", "заявление владельца")
    assert blocked == {"login": account["login"], "status": "blocked"}
    assert _json(app, "accounts", "show", account["login"])["status"] == "blocked"
    assert _json(app, "accounts", "unblock", account["login"], "--reason", "ошибка")["status"] == "active"

    [event] = _events(app, "account.blocked")
    assert (event.actor_type, event.actor_name, event.reason) == (
        "cli",
        getpass.getuser(),
        "заявление владельца",
    )
    # The account's history in the console says who: the server's console and the OS user.
    history = admin_client.get(f"/admin/accounts/{account['id']}").get_data(as_text=True)
    assert f"консоль сервера {getpass.getuser()}" in history
    assert "Учётная запись заблокирована" in history and "Учётная запись разблокирована" in history


def test_accounts_block_needs_a_reason_and_an_existing_login(app, account):
    missing = _invoke(app, "accounts", "block", account["login"])
    assert missing.exit_code == 2 and "--reason" in missing.output
    unknown = _invoke(app, "accounts", "block", "99-999999", "--reason", "x")
    assert unknown.exit_code == 1 and "no account with login 99-999999" in unknown.output


def test_accounts_create_and_sign_out_are_audited(app):
    created = _json(
        app,
        "accounts",
        "create",
        "--login",
        "77-1234567",
        "--phone",
        "+7 916 765-43-21",
        "--surname",
        "Каримов",
        "--given-name",
        "Бахтиёр",
    )
    assert created["temporary_password"]
    assert _json(app, "accounts", "sign-out", created["login"]) == {
        "login": created["login"],
        "sessions_ended": 0,
    }
    assert [e.actor_type for e in _events(app, "account.created") + _events(app, "account.signed_out")] == [
        "cli"
    ] * 2


def test_accounts_create_refuses_a_phone_no_sms_can_reach(app):
    """Issue 10: an account whose phone is outside [sms] allowed_country_codes had no reset, and the
    reset page answered differently for it — an oracle of login and phone. The CLI refuses such a phone,
    saying which field and why."""
    refused = _invoke(
        app,
        "accounts",
        "create",
        "--login",
        "77-1234567",
        "--phone",
        "+998 90 123-45-67",
        "--surname",
        "Каримов",
        "--given-name",
        "Бахтиёр",
    )
    assert refused.exit_code == 1
    assert "phone" in refused.output and "allowed_country_codes" in refused.output


def test_clients_list_show_update_delete(app, rp):
    [listed] = _json(app, "clients", "list")
    assert listed["client_id"] == rp["client_id"] and listed["enabled"] is True
    shown = _json(app, "clients", "show", rp["client_id"])
    assert shown["redirect_uris"] == ["https://rp.example/cb"]
    assert not {key for key in shown if "secret" in key}

    updated = _json(
        app,
        "clients",
        "update",
        rp["client_id"],
        "--name",
        "Новое имя",
        "--redirect-uri",
        "https://rp.example/new",
        "--untrusted",
        "--access-token-ttl",
        "120",
    )
    assert updated["client_name"] == "Новое имя" and updated["redirect_uris"] == ["https://rp.example/new"]
    assert updated["trusted"] is False and updated["access_token_ttl"] == 120
    # What was not given stays.
    assert updated["post_logout_redirect_uris"] == ["https://rp.example/bye"]
    [event] = _events(app, "client.updated")
    assert event.actor_type == "cli" and event.details["name"] == "Новое имя"

    # The console's check: a redirect URI that is not https (nor loopback http) is refused, nothing changes.
    refused = _invoke(app, "clients", "update", rp["client_id"], "--redirect-uri", "http://rp.example/cb")
    assert refused.exit_code == 1
    assert "redirect URI 'http://rp.example/cb' must use https" in refused.output
    too_long = _invoke(app, "clients", "update", rp["client_id"], "--id-token-ttl", "999999")
    assert too_long.exit_code == 1 and "id_token_ttl: must be at least 60 seconds" in too_long.output
    assert _json(app, "clients", "show", rp["client_id"])["redirect_uris"] == ["https://rp.example/new"]

    kept = _invoke(app, "clients", "delete", rp["client_id"], input="n\n")
    assert kept.exit_code == 1 and "Aborted" in kept.output
    assert _json(app, "clients", "delete", rp["client_id"], "--yes", "--reason", "договор расторгнут") == {
        "deleted": rp["client_id"]
    }
    with app.app_context():
        assert db.session.scalar(select(OAuth2Client).filter_by(client_id=rp["client_id"])) is None
    [event] = _events(app, "client.deleted")
    assert event.reason == "договор расторгнут" and event.actor_name == getpass.getuser()


def test_clients_create_is_audited(app):
    created = _json(
        app, "clients", "create", "--name", "Портал", "--redirect-uri", "https://portal.example/cb"
    )
    [event] = _events(app, "client.created")
    assert event.client_id == created["client_id"] and event.actor_type == "cli"


def test_accounts_create_takes_the_persons_language_and_refuses_an_unknown_one(app):
    common = ["accounts", "create", "--phone", "+79161234567", "--surname", "Каримов"]
    common += ["--given-name", "Бахром"]
    created = _invoke(app, *common, "--login", "77-1000001", "--locale", "ky", "--json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.output)["locale"] == "ky"
    refused = _invoke(app, *common, "--login", "77-1000002", "--locale", "de")
    assert refused.exit_code == 2 and "'de' is not one of uz, tg, ky, ru, en" in refused.output


def test_clients_create_and_update_take_a_client_uri(app):
    created = _invoke(
        app,
        "clients", "create", "--name", "Кабинет", "--redirect-uri", "https://rp.example/cb",
        "--client-uri", "https://rp.example/", "--json",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    client_id = json.loads(created.output)["client_id"]
    with app.app_context():
        assert db.session.scalar(select(OAuth2Client).filter_by(client_id=client_id)).client_uri == (
            "https://rp.example/"
        )
    refused = _invoke(app, "clients", "update", client_id, "--client-uri", "http://rp.example/")
    assert refused.exit_code != 0
    removed = _invoke(app, "clients", "update", client_id, "--client-uri", "")
    assert removed.exit_code == 0, removed.output
    with app.app_context():
        assert db.session.scalar(select(OAuth2Client).filter_by(client_id=client_id)).client_uri is None


def test_clients_create_and_update_with_the_protocol_options(app, tmp_path):
    """private_key_jwt with a JWK Set file, JWT access tokens and resource indicators, from the command line;
    the JSON shows the metadata (README "Connecting a relying party")."""
    from joserfc.jwk import RSAKey

    jwks_file = tmp_path / "jwks.json"
    key = RSAKey.generate_key(2048, parameters={"kid": "cli-1"}, private=True)
    jwks_file.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    created = _json(
        app,
        "clients",
        "create",
        "--name",
        "Ресурсный клиент",
        "--redirect-uri",
        "https://rp.example/cb",
        "--auth-method",
        "private_key_jwt",
        "--jwks",
        str(jwks_file),
        "--access-token-format",
        "jwt",
        "--resource",
        "https://api.rp.example",
    )
    assert created["client_secret"] is None
    assert created["token_endpoint_auth_method"] == "private_key_jwt"
    assert created["jwks"]["keys"][0]["kid"] == "cli-1"
    assert created["access_token_format"] == "jwt"
    assert created["allowed_resources"] == ["https://api.rp.example"]
    jwks_uri = "https://rp.example/jwks.json"
    _json(app, "clients", "update", created["client_id"], "--jwks-uri", jwks_uri, "--no-resources")
    shown = _json(app, "clients", "show", created["client_id"])
    assert shown["jwks_uri"] == "https://rp.example/jwks.json" and "jwks" not in shown
    assert "allowed_resources" not in shown
    # Back to a shared secret needs a new secret: the client never had one.
    refused = _invoke(app, "clients", "update", created["client_id"], "--auth-method", "client_secret_basic")
    assert refused.exit_code != 0 and "needs a new client secret" in refused.output
