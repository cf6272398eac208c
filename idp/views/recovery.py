"""«Восстановление доступа»: by phone, e-mail, SNILS or patent number with the surname (the mos.ru way).

/recovery/           the form; every answer leads to /recovery/sent, whatever matched
/recovery/sent       the confirmation, the support contacts, and the field for an SMS code
/recovery/password   the new password after a correct code
/recovery/link/<t>   the new password from the e-mailed link
"""

from __future__ import annotations

import time

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms import StringField
from wtforms.validators import InputRequired
from wtforms.validators import Length

from ..extensions import db
from ..models import Account
from ..services import recovery
from ..services.mail import Mail
from ..services.mail import MailDeliveryError
from ..services.password_change import PasswordPolicyError
from ..services.password_change import PolicySettings
from ..services.reset import ResetLimitError
from ..services.sms import SmsDeliveryError
from . import web
from .password import REASONS
from .password import password_rules
from .reset import LIMIT_MESSAGE

bp = Blueprint("recovery", __name__, url_prefix="/recovery")

INPUT_ERRORS = {
    "empty": _l("Введите телефон, электронную почту или СНИЛС."),
    "email": _l("Проверьте адрес электронной почты."),
    "snils_checksum": _l("СНИЛС введён с ошибкой: не сходится контрольное число."),
    "unknown_kind": _l("Введите телефон, электронную почту или СНИЛС."),
}


class StartForm(FlaskForm):
    identifier = StringField(_l("Телефон, электронная почта или СНИЛС"), validators=[Length(max=254)])
    surname = StringField(_l("Фамилия"), validators=[InputRequired(), Length(max=100)])
    captcha = StringField(_l("Код на изображении"), validators=[Length(max=16)])


class CodeForm(FlaskForm):
    code = StringField(_l("Код из СМС"), validators=[InputRequired(), Length(max=16)])


class NewPasswordForm(FlaskForm):
    new = PasswordField(_l("Новый пароль"), validators=[InputRequired(), Length(max=1024)])
    repeat = PasswordField(_l("Повторно введите новый пароль"), validators=[InputRequired(), Length(max=1024)])


@bp.route("/", methods=["GET", "POST"])
def start():
    form = StartForm()
    web.remember_authz()
    if request.method == "GET":
        return _start_page(form)
    started = time.monotonic()
    response = _submit(form)
    web.pad_response(started, current_app.config["RESET_RESPONSE_FLOOR_MS"])
    return response


def _submit(form: StartForm):
    if not form.validate_on_submit():
        return _start_page(form, _("Заполните все поля."))
    if not web.captcha_solved(form.captcha.data):
        return _start_page(form, _("Код на изображении введён неверно. Введите код с новой картинки."))
    try:
        kind, value = recovery.identify(form.identifier.data)
        flow = recovery.start_recovery(
            db.session, kind=kind, value=value, surname=form.surname.data, ip=request.remote_addr or "",
            now=web.now(), settings=_settings(), delivery=_delivery(), link_for=_link_for,
        )
    except recovery.RecoveryInputError as error:
        return _start_page(form, INPUT_ERRORS[error.reason])
    except ResetLimitError:
        return _start_page(form, LIMIT_MESSAGE)
    except (SmsDeliveryError, MailDeliveryError):
        return _start_page(form, _("Не удалось отправить сообщение, попробуйте позже."))
    session["recovery_flow"] = flow.id
    return redirect(url_for("recovery.sent"))


@bp.route("/sent", methods=["GET", "POST"])
def sent():
    form = CodeForm()
    if not form.validate_on_submit():
        return _sent_page(form)
    try:
        recovery.verify_code(
            db.session, session.get("recovery_flow"), form.code.data, now=web.now(), settings=_settings(),
            code_key=web.captcha_key(),
        )
    except recovery.CodeMismatchError as error:
        return _sent_page(form, _("Неверный код. Осталось попыток: %(n)s.", n=error.attempts_left))
    except recovery.FlowExpiredError:
        return _expired()
    return redirect(url_for("recovery.password"))


class ResendForm(FlaskForm):
    """Only the CSRF token."""


@bp.route("/resend", methods=["POST"])
def resend():
    if not ResendForm().validate_on_submit():
        return _sent_page(CodeForm(), _("Страница устарела. Обновите её и повторите попытку.")), 400
    try:
        recovery.resend_code(
            db.session, session.get("recovery_flow"), now=web.now(), settings=_settings(), delivery=_delivery()
        )
    except recovery.ResendLimitError:
        return _sent_page(CodeForm(), _("Новый код больше отправить нельзя. Начните восстановление заново."))
    except recovery.FlowExpiredError:
        return _expired()
    except SmsDeliveryError:
        return _sent_page(CodeForm(), _("Не удалось отправить сообщение, попробуйте позже."))
    return _sent_page(CodeForm(), notice=_("Новый код отправлен."))


@bp.route("/password", methods=["GET", "POST"])
def password():
    try:
        flow = recovery.verified_flow(db.session, session.get("recovery_flow"), now=web.now())
    except recovery.FlowExpiredError:
        return _expired()
    return _new_password(flow, url_for("recovery.password"))


@bp.route("/link/<token>", methods=["GET", "POST"])
def link(token: str):
    try:
        flow = recovery.check_link(db.session, token, now=web.now())
    except recovery.FlowExpiredError:
        return _expired()
    return _new_password(flow, url_for("recovery.link", token=token))


def _new_password(flow, action: str):
    form = NewPasswordForm()
    if not form.validate_on_submit():
        return render_template(
            "recovery/password.html", form=form, action=action, rules=password_rules(), login_url=web.login_url()
        )
    policy = PolicySettings(min_length=current_app.config["PASSWORDS_MIN_LENGTH"])
    try:
        account = recovery.complete(
            db.session, flow, form.new.data, form.repeat.data, ip=request.remote_addr, now=web.now(), policy=policy,
            rounds=current_app.config["PASSWORDS_BCRYPT_ROUNDS"],
        )
    except PasswordPolicyError as error:
        message = REASONS[error.reason] % {"n": policy.min_length}
        return render_template(
            "recovery/password.html", form=form, action=action, error=message, rules=password_rules(),
            login_url=web.login_url(),
        )
    except recovery.FlowExpiredError:
        return _expired()
    _notify_changed(account)
    session.pop("recovery_flow", None)
    flash(_("Пароль изменён. Войдите с новым паролем."))
    return redirect(web.login_url())


def _notify_changed(account: Account) -> None:
    """«Ваш пароль изменён…» to the contacts on file. Informational: a failure is logged, not shown,
    and does not undo the change."""
    with force_locale(account.locale):
        text = _("Ваш пароль от личного кабинета иностранного гражданина изменён. Если это были не вы, обратитесь в Миграционный центр.")
        subject = _("Ваш пароль изменён")
    try:
        web.sms_sender().send(account.phone, text)
    except SmsDeliveryError:
        current_app.logger.warning("password-changed SMS not delivered")
    if account.email:
        try:
            web.mailer().send(Mail(to=account.email, subject=subject, text=text, html=render_template("recovery/mail_changed.html", text=text)))
        except MailDeliveryError:
            current_app.logger.warning("password-changed e-mail not delivered")


def _expired():
    return render_template("recovery/expired.html"), 400


def _start_page(form: StartForm, error: str | None = None):
    form.captcha.data = ""
    return render_template(
        "recovery/start.html", form=form, error=error, captcha_enabled=current_app.config["CAPTCHA_ENABLED"],
        contacts=web.contacts(), login_url=web.login_url(),
    )


def _sent_page(form: CodeForm, error: str | None = None, notice: str | None = None):
    cfg = current_app.config
    support = {"url": cfg["RECOVERY_SUPPORT_URL"], "phone": cfg["RECOVERY_SUPPORT_PHONE"], "centres": cfg["RECOVERY_SUPPORT_CENTRES"]}
    return render_template(
        "recovery/sent.html", form=form, error=error, notice=notice, support=support, hours=cfg["RECOVERY_WAIT_HOURS"],
        contacts=web.contacts(), login_url=web.login_url(),
    )


def _settings() -> recovery.RecoverySettings:
    cfg = current_app.config
    return recovery.RecoverySettings(
        link_ttl=cfg["RECOVERY_LINK_TTL"],
        code_ttl=cfg["RECOVERY_CODE_TTL"],
        code_attempts=cfg["RECOVERY_CODE_ATTEMPTS"],
        codes_per_flow=cfg["RECOVERY_CODES_PER_FLOW"],
        verified_ttl=cfg["RECOVERY_VERIFIED_TTL"],
        timezone=cfg["SERVER_TIMEZONE"],
        daily_limit=cfg["RESET_DAILY_LIMIT"],
        ip_daily_limit=cfg["RESET_IP_DAILY_LIMIT"],
        phone_daily_limit=cfg["RESET_PHONE_DAILY_LIMIT"],
        sms_daily_budget=cfg["RESET_SMS_DAILY_BUDGET"],
    )


def _delivery() -> recovery.Delivery:
    return recovery.Delivery(
        sms=web.sms_sender(), mailer=web.mailer(), sms_text=_code_text, link_mail=_link_mail, code_key=web.captcha_key()
    )


def _link_for(token: str) -> str:
    # Built from the configured issuer, never from the request's Host header.
    return current_app.config["SERVER_ISSUER"] + url_for("recovery.link", token=token)


def _code_text(code: str, account: Account) -> str:
    minutes = current_app.config["RECOVERY_CODE_TTL"] // 60
    with force_locale(account.locale):
        return _("Код восстановления: %(code)s. Действует %(minutes)s мин. Никому его не сообщайте.", code=code, minutes=minutes)


def _link_mail(link: str, account: Account) -> Mail:
    hours = current_app.config["RECOVERY_LINK_TTL"] // 3600
    with force_locale(account.locale):
        subject = _("Восстановление доступа к личному кабинету")
        text = render_template("recovery/mail_link.txt", link=link, hours=hours, name=account.given_name)
        html = render_template("recovery/mail_link.html", link=link, hours=hours, name=account.given_name)
    return Mail(to=account.email, subject=subject, text=text, html=html)
