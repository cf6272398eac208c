"""Admins: the audit log, filtered by actor, account, client, event and date."""

from __future__ import annotations

from flask import render_template
from flask import request
from flask import url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField
from wtforms import SelectChoice
from wtforms import SelectField
from wtforms import StringField
from wtforms.validators import Length
from wtforms.validators import Optional

from ...extensions import db
from ...models import Account
from ...services import audit
from ...services.accounts import normalize_login
from .common import ADMIN_ROLES
from .common import bp
from .common import settings
from .common import staff_required
from .labels import EVENTS
from .labels import event_rows

LIMIT = 200
NOBODY = -1


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


@bp.route("/audit")
@staff_required(*ADMIN_ROLES)
def audit_log():
    form = LogFilterForm(request.args)
    form.event.choices = [SelectChoice("", _l("все"))] + [
        SelectChoice(key, label) for key, label in EVENTS.items()
    ]
    rows = []
    if form.validate():
        account_id = None
        if form.account.data:
            login = normalize_login(form.account.data)
            found = db.session.scalar(select(Account.id).filter_by(login=login)) if login else None
            account_id = found if found is not None else NOBODY
        wanted = audit.AuditFilter(
            actor=(form.actor.data or "").strip() or None,
            account_id=account_id,
            client_id=(form.client.data or "").strip() or None,
            event=form.event.data or None,
            since=form.since.data,
            until=form.until.data,
        )
        events = audit.search(db.session, wanted, timezone=settings().server.timezone, limit=LIMIT)
        ids = {event.account_id for event in events if event.account_id}
        query = select(Account.id, Account.login).where(Account.id.in_(ids))
        logins = dict(db.session.execute(query).all()) if ids else {}
        rows = event_rows(events, logins=logins)
        for row in rows:
            row["account_url"] = (
                url_for("admin.account", account_id=row["account_id"]) if row["account"] else ""
            )
    return render_template("admin/audit.html", form=form, rows=rows, limit=LIMIT)
