"""Admins: the audit log, filtered by actor, account, client, event and date, page by page, and its export
(CSV or JSON Lines) for a date range."""

from __future__ import annotations

from flask import Response
from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import stream_with_context
from flask import url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField
from wtforms import IntegerField
from wtforms import SelectChoice
from wtforms import SelectField
from wtforms import StringField
from wtforms.validators import Length
from wtforms.validators import NumberRange
from wtforms.validators import Optional

from ...extensions import db
from ...models import Account
from ...services import audit
from ...services.accounts import normalize_login
from .common import ADMIN_ROLES
from .common import bp
from .common import ctx
from .common import settings
from .common import staff_required
from .labels import EVENTS
from .labels import event_rows

PAGE = 50
NOBODY = -1
# The longest range one export may cover: a year of events is what an audit asks for at once.
EXPORT_MAX_DAYS = 366
EXPORT_RANGE = _l("Чтобы выгрузить журнал, укажите даты «С даты» и «По дату»: не больше %(n)s дней.")
EXPORT_FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv", audit.csv_lines),
    "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl", audit.jsonl_lines),
}


class LogFilterForm(FlaskForm):
    class Meta:
        csrf = False

    actor = StringField(
        _l("Кто (имя сотрудника, логин или client_id)"), validators=[Optional(), Length(max=64)]
    )
    account = StringField(_l("Учётная запись (логин)"), validators=[Optional(), Length(max=128)])
    client = StringField(_l("Клиент (client_id)"), validators=[Optional(), Length(max=64)])
    event = SelectField(_l("Событие"), validators=[Optional()])
    since = DateField(_l("С даты"), validators=[Optional()])
    until = DateField(_l("По дату"), validators=[Optional()])
    before = IntegerField(validators=[Optional(), NumberRange(min=1)])


def _form() -> LogFilterForm:
    form = LogFilterForm(request.args)
    form.event.choices = [SelectChoice("", _l("все"))] + [
        SelectChoice(key, label) for key, label in EVENTS.items()
    ]
    return form


def _wanted(form: LogFilterForm) -> audit.AuditFilter:
    account_id = None
    if form.account.data:
        login = normalize_login(form.account.data)
        found = db.session.scalar(select(Account.id).filter_by(login=login)) if login else None
        account_id = found if found is not None else NOBODY
    return audit.AuditFilter(
        actor=(form.actor.data or "").strip() or None,
        account_id=account_id,
        client_id=(form.client.data or "").strip() or None,
        event=form.event.data or None,
        since=form.since.data,
        until=form.until.data,
    )


def _query(form: LogFilterForm, **changes) -> dict:
    """The filters of this page as query arguments, with ``changes``: the links to other pages keep them."""
    args = {key: value for key, value in request.args.items() if key in form._fields and value}
    args.update(changes)
    return {key: value for key, value in args.items() if value not in (None, "")}


@bp.route("/audit")
@staff_required(*ADMIN_ROLES)
def audit_log():
    form = _form()
    rows: list[dict] = []
    older_url = newer_url = ""
    if form.validate():
        events = audit.search(
            db.session,
            _wanted(form),
            timezone=settings().server.timezone,
            limit=PAGE + 1,
            before_id=form.before.data,
        )
        more, events = len(events) > PAGE, events[:PAGE]
        ids = {event.account_id for event in events if event.account_id}
        query = select(Account.id, Account.login).where(Account.id.in_(ids))
        logins = dict(db.session.execute(query).all()) if ids else {}
        rows = event_rows(events, logins=logins)
        for row in rows:
            row["account_url"] = (
                url_for("admin.account", account_id=row["account_id"]) if row["account"] else ""
            )
        if more:
            older_url = url_for("admin.audit_log", **_query(form, before=events[-1].id))
        if form.before.data:
            newer_url = url_for("admin.audit_log", **_query(form, before=None))
    return render_template(
        "admin/audit.html",
        form=form,
        rows=rows,
        page=PAGE,
        older_url=older_url,
        newer_url=newer_url,
        export_csv=url_for("admin.audit_export", **_query(form, before=None, format="csv")),
        export_jsonl=url_for("admin.audit_export", **_query(form, before=None, format="jsonl")),
        max_days=EXPORT_MAX_DAYS,
    )


@bp.route("/audit/export")
@staff_required(*ADMIN_ROLES)
def audit_export():
    """The events of a date range (both ends required, at most EXPORT_MAX_DAYS), filtered like the page,
    as CSV or JSON Lines; streamed in batches. The export itself is audited (``audit.exported``)."""
    form = _form()
    kind = EXPORT_FORMATS.get(request.args.get("format", ""))
    since, until = form.since.data, form.until.data
    if kind is None or not form.validate():
        abort(400)
    if since is None or until is None or until < since or (until - since).days >= EXPORT_MAX_DAYS:
        flash(str(EXPORT_RANGE) % {"n": EXPORT_MAX_DAYS})
        return redirect(url_for("admin.audit_log", **_query(form, format=None, before=None)))
    wanted = _wanted(form)
    content_type, extension, lines = kind
    audit.record(
        db.session,
        ctx(),
        "audit.exported",
        details={"format": extension, "since": since.isoformat(), "until": until.isoformat()},
    )
    db.session.commit()
    timezone = settings().server.timezone
    body = stream_with_context(lines(audit.export(db.session, wanted, timezone=timezone)))
    response = Response(body, content_type=content_type)
    name = f"audit-{since.isoformat()}-{until.isoformat()}.{extension}"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response
