"""«Восстановление доступа»: by phone, e-mail, SNILS or patent number with the surname (the mos.ru way).

/recovery/           the form; every answer leads to /recovery/sent, whatever matched
/recovery/sent       the confirmation, the support contacts, and the field for an SMS code
/recovery/password   the new password after a correct code
/recovery/link/<t>   the new password from the e-mailed link
"""

from __future__ import annotations

import logging

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import force_locale
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms import StringField
from wtforms.validators import InputRequired
from wtforms.validators import Length

from .. import messages
from ..errors import CodeMismatchError
from ..errors import FlowExpiredError
from ..errors import LimitError
from ..errors import PasswordPolicyError
from ..errors import RecoveryInputError
from ..errors import ResendLimitError
from ..extensions import db
from ..extensions import limiter
from ..languages import duration
from ..models import Account
from ..runtime import current
from ..services.mail import Mail
from ..services.selfservice import recovery
from . import captcha
from . import selfservice

log = logging.getLogger(__name__)

bp = Blueprint("recovery", __name__, url_prefix="/recovery")


class StartForm(captcha.CaptchaForm):
    identifier = StringField(_l("Телефон, электронная почта или СНИЛС"), validators=[Length(max=254)])
    surname = StringField(_l("Фамилия"), validators=[InputRequired(), Length(max=100)])


class CodeForm(FlaskForm):
    code = StringField(_l("Код из СМС"), validators=[InputRequired(), Length(max=16)])


class NewPasswordForm(FlaskForm):
    new = PasswordField(_l("Новый пароль"), validators=[InputRequired(), Length(max=1024)])
    repeat = PasswordField(
        _l("Повторно введите новый пароль"), validators=[InputRequired(), Length(max=1024)]
    )


@bp.route("/", methods=["GET", "POST"])
@limiter.limit(selfservice.form_rate_limit, methods=["POST"])
def start():
    form = StartForm()
    selfservice.remember_authz()
    if request.method != "POST":  # GET, or HEAD (a GET without the body)
        return _start_page(form)
    # Never a sleep to even out the timing (issue 10: it let a few connections hold every worker); the
    # per-IP limit above runs before the captcha and anything costly.
    return _submit(form)


def _submit(form: StartForm):
    if not form.validate_on_submit():
        return _start_page(form, messages.FORM_INCOMPLETE)
    if not captcha.solved(form):
        return _start_page(form, messages.CAPTCHA_WRONG)
    runtime = current()
    try:
        kind, value = recovery.identify(form.identifier.data)
        flow = recovery.start(
            db.session,
            kind=kind,
            value=value,
            surname=form.surname.data,
            ip=request.remote_addr or "",
            now=runtime.clock(),
            settings=runtime.settings,
        )
    except RecoveryInputError as error:
        return _start_page(form, messages.RECOVERY_INPUT[error.reason])
    except LimitError:
        db.session.commit()  # the counts taken stay taken
        runtime.metrics.recovery("limited")
        return _start_page(form, messages.LIMIT_REACHED)
    # why: nothing is sent here — the outbox sends the code or the link (or nothing) afterwards — so the
    # answer is immediate and the same whatever matched (issue 10: the sending was a timing oracle).
    db.session.commit()
    runtime.metrics.recovery("started")
    session["recovery_flow"] = flow.id
    return redirect(url_for("recovery.sent"))


@bp.route("/sent", methods=["GET", "POST"])
@limiter.limit(selfservice.form_rate_limit, methods=["POST"])
def sent():
    form = CodeForm()
    if not form.validate_on_submit():
        return _sent_page(form)
    runtime = current()
    try:
        recovery.verify_code(
            db.session,
            session.get("recovery_flow"),
            form.code.data,
            now=runtime.clock(),
            settings=runtime.settings,
        )
    except CodeMismatchError as error:
        db.session.commit()  # the try counts
        runtime.metrics.recovery("code_wrong")
        return _sent_page(form, messages.CODE_WRONG % {"n": error.attempts_left})
    except FlowExpiredError:
        return _expired()
    db.session.commit()
    runtime.metrics.recovery("code_ok")
    return redirect(url_for("recovery.password"))


class ResendForm(FlaskForm):
    """Only the CSRF token."""


@bp.route("/resend", methods=["POST"])
@limiter.limit(selfservice.form_rate_limit, methods=["POST"])
def resend():
    if not ResendForm().validate_on_submit():
        return _sent_page(CodeForm(), messages.STALE_FORM), 400
    runtime, flow_id = current(), session.get("recovery_flow")
    try:
        recovery.resend(db.session, flow_id, now=runtime.clock(), settings=runtime.settings)
    except ResendLimitError:
        return _sent_page(CodeForm(), messages.RESEND_LIMIT)
    except FlowExpiredError:
        return _expired()
    db.session.commit()  # the outbox sends the new code, or nothing for a decoy: the same answer
    return _sent_page(CodeForm(), notice=_("Новый код отправлен."))


@bp.route("/password", methods=["GET", "POST"])
@limiter.limit(selfservice.form_rate_limit, methods=["POST"])
def password():
    try:
        flow = recovery.verified_flow(db.session, session.get("recovery_flow"), now=current().clock())
    except FlowExpiredError:
        return _expired()
    return _new_password(flow, url_for("recovery.password"))


@bp.route("/link/<token>", methods=["GET", "POST"])
@limiter.limit(selfservice.form_rate_limit, methods=["POST"])
def link(token: str):
    try:
        flow = recovery.check_link(db.session, token, now=current().clock())
    except FlowExpiredError:
        return _expired()
    return _new_password(flow, url_for("recovery.link", token=token))


def _new_password(flow, action: str):
    form = NewPasswordForm()
    if not form.validate_on_submit():
        return _password_page(form, action)
    runtime = current()
    try:
        account = recovery.complete(
            db.session,
            flow,
            form.new.data,
            form.repeat.data,
            ip=request.remote_addr,
            now=runtime.clock(),
            settings=runtime.settings,
            events=runtime.events,
        )
    except PasswordPolicyError as error:
        return _password_page(
            form, action, messages.password_reason(error.reason, runtime.settings.passwords.min_length)
        )
    except FlowExpiredError:
        return _expired()
    db.session.commit()
    runtime.metrics.recovery("completed")
    session.pop("recovery_flow", None)
    # The person may have come here because they forgot their login: say it, and fill it in.
    flash(
        _(
            "Пароль изменён. Ваш логин (№ заявления на патент): %(login)s. Войдите с ним и новым паролем.",
            login=account.login,
        )
    )
    session["sign_in_as"] = account.login
    return redirect(selfservice.login_url())


def _password_page(form: NewPasswordForm, action: str, error: str | None = None):
    return render_template(
        "recovery/password.html",
        form=form,
        action=action,
        error=error,
        rules=selfservice.password_rules(),
        login_url=selfservice.login_url(),
    )


def _expired():
    # A flow found past its time is stored failed: commit that too.
    db.session.commit()
    return render_template("recovery/expired.html"), 400


def _start_page(form: StartForm, error: str | None = None):
    captcha.prepare(form)
    return render_template(
        "recovery/start.html",
        form=form,
        error=error,
        contacts=selfservice.contacts(),
        login_url=selfservice.login_url(),
    )


def _sent_page(form: CodeForm, error: str | None = None, notice: str | None = None):
    settings = current().settings.recovery
    support = {
        "url": settings.support_url,
        "phone": settings.support_phone,
        "centres": settings.support_centres,
    }
    return render_template(
        "recovery/sent.html",
        form=form,
        error=error,
        notice=notice,
        support=support,
        wait=duration(settings.wait_hours * 3600, str(get_locale())),
        contacts=selfservice.contacts(),
        login_url=selfservice.login_url(),
    )


def code_text(code: str, account: Account) -> str:
    """The SMS with a recovery code (run by the outbox, outside any request)."""
    # The login too: a person recovers access because they forgot it (the application number).
    ttl = current().settings.recovery.code_ttl
    with force_locale(account.locale):
        return _(
            "Код восстановления: %(code)s. Действует %(duration)s. Никому его не сообщайте. "
            "Ваш логин: %(login)s",
            code=code,
            duration=duration(ttl, account.locale),
            login=account.login,
        )


def link_mail(token: str, account: Account) -> Mail:
    """The e-mail with a recovery link (run by the outbox, outside any request: the link is built from
    [server] issuer, never from a request's Host header)."""
    path = current_app.url_map.bind("").build("recovery.link", {"token": token})
    link = current().settings.server.issuer + path
    span = duration(current().settings.recovery.link_ttl, account.locale)
    values = {"link": link, "duration": span, "name": account.given_name, "login": account.login}
    with force_locale(account.locale):
        subject = _("Восстановление доступа к личному кабинету")
        text = render_template("recovery/mail_link.txt", **values)
        html = render_template("recovery/mail_link.html", **values)
    return Mail(to=account.email or "", subject=subject, text=text, html=html)
