"""The ``idp`` command (its help text is ``HELP``).

One module per group of commands. A command parses its options, takes settings and adapters from
``idp.runtime``, calls the services and commits: the same rule as a view.

May import: what a view may, except the views themselves.
"""

from __future__ import annotations

import sys

import click
from flask.cli import FlaskGroup
from flask.cli import routes_command
from flask.cli import shell_command
from flask_limiter.commands import cli as limiter_group

from ..config import ConfigError
from .accounts import accounts_group
from .clients import clients_group
from .demo import demo
from .keys import keys_group
from .maintenance import purge
from .maintenance import serve
from .outbox import outbox_group
from .staff import staff_group

HELP = """The ``idp`` command: ``idp db upgrade``, ``idp keys …``, ``idp accounts …``, ``idp clients …``,
``idp staff …``, ``idp outbox …``, ``idp demo``, ``idp purge``, ``idp serve``; ``idp dev …`` for
developers. With ``--json`` a command prints what it made, found or changed as one JSON line.

Changes made here are audited like the staff console's, with the actor «консоль сервера» and the
operating-system user who ran the command."""

dev_group = click.Group("dev", help="For developers: the URL map, a Python shell, Flask-Limiter's commands.")
dev_group.add_command(routes_command)
dev_group.add_command(shell_command)
dev_group.add_command(limiter_group, "limiter")

COMMANDS = (
    keys_group,
    accounts_group,
    clients_group,
    staff_group,
    outbox_group,
    demo,
    purge,
    serve,
    dev_group,
)


def register(app) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)


def _create_app():
    # why: idp/__init__ imports this package to register the commands; the app is built on demand.
    from .. import create_app

    return create_app()


class IdpGroup(FlaskGroup):
    """Flask's command group without Flask's own options (--app, --debug, --env-file): `idp` serves this
    one app. Extensions' commands (Flask-Limiter's `limiter`) are under `idp dev`, not at the top."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.params = [param for param in self.params if param.name not in ("app", "debug", "env_file")]

    def _load_plugin_commands(self) -> None:
        self._loaded_plugin_commands = True


cli = IdpGroup(
    create_app=_create_app,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
    help=HELP,
)
cli = click.version_option(package_name="idp", prog_name="idp", message="%(prog)s %(version)s")(cli)


def main() -> None:
    try:
        cli.main(prog_name="idp")
    except Exception as error:  # noqa: BLE001 - a config error is a message, not a traceback
        if isinstance(error, ConfigError):
            click.echo(f"configuration error: {error}", err=True)
            sys.exit(2)
        raise
