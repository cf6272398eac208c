"""Admins: staff members — add (password and TOTP QR code shown once), change the role, disable,
enable, issue new credentials."""

from __future__ import annotations

import base64

from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectChoice
from wtforms import SelectField
from wtforms import StringField
from wtforms.validators import InputRequired
from wtforms.validators import Length

from ... import messages
from ...errors import StaffDataError
from ...extensions import db
from ...models import StaffUser
from ...models.staff import ROLE_ADMIN
from ...models.staff import ROLE_OPERATOR
from ...services.staff import members
from ...services.staff import totp
from .common import ADMIN_ROLES
from .common import ConfirmForm
from .common import bp
from .common import confirmed
from .common import ctx
from .common import me
from .common import settings
from .common import staff_required
from .common import when

ROLE_LABELS = {ROLE_OPERATOR: _l("оператор"), ROLE_ADMIN: _l("администратор")}
ROLE_CHOICES = [SelectChoice(ROLE_OPERATOR, _l("оператор")), SelectChoice(ROLE_ADMIN, _l("администратор"))]


class StaffForm(FlaskForm):
    username = StringField(_l("Имя пользователя"), validators=[InputRequired(), Length(max=64)])
    full_name = StringField(_l("Фамилия и имя"), validators=[InputRequired(), Length(max=200)])
    role = SelectField(_l("Роль"), choices=ROLE_CHOICES)


class RoleForm(ConfirmForm):
    role = SelectField(_l("Роль"), choices=ROLE_CHOICES)


def _member(staff_id: int) -> StaffUser:
    user = db.session.get(StaffUser, staff_id)
    if user is None:
        abort(404)
    return user


@bp.route("/staff")
@staff_required(*ADMIN_ROLES)
def staff():
    rows = [
        {
            "url": url_for("admin.staff_member", staff_id=user.id),
            "username": user.username,
            "name": user.full_name,
            "role": ROLE_LABELS.get(user.role, user.role),
            "state": _("включён") if user.enabled else _("отключён"),
            "last": when(user.last_sign_in_at),
        }
        for user in db.session.scalars(select(StaffUser).order_by(StaffUser.username))
    ]
    return render_template("admin/staff.html", rows=rows)


@bp.route("/staff/new", methods=["GET", "POST"])
@staff_required(*ADMIN_ROLES)
def staff_new():
    form = StaffForm()
    error = None
    if form.validate_on_submit():
        try:
            enrolment = members.create_staff(
                db.session,
                ctx(),
                username=form.username.data,
                full_name=form.full_name.data,
                role=form.role.data,
                settings=settings(),
            )
        except StaffDataError as problem:
            db.session.rollback()
            error = messages.STAFF_ERRORS.get((problem.field, problem.reason))
        else:
            db.session.commit()
            return _enrolment_page(enrolment, _("Сотрудник добавлен"))
    return render_template("admin/staff_new.html", form=form, error=error)


def _enrolment_page(enrolment: members.Enrolment, heading: str):
    """The password and the TOTP secret (QR code, URI and key), shown this once."""
    user = enrolment.user
    uri = totp.provisioning_uri(user, enrolment.totp_secret, settings().staff.totp_issuer)
    qr = "data:image/png;base64," + base64.b64encode(totp.qr_png(uri)).decode("ascii")
    return render_template(
        "admin/enrolment.html",
        heading=heading,
        username=user.username,
        role=ROLE_LABELS.get(user.role, user.role),
        password=enrolment.password,
        totp_secret=enrolment.totp_secret,
        provisioning_uri=uri,
        qr=qr,
        member_url=url_for("admin.staff_member", staff_id=user.id),
    )


@bp.route("/staff/<int:staff_id>")
@staff_required(*ADMIN_ROLES)
def staff_member(staff_id: int):
    return _member_page(_member(staff_id))


def _member_page(user: StaffUser, *, error=None, status: int = 200, **forms):
    role_form = forms.get("role_form") or RoleForm(prefix="role")
    if not role_form.is_submitted():
        role_form.role.data = user.role
    return render_template(
        "admin/staff_member.html",
        member={
            "id": user.id,
            "username": user.username,
            "name": user.full_name,
            "role": ROLE_LABELS.get(user.role, user.role),
            "enabled": user.enabled,
            "is_me": user.id == me().id,
            "created": when(user.created_at),
            "last": when(user.last_sign_in_at),
            "must_change": user.must_change_password,
        },
        role_form=role_form,
        state_form=forms.get("state_form") or ConfirmForm(prefix="state"),
        reset_form=forms.get("reset_form") or ConfirmForm(prefix="reset"),
        error=error,
    ), status


@bp.route("/staff/<int:staff_id>/role", methods=["POST"])
@staff_required(*ADMIN_ROLES)
def staff_role(staff_id: int):
    user = _member(staff_id)
    form = RoleForm(prefix="role")
    if not confirmed(form):
        return _member_page(user, role_form=form, error=messages.CONFIRM_REQUIRED, status=400)
    try:
        members.set_role(db.session, ctx(), user, form.role.data, reason=form.reason.data)
    except StaffDataError as problem:
        db.session.rollback()
        error = messages.STAFF_ERRORS.get((problem.field, problem.reason))
        return _member_page(user, role_form=form, error=error, status=400)
    db.session.commit()
    flash(_("Роль изменена."))
    return redirect(url_for("admin.staff_member", staff_id=user.id))


@bp.route("/staff/<int:staff_id>/disable", methods=["POST"])
@staff_required(*ADMIN_ROLES)
def staff_disable(staff_id: int):
    return _set_enabled(_member(staff_id), False)


@bp.route("/staff/<int:staff_id>/enable", methods=["POST"])
@staff_required(*ADMIN_ROLES)
def staff_enable(staff_id: int):
    return _set_enabled(_member(staff_id), True)


def _set_enabled(user: StaffUser, enabled: bool):
    form = ConfirmForm(prefix="state")
    if not confirmed(form):
        return _member_page(user, state_form=form, error=messages.CONFIRM_REQUIRED, status=400)
    try:
        members.set_enabled(db.session, ctx(), user, enabled, reason=form.reason.data)
    except StaffDataError as problem:
        db.session.rollback()
        error = messages.STAFF_ERRORS.get((problem.field, problem.reason))
        return _member_page(user, state_form=form, error=error, status=400)
    db.session.commit()
    flash(_("Сотрудник включён.") if enabled else _("Сотрудник отключён."))
    return redirect(url_for("admin.staff_member", staff_id=user.id))


@bp.route("/staff/<int:staff_id>/reset", methods=["POST"])
@staff_required(*ADMIN_ROLES)
def staff_reset(staff_id: int):
    user = _member(staff_id)
    form = ConfirmForm(prefix="reset")
    if not confirmed(form):
        return _member_page(user, reset_form=form, error=messages.CONFIRM_REQUIRED, status=400)
    enrolment = members.reset_credentials(db.session, ctx(), user, settings=settings())
    db.session.commit()
    return _enrolment_page(enrolment, _("Новые пароль и ключ TOTP"))
