"""What the ``idp`` commands share: the app's runtime, the audit actor of a command, and output."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager

import click

from ..config import Settings
from ..extensions import db
from ..runtime import Runtime
from ..runtime import current
from ..services import audit


def runtime() -> Runtime:
    return current()


def now() -> int:
    return current().clock()


def settings() -> Settings:
    return current().settings


def cli_context() -> audit.Context:
    """The audit context of a command: the server's console, run by this operating-system user."""
    return audit.Context(audit.Actor(audit.ACTOR_CLI, None, _os_user()), None, now())


def record(event: str, **kwargs) -> None:
    """Audit a command's action as «консоль сервера» (the OS user); committed with the caller's change."""
    audit.record(db.session, cli_context(), event, **kwargs)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a bare container)
        return f"uid {os.getuid()}"


def json_option(command):
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON line.")(command)


def emit(as_json: bool, data: dict | list, lines: list[str]) -> None:
    """One JSON line with ``--json``, else the human-readable ``lines``."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        for line in lines:
            click.echo(line)


@contextmanager
def committed(refused: type[Exception], words: Callable[[Exception], str] = str) -> Iterator[None]:
    """Commit what the block did; when a service refuses it with ``refused``, roll back and exit with
    status 1 and the refusal in ``words`` (the view's rule: services flush, the caller commits)."""
    try:
        yield
    except refused as error:
        db.session.rollback()
        raise click.ClickException(words(error)) from error
    db.session.commit()
