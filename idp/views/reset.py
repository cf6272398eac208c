"""«не могу войти»: a new password by SMS (seed: «Сброс пароля к личному кабинету иностранного гражданина»)."""

from __future__ import annotations

import time

from flask import Blueprint
from flask import current_app
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import InputRequired
from wtforms.validators import Length

from ..extensions import db
from ..services import captcha
from ..services.accounts import normalize_login
from ..services.accounts import normalize_phone
from ..services.reset import ResetLimitError
from ..services.reset import ResetSettings
from ..services.reset import request_reset
from ..services.sms import SmsDeliveryError
from . import web

bp = Blueprint("reset", __name__, url_prefix="/reset")

LIMIT_MESSAGE = _l("Функция сброса пароля будет доступна на следующий день")


class ResetForm(FlaskForm):
    login = StringField(_l("Логин (№ заявления на патент)"), validators=[InputRequired(), Length(max=128)])
    phone = StringField(_l("Ваш номер телефона"), validators=[InputRequired(), Length(max=32)])
    captcha = StringField(_l("Код на изображении"), validators=[Length(max=16)])


@bp.route("/", methods=["GET", "POST"])
def start():
    form = ResetForm()
    web.remember_authz()
    if request.method == "GET":
        return _page(form)
    started = time.monotonic()
    response = _submit(form)
    web.pad_response(started, current_app.config["RESET_RESPONSE_FLOOR_MS"])
    return response


def _submit(form: ResetForm):
    if not form.validate_on_submit():
        return _page(form, _("Заполните все поля."))
    if not web.captcha_solved(form.captcha.data):
        return _page(form, _("Код на изображении введён неверно. Введите код с новой картинки."))
    login, phone = normalize_login(form.login.data), normalize_phone(form.phone.data)
    if not login:
        return _page(form, _("Проверьте номер заявления на патент."))
    if not phone:
        return _page(form, _("Введите номер телефона в формате +7 (9XX) XXX-XX-XX."))
    try:
        request_reset(
            db.session, login=login, phone=phone, ip=request.remote_addr or "", now=web.now(),
            settings=_settings(), sender=web.sms_sender(), compose=_sms_text,
        )
    except ResetLimitError:
        return _page(form, LIMIT_MESSAGE)
    except SmsDeliveryError:
        return _page(form, _("Не удалось отправить СМС, попробуйте позже."))
    return redirect(url_for("reset.sent"))


def _settings() -> ResetSettings:
    cfg = current_app.config
    return ResetSettings(
        daily_limit=cfg["RESET_DAILY_LIMIT"],
        ip_daily_limit=cfg["RESET_IP_DAILY_LIMIT"],
        phone_daily_limit=cfg["RESET_PHONE_DAILY_LIMIT"],
        sms_daily_budget=cfg["RESET_SMS_DAILY_BUDGET"],
        timezone=cfg["SERVER_TIMEZONE"],
        bcrypt_rounds=cfg["PASSWORDS_BCRYPT_ROUNDS"],
        temporary_ttl=cfg["PASSWORDS_TEMPORARY_TTL"],
    )


def _sms_text(temporary: str, account) -> str:
    # Cyrillic goes as UCS-2, 67 characters a segment: this text stays within two for an issuer of up to
    # 42 characters and a 24-hour temporary password (tests/flows/test_reset.py checks it).
    hours = current_app.config["PASSWORDS_TEMPORARY_TTL"] // 3600
    login_url = current_app.config["SERVER_ISSUER"] + url_for("login.login")
    with force_locale(account.locale):
        return _(
            "Новый пароль от личного кабинета: %(password)s. Действует %(hours)s ч., при входе смените его: %(url)s",
            password=temporary, url=login_url, hours=hours,
        )


def _page(form: ResetForm, error: str | None = None):
    form.captcha.data = ""
    captcha_enabled = current_app.config["CAPTCHA_ENABLED"]
    return render_template(
        "reset/start.html", form=form, error=error, captcha_enabled=captcha_enabled, contacts=web.contacts(),
        login_url=web.login_url(),
    )


@bp.route("/captcha.png")
def captcha_image():
    """A new challenge for this browser; the form's «Обновить» fetches this again."""
    challenge_id, png = captcha.issue_challenge(
        db.session, key=web.captcha_key(), now=web.now(), ttl=current_app.config["CAPTCHA_TTL"]
    )
    db.session.commit()
    session["captcha"] = challenge_id
    response = make_response(png)
    response.mimetype = "image/png"
    response.cache_control.no_store = True
    return response


@bp.route("/sent")
def sent():
    return render_template("reset/sent.html", contacts=web.contacts(), login_url=web.login_url())
