"""Sign-in (seed: «Вход в личный кабинет иностранного гражданина») and the signed-in landing page."""

from __future__ import annotations

from flask import Blueprint
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField
from wtforms import StringField
from wtforms.validators import InputRequired
from wtforms.validators import Length

from .. import messages
from ..errors import InvalidCredentialsError
from ..extensions import db
from ..extensions import limiter
from ..oauth.pending import load_pending
from ..runtime import current
from ..services import accounts
from ..services import audit
from ..services.selfservice import reset
from ..services.sessions import account_clients
from ..services.sessions import session_clients
from . import locale
from .logout import LogoutForm
from .sso import begin_sso
from .sso import current_sso

bp = Blueprint("login", __name__)


class LoginForm(FlaskForm):
    login = StringField(_l("Логин (№ заявления на патент)"), validators=[InputRequired(), Length(max=128)])
    password = PasswordField(_l("Пароль"), validators=[InputRequired(), Length(max=1024)])


def login_rate_limit() -> str:
    """[login] rate_limit: sign-in and password-change POSTs per client IP."""
    return current().settings.login.rate_limit


def _page(form: LoginForm, authz: str, error: str | None = None):
    help_url = url_for("reset.start", authz=authz or None)
    return render_template("login/login.html", form=form, authz=authz, help_url=help_url, error=error)


@bp.route("/")
def index():
    sso = current_sso()
    if sso is None:
        return redirect(url_for("login.login"))
    portals = [client.client_name for client in session_clients(db.session, sso.sid)]
    # The sites this person uses, each a link to its home page (RFC 7591 client_uri) when it has one.
    sites = [
        {"name": client.client_name, "url": client.client_uri}
        for client in account_clients(db.session, sso.account_id)
    ]
    return render_template(
        "login/index.html",
        account=sso.account,
        portals=portals,
        sites=sites,
        cabinet_url=current().settings.staff.cabinet_url,
        form=LogoutForm(),
    )


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_rate_limit, methods=["POST"])
def login():
    authz = request.args.get("authz", "")
    form = LoginForm()
    if request.method != "POST":  # GET, or HEAD (a GET without the body)
        pending = load_pending(authz)
        form.login.data = dict(pending.params).get("login_hint", "")[:128] if pending else ""
        # After an access recovery: the login it told the person, filled in (once).
        form.login.data = session.pop("sign_in_as", "") or form.login.data
        return _page(form, authz)
    if not form.validate_on_submit():
        return _page(form, authz, messages.LOGIN_INCOMPLETE)
    runtime = current()
    now = runtime.clock()
    try:
        account = accounts.authenticate(
            db.session,
            form.login.data,
            form.password.data,
            now=now,
            settings=runtime.settings.passwords,
            lockout=runtime.settings.login,
            # An SMS reset's password waits beside the account's own (services.selfservice.reset).
            pending=reset,
        )
    except InvalidCredentialsError as error:
        db.session.commit()  # keeps the failure count
        runtime.metrics.signed_in(error.reason)
        form.password.data = ""
        return _page(form, authz, messages.LOGIN_FAILED)
    # The account's history in the staff console shows sign-ins; committed with the session below.
    ctx = audit.Context(audit.Actor.account(account), request.remote_addr, now)
    audit.record(db.session, ctx, "account.signed_in", account_id=account.id)
    locale.at_sign_in(account)
    sso = begin_sso(account, ["pwd"])
    runtime.metrics.signed_in("temporary" if sso.account.must_change_password else "ok")
    if load_pending(authz):
        return redirect(url_for("oauth.resume", pending_id=authz))
    if sso.account.must_change_password:
        return redirect(url_for("password.change"))
    return redirect(url_for("login.index"))
