"""Sign-in (seed: «Вход в личный кабинет иностранного гражданина») and the signed-in landing page."""

from __future__ import annotations

from flask import Blueprint
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField
from wtforms import PasswordField
from wtforms import StringField
from wtforms.validators import InputRequired
from wtforms.validators import Length

from .. import messages
from ..errors import InvalidCredentialsError
from ..extensions import db
from ..extensions import limiter
from ..models.base import keeping_loaded
from ..oauth.pending import PendingRequest
from ..oauth.pending import load_pending
from ..runtime import current
from ..services import accounts
from ..services import audit
from ..services import signin_throttle
from ..services.selfservice import reset
from ..services.sessions import account_clients
from ..services.sessions import session_clients
from . import captcha
from . import locale
from .device import continues_device_flow
from .errors import is_outage
from .logout import LogoutForm
from .oauth import proceed
from .sso import begin_sso
from .sso import current_sso

bp = Blueprint("login", __name__)


class LoginForm(captcha.CaptchaForm):
    login = StringField(_l("Логин (№ заявления на патент)"), validators=[InputRequired(), Length(max=128)])
    password = PasswordField(_l("Пароль"), validators=[InputRequired(), Length(max=1024)])
    # Unticked (the default), the cookie lives until the browser closes: counters are shared computers.
    remember = BooleanField(_l("Запомнить меня на этом устройстве"))


def login_rate_limit() -> str:
    """[login] rate_limit: sign-in and password-change POSTs per client IP."""
    return current().settings.login.rate_limit


def throttle(realm: str = "account") -> signin_throttle.Throttle:
    """The escalation counts of sign-in ([login]; ``services.signin_throttle``), in the rate limiter's
    storage: Redis in production, so every worker sees them."""
    settings = current().settings
    return signin_throttle.Throttle(
        limiter.storage, settings.login, realm, ipv6_prefix=settings.limits.ipv6_prefix
    )


def captcha_for_ip(counts: signin_throttle.Throttle, ip: str) -> bool:
    """Whether the page shown to ``ip`` carries the captcha from the start. With the limiter's storage
    down the page still shows (with the captcha); its POST is refused by the rate limit (fail closed)."""
    try:
        return counts.captcha_for_ip(ip)
    except Exception as error:
        if not is_outage(error):
            raise
        return True


def check_password(login: str, password: str, now: int):
    """The migrant's login and password checked as at sign-in (the step-up of /account/confirm too):
    the lock settings apply, and an SMS reset's password waits beside the account's own
    (services.selfservice.reset). Raises InvalidCredentialsError."""
    settings = current().settings
    return accounts.authenticate(
        db.session,
        login,
        password,
        now=now,
        settings=settings.passwords,
        lockout=settings.login,
        pending=reset.Pending(settings.server.secret_key),
        on_cpu=current().metrics.password_checked,
    )


def wait_message(verdict: signin_throttle.Verdict, now: int) -> str:
    return messages.SIGN_IN_WAIT % {"seconds": max(1, verdict.wait_seconds(now))}


def _page(form: LoginForm, authz: str, error: str | None = None, *, with_captcha: bool = False):
    if with_captcha:
        captcha.prepare(form)
    else:
        form.captcha.data = form.captcha_token.data = ""
    help_url = url_for("reset.start", authz=authz or None)
    page_url = url_for("login.login", authz=authz or None)
    # The page's own address for the language switcher: /authorize shows this page too, and the
    # switcher must come back here, not to /authorize without its parameters.
    return render_template(
        "login/login.html",
        form=form,
        authz=authz,
        help_url=help_url,
        page_url=page_url,
        switcher_next=page_url,
        error=error,
    )


def sign_in_page(pending: PendingRequest | None):
    """The empty sign-in form, for the authorization request ``pending`` if any: at GET /login, and at
    /authorize itself when the request needs a sign-in (one request less than a redirect to /login,
    issue 12). Its login is the request's ``login_hint`` (OIDC Core §3.1.2.1), or the login an access
    recovery has just told the person (once)."""
    # formdata=None: at a POST /authorize the body is the relying party's request, not this form.
    form = LoginForm(formdata=None)
    form.login.data = dict(pending.params).get("login_hint", "")[:128] if pending else ""
    form.login.data = session.pop("sign_in_as", "") or form.login.data
    authz = pending.id if pending else ""
    return _page(form, authz, with_captcha=captcha_for_ip(throttle(), request.remote_addr or ""))


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
    if request.method != "POST":  # GET, or HEAD (a GET without the body)
        return sign_in_page(load_pending(authz))
    form = LoginForm()
    runtime = current()
    now, ip = runtime.clock(), request.remote_addr or ""
    if not form.validate_on_submit():
        return _page(form, authz, messages.LOGIN_INCOMPLETE, with_captcha=captcha_for_ip(throttle(), ip))
    # Cheap checks first (issue 10): a waiting address, or a captcha owed, is answered before any bcrypt
    # check or database write. The login is counted as typed when it is not a valid one, so an unknown
    # or malformed login escalates exactly like a real one.
    typed = accounts.normalize_login(form.login.data) or form.login.data.strip().casefold()
    counts = throttle()
    verdict = counts.check(ip=ip, login=typed, now=now)
    if verdict.wait_until:
        runtime.metrics.signed_in("wait")
        return _page(form, authz, wait_message(verdict, now), with_captcha=True)
    if verdict.captcha and not captcha.solved(form):
        runtime.metrics.signed_in("captcha")
        error = messages.CAPTCHA_WRONG if form.captcha.data else messages.SIGN_IN_CAPTCHA
        return _page(form, authz, error, with_captcha=True)
    try:
        account = check_password(form.login.data, form.password.data, now)
    except InvalidCredentialsError as error:
        audit.record_sign_in_failure(
            db.session,
            audit.Context(audit.ANONYMOUS, request.remote_addr, now),
            error,
            staff=False,
            # Only a login that names an account is written down: what was typed may be a password.
            login=accounts.normalize_login(form.login.data) if error.subject_id is not None else None,
            user_agent=request.user_agent.string,
        )
        db.session.commit()  # keeps the failure count and the audit events
        counts.failed(ip=ip, login=typed, now=now)
        runtime.metrics.signed_in(error.reason)
        form.password.data = ""
        owed = counts.check(ip=ip, login=typed, now=now).captcha
        return _page(form, authz, messages.LOGIN_FAILED, with_captcha=owed)
    counts.succeeded(ip=ip, login=typed, verdict=verdict)
    # The account's history in the staff console shows sign-ins; committed with the session below.
    ctx = audit.Context(audit.Actor.account(account), request.remote_addr, now)
    audit.record(db.session, ctx, "account.signed_in", account_id=account.id)
    locale.at_sign_in(account)
    pending = load_pending(authz)
    # With a request to go on with, the sign-in commits with the code issued for it (issue 12).
    sso = begin_sso(account, ["pwd"], remember=form.remember.data, caller_commits=pending is not None)
    runtime.metrics.signed_in("temporary" if sso.account.must_change_password else "ok")
    if pending is not None:
        # The authorization request goes on in this response (a code for the relying party, or the
        # next step it needs), as from /authorize/continue but without the browser's round trip there.
        with keeping_loaded(db.session):
            response = proceed(pending)
            # The sign-in, when no code was issued (another step, or an error for the relying party).
            db.session.commit()
        return response
    if sso.account.must_change_password:
        return redirect(url_for("password.change"))
    if continues_device_flow():
        # RFC 8628 §3.3: a code was entered at /device before signing in; confirm it now.
        return redirect(url_for("device.confirm"))
    return redirect(url_for("login.index"))
