"""Admins: initial access tokens for dynamic client registration (RFC 7591 §3) — issue, list, revoke."""

from __future__ import annotations

from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField
from wtforms import IntegerField
from wtforms import StringField
from wtforms.validators import InputRequired
from wtforms.validators import Length
from wtforms.validators import NumberRange

from ... import messages
from ...extensions import db
from ...models import InitialAccessToken
from ...services import registration
from ...urls import public_url
from .common import ADMIN_ROLES
from .common import ConfirmForm
from .common import bp
from .common import confirmed
from .common import ctx
from .common import current_time
from .common import staff_required
from .common import when


class IssueForm(FlaskForm):
    label = StringField(_l("Для кого или для чего"), validators=[InputRequired(), Length(max=100)])
    hours = IntegerField(
        _l("Действует, часов"), default=24, validators=[InputRequired(), NumberRange(1, 24 * 30)]
    )
    single_use = BooleanField(_l("Только для одной регистрации"), default=True)


def _state(row: InitialAccessToken, now: int) -> str:
    if row.revoked_at:
        return _("отозван")
    if row.expires_at <= now:
        return _("истёк")
    if row.single_use and row.used_at:
        return _("использован")
    return _("действует")


def _page(form=None, revoke_form=None, *, error=None, status=200):
    now = current_time()
    rows = [
        {
            "label": row.label,
            "created_by": row.created_by or "",
            "created": when(row.created_at),
            "expires": when(row.expires_at),
            "single_use": _("да") if row.single_use else _("нет"),
            "uses": row.uses,
            "state": _state(row, now),
            "revocable": not row.revoked_at and row.expires_at > now,
            "revoke_url": url_for("admin.registration_token_revoke", token_id=row.id),
        }
        for row in db.session.scalars(
            select(InitialAccessToken).order_by(InitialAccessToken.id.desc()).limit(100)
        )
    ]
    return render_template(
        "admin/registration_tokens.html",
        rows=rows,
        form=form or IssueForm(),
        revoke_form=revoke_form or ConfirmForm(prefix="revoke"),
        register_url=public_url("oauth.register"),
        error=error,
    ), status


@bp.route("/registration-tokens")
@staff_required(*ADMIN_ROLES)
def registration_tokens():
    return _page()


@bp.route("/registration-tokens/new", methods=["POST"])
@staff_required(*ADMIN_ROLES)
def registration_token_new():
    form = IssueForm()
    if not form.validate_on_submit():
        return _page(form, status=400)
    row, token = registration.issue_initial_token(
        db.session,
        ctx(),
        label=form.label.data,
        ttl=form.hours.data * 3600,
        single_use=bool(form.single_use.data),
    )
    db.session.commit()
    return render_template(
        "admin/registration_token.html",
        token=token,
        label=row.label,
        expires=when(row.expires_at),
        single_use=row.single_use,
        register_url=public_url("oauth.register"),
    )


@bp.route("/registration-tokens/<int:token_id>/revoke", methods=["POST"])
@staff_required(*ADMIN_ROLES)
def registration_token_revoke(token_id: int):
    row = db.session.get(InitialAccessToken, token_id)
    if row is None:
        abort(404)
    form = ConfirmForm(prefix="revoke")
    if not confirmed(form):
        return _page(revoke_form=form, error=messages.CONFIRM_REQUIRED, status=400)
    registration.revoke_initial_token(db.session, ctx(), row)
    db.session.commit()
    flash(_("Токен «%(label)s» отозван.", label=row.label))
    return redirect(url_for("admin.registration_tokens"))
