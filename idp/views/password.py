"""Password change (seed step 3): forced after a temporary password, or at will at a stable URL."""

from __future__ import annotations

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms.validators import InputRequired
from wtforms.validators import Length

from ..extensions import db
from ..extensions import limiter
from ..services.password_change import PasswordPolicyError
from ..services.password_change import PolicySettings
from ..services.password_change import change_password
from ..services.password_change import check_change
from . import web

bp = Blueprint("password", __name__, url_prefix="/password")

REASONS = {
    "wrong_old": _l("Старый пароль введён неверно."),
    "mismatch": _l("Новые пароли не совпадают."),
    "too_short": _l("Пароль слишком короткий: нужно не меньше %(n)s символов."),
    "too_long": _l("Пароль слишком длинный."),
    "same_as_old": _l("Новый пароль должен отличаться от старого."),
    "common": _l("Этот пароль слишком распространён. Придумайте другой."),
    "personal": _l("Пароль не должен совпадать с логином, фамилией или именем."),
}


def password_rules() -> str:
    """The policy in one line, shown under the new-password field (NIST SP 800-63B §5.1.1.2 asks to guide users)."""
    return _("Не меньше %(n)s символов. Нельзя использовать распространённые пароли, логин, фамилию или имя.",
             n=current_app.config["PASSWORDS_MIN_LENGTH"])


class ChangeForm(FlaskForm):
    old = PasswordField(_l("Старый пароль"), validators=[InputRequired(), Length(max=1024)])
    new = PasswordField(_l("Новый пароль"), validators=[InputRequired(), Length(max=1024)])
    repeat = PasswordField(_l("Повторно введите новый пароль"), validators=[InputRequired(), Length(max=1024)])


@bp.route("/change", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def change():
    authz = request.args.get("authz", "")
    sso = web.current_sso()
    if sso is None:
        return redirect(url_for("login.login", authz=authz))
    form = ChangeForm()
    if not form.validate_on_submit():
        return render_template(
            "password/change.html", form=form, forced=sso.account.must_change_password, rules=password_rules()
        )
    account = sso.account
    policy = PolicySettings(min_length=current_app.config["PASSWORDS_MIN_LENGTH"])
    try:
        check_change(account, form.old.data, form.new.data, form.repeat.data, policy)
    except PasswordPolicyError as error:
        message = REASONS[error.reason] % {"n": policy.min_length}
        return render_template(
            "password/change.html", form=form, forced=account.must_change_password, error=message, rules=password_rules()
        )
    rounds = current_app.config["PASSWORDS_BCRYPT_ROUNDS"]
    change_password(
        db.session, account, form.new.data, ip=request.remote_addr, now=web.now(), rounds=rounds, keep_sid=sso.sid
    )
    db.session.commit()
    if web.load_pending(authz):
        return redirect(url_for("oauth.resume", pending_id=authz))
    flash(_("Пароль изменён."))
    return redirect(url_for("login.index"))
