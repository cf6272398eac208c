"""Sign-in (seed: «Вход в личный кабинет иностранного гражданина») and the signed-in landing page."""

from __future__ import annotations

from flask import Blueprint
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms import StringField
from wtforms.validators import InputRequired
from wtforms.validators import Length

from ..errors import InvalidCredentialsError
from ..extensions import db
from ..extensions import limiter
from ..services import accounts
from ..services import audit
from ..services.sessions import session_clients
from . import web
from .logout import LogoutForm

bp = Blueprint("login", __name__)


class LoginForm(FlaskForm):
    login = StringField(_l("Логин (№ заявления на патент)"), validators=[InputRequired(), Length(max=128)])
    password = PasswordField(_l("Пароль"), validators=[InputRequired(), Length(max=1024)])


def _login_rate_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _help_url(authz: str) -> str:
    return url_for("reset.start", authz=authz or None)


@bp.route("/")
def index():
    sso = web.current_sso()
    if sso is None:
        return redirect(url_for("login.login"))
    portals = [client.client_name for client in session_clients(db.session, sso.sid)]
    return render_template("login/index.html", account=sso.account, portals=portals, form=LogoutForm())


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate_limit, methods=["POST"])
def login():
    authz = request.args.get("authz", "")
    form = LoginForm()
    if request.method == "GET":
        pending = web.load_pending(authz)
        form.login.data = dict(pending.params).get("login_hint", "")[:128] if pending else ""
        return render_template("login/login.html", form=form, authz=authz, help_url=_help_url(authz))
    if not form.validate_on_submit():
        return render_template("login/login.html", form=form, authz=authz, help_url=_help_url(authz), error=_l("Введите логин и пароль.")), 200
    try:
        account = accounts.authenticate(
            db.session,
            form.login.data,
            form.password.data,
            now=web.now(),
            settings=web.password_settings(),
            lockout=web.lockout_settings(),
        )
    except InvalidCredentialsError:
        db.session.commit()  # keeps the failure count
        form.password.data = ""
        return render_template("login/login.html", form=form, authz=authz, help_url=_help_url(authz), error=_l("Неверный логин или пароль.")), 200
    # The account's history in the staff console shows sign-ins; committed with the session below.
    ctx = audit.Context(audit.Actor.account(account), request.remote_addr, web.now())
    audit.record(db.session, ctx, "account.signed_in", account_id=account.id)
    sso = web.begin_sso(account, ["pwd"])
    if web.load_pending(authz):
        return redirect(url_for("oauth.resume", pending_id=authz))
    if sso.account.must_change_password:
        return redirect(url_for("password.change"))
    return redirect(url_for("login.index"))
