"""``idp outbox``: the durable outbox (``services.outbox``) — list what is pending or failed, retry
failed messages, deliver due ones now, purge old ones."""

from __future__ import annotations

import json
import time

import click
from flask.cli import with_appcontext

from ..extensions import db
from ..models.outbox import DELIVERED
from ..models.outbox import FAILED
from ..models.outbox import PENDING
from ..models.outbox import STATUSES
from ..models.outbox import OutboxMessage
from ..services import outbox
from .common import emit
from .common import json_option
from .common import now
from .common import record
from .common import runtime

outbox_group = click.Group(
    "outbox", help="The durable outbox: back-channel logouts and notifications owed to others."
)


def _when(seconds: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) if seconds else "-"


def _row_json(row: OutboxMessage) -> dict:
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "next_attempt_at": row.next_attempt_at if row.status == PENDING else None,
        "delivered_at": row.delivered_at,
        "last_error": row.last_error,
        "payload": json.loads(row.payload),
    }


def _row_line(row: OutboxMessage, at: int) -> str:
    if row.status == PENDING:
        state = "in delivery" if row.claimed_until > at else f"next attempt {_when(row.next_attempt_at)} UTC"
    elif row.status == DELIVERED:
        state = f"delivered {_when(row.delivered_at)} UTC"
    else:
        state = "failed"
    line = (
        f"{row.id} {row.kind} {row.status} attempts={row.attempts} created {_when(row.created_at)} UTC, "
        f"{state} {row.payload}"
    )
    return line + (f"\n    last error: {row.last_error}" if row.last_error else "")


@outbox_group.command("list")
@click.option(
    "--status",
    "statuses",
    type=click.Choice([*STATUSES, "all"]),
    multiple=True,
    help="Which rows (repeatable); default: pending and failed.",
)
@click.option("--kind", help="Only this kind (e.g. backchannel_logout).")
@click.option("--limit", type=click.IntRange(1, 100000), default=100, show_default=True)
@json_option
@with_appcontext
def outbox_list(statuses, kind, limit, as_json):
    """Messages pending or failed (oldest first), with their attempts and last error, and the counts."""
    chosen = STATUSES if "all" in statuses else tuple(statuses) or (PENDING, FAILED)
    at = now()
    rows = outbox.find(db.session, statuses=chosen, kind=kind, limit=limit)
    counts = outbox.counts(db.session, now=at)
    summary = (
        f"pending: {counts[PENDING]}, failed: {counts[FAILED]}, delivered: {counts[DELIVERED]}, "
        f"oldest pending: {counts['oldest_pending_age']} s"
    )
    emit(
        as_json,
        {"counts": counts, "messages": [_row_json(row) for row in rows]},
        [_row_line(row, at) for row in rows] + [summary],
    )


@outbox_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="Every failed message.")
@json_option
@with_appcontext
def outbox_retry(ids, all_failed, as_json):
    """Send failed messages again (due now, with a fresh count of attempts)."""
    if bool(ids) == all_failed:
        raise click.UsageError("name the ids of failed messages, or --all-failed")
    retried = outbox.retry(db.session, None if all_failed else list(ids), now=now())
    if retried:
        record("outbox.retried", details={"messages": " ".join(map(str, retried))})
    db.session.commit()
    missing = sorted(set(ids) - set(retried))
    lines = [f"{len(retried)} message(s) due again: {' '.join(map(str, retried)) or '-'}"]
    if missing:
        lines.append(f"not failed or unknown: {' '.join(map(str, missing))}")
    emit(as_json, {"retried": retried, "not_failed": missing}, lines)
    if missing and not retried:
        raise click.exceptions.Exit(1)


@outbox_group.command("deliver")
@json_option
@with_appcontext
def outbox_deliver(as_json):
    """Deliver every due message now, in this process (the servers do it on their own)."""
    result = runtime().background.deliver_due()
    counts = {"delivered": result.delivered, "retried": result.retried, "failed": result.failed}
    record("outbox.delivered", details=counts)
    db.session.commit()
    emit(as_json, counts, [", ".join(f"{name}: {count}" for name, count in counts.items())])


@outbox_group.command("purge")
@click.option(
    "--older-than",
    type=click.IntRange(0),
    default=30 * 86400,
    show_default=True,
    help="Seconds: delete messages delivered, or failed ones written, longer ago than this.",
)
@json_option
@with_appcontext
def outbox_purge(older_than, as_json):
    """Delete old delivered and failed messages (``idp purge`` does it too)."""
    deleted = outbox.purge(db.session, before=now() - older_than)
    record("outbox.purged", details={"deleted": deleted})
    db.session.commit()
    emit(as_json, {"deleted": deleted}, [f"{deleted} message(s) deleted"])
