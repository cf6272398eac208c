"""``idp purge`` (housekeeping) and ``idp serve`` (Flask's development server, or granian with
``--production``: ``idp.serving``)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .. import serving
from ..extensions import db
from ..services import audit
from ..services import maintenance
from ..services import outbox
from .common import emit
from .common import json_option
from .common import now
from .common import record
from .common import runtime
from .common import settings


@click.command("purge")
@click.option(
    "--retention",
    default=30 * 86400,
    show_default=True,
    help="Seconds to keep ended sessions, dead tokens, and delivered or failed outbox messages.",
)
@json_option
@with_appcontext
def purge(retention, as_json):
    """End timed-out sessions (telling their relying parties), then delete expired codes, sessions and
    tokens, old outbox messages, and audit events older than [audit] retention_days (run daily from cron
    or a systemd timer)."""
    ended = runtime().background.sweep()
    counts = {"timed_out_sessions_ended": len(ended)}
    counts |= maintenance.purge_expired(db.session, now=now(), retention=retention)
    counts["outbox_messages"] = outbox.purge(db.session, before=now() - retention)
    # The audit log keeps its own, longer, time: [audit] retention_days (0: for ever).
    days = settings().audit.retention_days
    counts["audit_events"] = audit.purge(db.session, before=now() - days * 86400) if days else 0
    record("maintenance.purged", details=dict(counts))
    db.session.commit()
    emit(as_json, counts, [", ".join(f"{name}: {count}" for name, count in counts.items())])


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--production",
    is_flag=True,
    help="granian, configured from [server] workers, threads, graceful_timeout.",
)
@click.option("--workers", type=click.IntRange(1, 64), help="With --production: overrides [server] workers.")
@with_appcontext
def serve(host, port, production, workers):
    """Serve the provider: Flask's development server, or granian with --production."""
    if not production:
        if workers is not None:
            raise click.UsageError("--workers needs --production")
        serving.run_development(host, port)
        return
    serving.run_production(serving.production_options(settings(), host=host, port=port, workers=workers))
