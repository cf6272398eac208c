"""Staff sign-in (password and TOTP code on one form), sign-out, the forced password change, and the
start page of the console."""

from __future__ import annotations

from flask import current_app
from flask import flash
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms import StringField
from wtforms.validators import InputRequired
from wtforms.validators import Length

from ...errors import InvalidCredentialsError
from ...extensions import db
from ...extensions import limiter
from ...services import audit
from ...services import staff
from .. import web
from . import bp
from .common import OPERATOR_ROLES
from .common import ActionForm
from .common import clear_staff_cookie
from .common import ctx
from .common import current_staff
from .common import me
from .common import next_page
from .common import set_staff_cookie
from .common import staff_required
from .common import staff_settings

PASSWORD_REASONS = {
    "wrong_old": _l("Текущий пароль введён неверно."),
    "mismatch": _l("Новые пароли не совпадают."),
    "same_as_old": _l("Новый пароль должен отличаться от текущего."),
    "too_short": _l("Пароль сотрудника должен быть не короче %(n)s символов."),
    "too_long": _l("Пароль слишком длинный."),
    "common": _l("Этот пароль слишком простой или совпадает с именем пользователя."),
}


class StaffLoginForm(FlaskForm):
    username = StringField(_l("Имя пользователя"), validators=[InputRequired(), Length(max=64)])
    password = PasswordField(_l("Пароль"), validators=[InputRequired(), Length(max=1024)])
    code = StringField(_l("Код из приложения-аутентификатора"), validators=[InputRequired(), Length(max=16)])


class StaffPasswordForm(FlaskForm):
    old = PasswordField(_l("Текущий пароль"), validators=[InputRequired(), Length(max=1024)])
    new = PasswordField(_l("Новый пароль"), validators=[InputRequired(), Length(max=1024)])
    repeat = PasswordField(_l("Повторите новый пароль"), validators=[InputRequired(), Length(max=1024)])


def _rate_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_rate_limit, methods=["POST"])
def login():
    form = StaffLoginForm()
    if request.method == "GET":
        if current_staff() is not None:
            return redirect(next_page())
        return render_template("admin/login.html", form=form)
    if not form.validate_on_submit():
        return render_template("admin/login.html", form=form, error=_("Введите имя пользователя, пароль и код.")), 200
    now = web.now()
    try:
        user = staff.authenticate(
            db.session, form.username.data, form.password.data, form.code.data, now=now, settings=staff_settings()
        )
    except InvalidCredentialsError:
        # One message whatever was wrong: the username, the password, the code, a replayed code, a lock.
        db.session.commit()
        form.password.data = ""
        form.code.data = ""
        error = _("Неверное имя пользователя, пароль или код.")
        return render_template("admin/login.html", form=form, error=error), 200
    session, token = staff.start_session(
        db.session, user, now=now, settings=staff_settings(), ip=request.remote_addr,
        user_agent=request.user_agent.string,
    )
    audit.record(db.session, audit.Context(audit.Actor.staff(user), request.remote_addr, now), "staff.signed_in")
    db.session.commit()
    target = url_for("admin.password") if user.must_change_password else next_page()
    return set_staff_cookie(make_response(redirect(target)), token)


@bp.route("/logout", methods=["POST"])
def logout():
    form = ActionForm()
    session = current_staff()
    if form.validate_on_submit() and session is not None:
        staff.end_session(session, now=web.now())
        audit.record(db.session, ctx(), "staff.signed_out")
        db.session.commit()
    return clear_staff_cookie(make_response(redirect(url_for("admin.login"))))


@bp.route("/password", methods=["GET", "POST"])
@staff_required(*OPERATOR_ROLES)
def password():
    form = StaffPasswordForm()
    user = me()
    forced = user.must_change_password
    if not form.validate_on_submit():
        return render_template("admin/password.html", form=form, forced=forced, min_length=staff.MIN_STAFF_PASSWORD)
    try:
        staff.check_new_password(user, form.old.data, form.new.data, form.repeat.data)
    except staff.StaffPasswordError as error:
        message = PASSWORD_REASONS[error.reason] % {"n": staff.MIN_STAFF_PASSWORD}
        return render_template(
            "admin/password.html", form=form, forced=forced, error=message, min_length=staff.MIN_STAFF_PASSWORD
        )
    staff.change_password(
        db.session, user, form.new.data, now=web.now(), settings=staff_settings(), keep_id=current_staff().id
    )
    audit.record(db.session, ctx(), "staff.password_changed")
    db.session.commit()
    flash(_("Пароль изменён."))
    return redirect(url_for("admin.index"))


@bp.route("/")
@staff_required(*OPERATOR_ROLES)
def index():
    return redirect(url_for("admin.clients") if me().is_admin else url_for("admin.accounts"))
