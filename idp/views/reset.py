"""«не могу войти»: a new password by SMS
(seed: «Сброс пароля к личному кабинету иностранного гражданина»)."""

from __future__ import annotations

from flask import Blueprint
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import StringField
from wtforms.validators import InputRequired
from wtforms.validators import Length

from .. import messages
from ..errors import LimitError
from ..extensions import db
from ..extensions import limiter
from ..languages import duration
from ..runtime import current
from ..services.accounts import normalize_login
from ..services.accounts import normalize_phone
from ..services.selfservice import reset
from . import captcha
from . import selfservice

bp = Blueprint("reset", __name__, url_prefix="/reset")


class ResetForm(captcha.CaptchaForm):
    login = StringField(_l("Логин (№ заявления на патент)"), validators=[InputRequired(), Length(max=128)])
    phone = StringField(_l("Ваш номер телефона"), validators=[InputRequired(), Length(max=32)])


@bp.route("/", methods=["GET", "POST"])
@limiter.limit(selfservice.form_rate_limit, methods=["POST"])
def start():
    form = ResetForm()
    selfservice.remember_authz()
    if request.method != "POST":  # GET, or HEAD (a GET without the body)
        return _page(form)
    return _submit(form)


def _submit(form: ResetForm):
    # The per-IP limit ([limits] form_rate_limit) has run before this; then the captcha; and what follows
    # is the same few small database writes on every path, match or not — the SMS goes through the
    # outbox (services.selfservice.reset), so the answer is immediate and the same for every case.
    if not form.validate_on_submit():
        return _page(form, messages.FORM_INCOMPLETE)
    if not captcha.solved(form):
        return _page(form, messages.CAPTCHA_WRONG)
    login, phone = normalize_login(form.login.data), normalize_phone(form.phone.data)
    if not login:
        return _page(form, messages.LOGIN_INVALID)
    if not phone:
        return _page(form, messages.PHONE_INVALID)
    runtime = current()
    ip, now = request.remote_addr or "", runtime.clock()
    try:
        settings = runtime.settings
        queued = reset.request(db.session, login=login, phone=phone, ip=ip, now=now, settings=settings)
    except LimitError:
        db.session.commit()  # the counts taken stay taken
        runtime.metrics.password_reset("limited")
        return _page(form, messages.LIMIT_REACHED, limited=True)
    db.session.commit()
    runtime.metrics.password_reset("ignored" if queued.account_id is None else "sent")
    return redirect(url_for("reset.sent"))


def sms_text(temporary: str, account) -> str:
    """The reset SMS (run by the outbox, outside any request: the address comes from the issuer)."""
    # Cyrillic goes as UCS-2, 67 characters a segment: this text stays within two for an issuer of up to
    # 42 characters and a temporary password valid for up to 23 hours (tests/unit/test_catalogues.py).
    ttl = current().settings.passwords.temporary_ttl
    login_url = current().settings.server.issuer + "/login"
    with force_locale(account.locale):
        return _(
            "Новый пароль личного кабинета: %(password)s. "
            "Действует %(duration)s, при входе смените его: %(url)s",
            password=temporary,
            url=login_url,
            duration=duration(ttl, account.locale),
        )


def _page(form: ResetForm, error: str | None = None, limited: bool = False):
    """The reset form; ``limited``: the day's resets are used up, so the form is shown disabled, with
    what to do instead (the Migration Center's contacts, the way back to the sign-in page)."""
    if limited:
        form.captcha_token.data = ""  # no new challenge for a form that cannot be sent
    else:
        captcha.prepare(form)
    return render_template(
        "reset/start.html",
        form=form,
        error=error,
        limited=limited,
        contacts=selfservice.contacts(),
        login_url=selfservice.login_url(),
    )


@bp.route("/sent")
def sent():
    return render_template(
        "reset/sent.html", contacts=selfservice.contacts(), login_url=selfservice.login_url()
    )
