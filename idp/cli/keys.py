"""``idp keys``: signing keys — ensure, rotate, list, retire (``services.keys``), audited."""

from __future__ import annotations

import time

import click
from flask.cli import with_appcontext

from ..extensions import db
from ..models import SigningKey
from ..oauth.keys import cache
from ..services import audit
from ..services import keys
from .common import cli_context
from .common import emit
from .common import json_option
from .common import now
from .common import record
from .common import settings

keys_group = click.Group("keys", help="Signing keys: ensure, rotate, list, retire.")


def _key_json(row: SigningKey) -> dict:
    return {"kid": row.kid, "alg": row.alg, "activates_at": row.activates_at, "expires_at": row.expires_at}


@keys_group.command("ensure")
@json_option
@with_appcontext
def keys_ensure(as_json):
    """Create the first signing keys if there are none (idempotent)."""
    created = keys.ensure_keys(db.session, now=now())
    if created:
        record("keys.created", details={"kid": " ".join(row.kid for row in created)})
    db.session.commit()
    line = f"signing keys: {len(created)} created" if created else "signing keys: present"
    emit(as_json, {"created": [_key_json(row) for row in created]}, [line])


@keys_group.command("rotate")
@click.option(
    "--now", "immediate", is_flag=True, help="Compromise: sign with new keys at once, unpublish old ones."
)
@click.option("--reason", help="Why, for the audit log.")
@json_option
@with_appcontext
def keys_rotate(immediate, reason, as_json):
    """Publish new keys; they sign after [keys] publish_ahead; old ones verify until their tokens expire."""
    ctx = cli_context()
    new = keys.rotate_keys(db.session, settings(), now=ctx.now, immediate=immediate)
    db.session.flush()
    details = {"kids": [row.kid for row in new], "immediate": immediate}
    audit.record(db.session, ctx, "keys.rotated", reason=reason, details=details)
    db.session.commit()
    cache().forget()
    lines = []
    for row in new:
        signs_from = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row.activates_at))
        lines.append(f"{row.alg} {row.kid} published; signs from {signs_from} UTC")
    emit(as_json, {"published": [_key_json(row) for row in new]}, lines)


@keys_group.command("list")
@json_option
@with_appcontext
def keys_list(as_json):
    """Every key, newest last: kid, algorithm, when it signs from and when it leaves JWKS (Unix times)."""
    rows = keys.all_keys(db.session)
    lines = [
        f"{row.kid} {row.alg} activates_at={row.activates_at} expires_at={row.expires_at}" for row in rows
    ]
    emit(as_json, [_key_json(row) for row in rows], lines)


@keys_group.command("retire")
@click.argument("kid")
@click.option("--reason", help="Why, for the audit log.")
@json_option
@with_appcontext
def keys_retire(kid, reason, as_json):
    """Take a key out of JWKS now (tokens it signed stop verifying).

    A kid may start with "-" (it is a base64url thumbprint): write ``idp keys retire -- KID``."""
    ctx = cli_context()
    row = keys.find_key(db.session, kid)
    if row is None:
        raise click.ClickException(f"no key with kid {kid}")
    if keys.is_only_signer(db.session, row, now=ctx.now):
        # why: with no active key of its algorithm, every token request for it would fail (issue 10).
        raise click.ClickException(
            f"{kid} is the only active {row.alg} key: run `idp keys rotate --now` first, then retire it"
        )
    keys.retire_key(db.session, kid, now=ctx.now)
    audit.record(db.session, ctx, "keys.retired", reason=reason, details={"kid": kid})
    db.session.commit()
    cache().forget()
    emit(as_json, {"retired": kid}, [f"{kid} retired"])
