"""Staff sign-in (password and TOTP code on one form), sign-out, the forced password change, and the
start page of the console."""

from __future__ import annotations

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

from ... import messages
from ...errors import InvalidCredentialsError
from ...errors import PasswordPolicyError
from ...extensions import db
from ...extensions import limiter
from ...runtime import current
from ...services import audit
from ...services import credentials
from ...services import signin_throttle
from ...services.staff import members
from ...services.staff import sessions as staff_sessions
from ..captcha import CaptchaForm
from ..captcha import prepare as prepare_captcha
from ..captcha import solved as captcha_solved
from ..login import captcha_for_ip
from ..login import wait_message
from .common import OPERATOR_ROLES
from .common import ActionForm
from .common import bp
from .common import clear_staff_cookie
from .common import ctx
from .common import current_staff
from .common import current_time
from .common import me
from .common import next_page
from .common import set_staff_cookie
from .common import settings
from .common import staff_required


class StaffLoginForm(CaptchaForm):
    username = StringField(_l("Имя пользователя"), validators=[InputRequired(), Length(max=64)])
    password = PasswordField(_l("Пароль"), validators=[InputRequired(), Length(max=1024)])
    code = StringField(_l("Код из приложения-аутентификатора"), validators=[InputRequired(), Length(max=16)])


class StaffPasswordForm(FlaskForm):
    old = PasswordField(_l("Текущий пароль"), validators=[InputRequired(), Length(max=1024)])
    new = PasswordField(_l("Новый пароль"), validators=[InputRequired(), Length(max=1024)])
    repeat = PasswordField(_l("Повторите новый пароль"), validators=[InputRequired(), Length(max=1024)])


def _rate_limit() -> str:
    return settings().login.rate_limit


def _throttle() -> signin_throttle.Throttle:
    # The migrants' escalation ([login], services.signin_throttle), counted apart.
    return signin_throttle.Throttle(
        limiter.storage, settings().login, "staff", ipv6_prefix=settings().limits.ipv6_prefix
    )


def _login_page(form: StaffLoginForm, error=None, *, with_captcha: bool):
    if with_captcha:
        prepare_captcha(form)
    else:
        form.captcha.data = form.captcha_token.data = ""
    return render_template("admin/login.html", form=form, error=error), 200


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_rate_limit, methods=["POST"])
def login():
    form = StaffLoginForm()
    ip = request.remote_addr or ""
    if request.method != "POST":  # GET, or HEAD (a GET without the body)
        if current_staff() is not None:
            return redirect(next_page())
        return _login_page(form, with_captcha=captcha_for_ip(_throttle(), ip))
    if not form.validate_on_submit():
        error = messages.STAFF_LOGIN_INCOMPLETE
        return _login_page(form, error, with_captcha=captcha_for_ip(_throttle(), ip))
    now = current_time()
    # Waits and the captcha before any bcrypt check (issue 10), as on the migrants' sign-in.
    typed = members.normalize_username(form.username.data)
    counts = _throttle()
    verdict = counts.check(ip=ip, login=typed, now=now)
    if verdict.wait_until:
        return _login_page(form, wait_message(verdict, now), with_captcha=True)
    if verdict.captcha and not captcha_solved(form):
        error = messages.CAPTCHA_WRONG if form.captcha.data else messages.SIGN_IN_CAPTCHA
        return _login_page(form, error, with_captcha=True)
    try:
        user = members.authenticate(
            db.session,
            form.username.data,
            form.password.data,
            form.code.data,
            now=now,
            settings=settings(),
            on_cpu=current().metrics.password_checked,
        )
    except InvalidCredentialsError as error:
        audit.record_sign_in_failure(
            db.session,
            audit.Context(audit.ANONYMOUS, request.remote_addr, now),
            error,
            staff=True,
            login=typed if error.subject_id is not None else None,
            user_agent=request.user_agent.string,
        )
        db.session.commit()
        counts.failed(ip=ip, login=typed, now=now)
        form.password.data = ""
        form.code.data = ""
        error = messages.STAFF_LOGIN_FAILED
        return _login_page(form, error, with_captcha=counts.check(ip=ip, login=typed, now=now).captcha)
    counts.succeeded(ip=ip, login=typed, verdict=verdict)
    session, token = staff_sessions.start_session(
        db.session,
        user,
        now=now,
        settings=settings().staff,
        ip=request.remote_addr,
        user_agent=request.user_agent.string,
    )
    audit.record(
        db.session, audit.Context(audit.Actor.staff(user), request.remote_addr, now), "staff.signed_in"
    )
    db.session.commit()
    target = url_for("admin.password") if user.must_change_password else next_page()
    return set_staff_cookie(make_response(redirect(target)), token)


@bp.route("/logout", methods=["POST"])
def logout():
    form = ActionForm()
    session = current_staff()
    if form.validate_on_submit() and session is not None:
        staff_sessions.end_session(session, now=current_time())
        audit.record(db.session, ctx(), "staff.signed_out")
        db.session.commit()
    return clear_staff_cookie(make_response(redirect(url_for("admin.login"))))


@bp.route("/password", methods=["GET", "POST"])
@staff_required(*OPERATOR_ROLES)
def password():
    form = StaffPasswordForm()
    user = me()
    forced = user.must_change_password
    min_length = members.password_min_length(settings())
    if not form.validate_on_submit():
        return render_template("admin/password.html", form=form, forced=forced, min_length=min_length)
    try:
        members.check_new_password(user, form.old.data, form.new.data, form.repeat.data, settings=settings())
    except PasswordPolicyError as error:
        if error.reason == "wrong_old":
            # A guess at the current password is a failed sign-in (issue 10): it feeds the lock.
            now = current_time()
            credentials.count_failure(user, now, settings().login)
            audit.record_sign_in_failure(
                db.session,
                audit.Context(audit.Actor.staff(user), request.remote_addr, now),
                InvalidCredentialsError(
                    subject_id=user.id, result="wrong_password", locked_now=credentials.is_locked(user, now)
                ),
                staff=True,
                login=user.username,
                user_agent=request.user_agent.string,
                during="password_change",
            )
        db.session.commit()  # a wrong current password counts against the flow
        message = messages.password_reason(error.reason, min_length, staff=True)
        return render_template(
            "admin/password.html", form=form, forced=forced, error=message, min_length=min_length
        )
    members.change_password(
        db.session, user, form.new.data, now=current_time(), settings=settings(), keep_id=current_staff().id
    )
    audit.record(db.session, ctx(), "staff.password_changed")
    db.session.commit()
    flash(_("Пароль изменён."))
    return redirect(url_for("admin.index"))


@bp.route("/")
@staff_required(*OPERATOR_ROLES)
def index():
    return redirect(url_for("admin.clients") if me().is_admin else url_for("admin.accounts"))
