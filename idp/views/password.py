"""Password change (seed step 3): forced after a temporary password, or at will at a stable URL
(``services.selfservice.password``)."""

from __future__ import annotations

from flask import Blueprint
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

from .. import messages
from ..errors import InvalidCredentialsError
from ..errors import PasswordPolicyError
from ..extensions import db
from ..extensions import limiter
from ..oauth.pending import load_pending
from ..runtime import current
from ..services import audit
from ..services import credentials
from ..services.selfservice import password
from . import selfservice
from .login import login_rate_limit
from .login import throttle
from .sso import current_sso

bp = Blueprint("password", __name__, url_prefix="/password")


class ChangeForm(FlaskForm):
    old = PasswordField(_l("Старый пароль"), validators=[InputRequired(), Length(max=1024)])
    new = PasswordField(_l("Новый пароль"), validators=[InputRequired(), Length(max=1024)])
    repeat = PasswordField(
        _l("Повторно введите новый пароль"), validators=[InputRequired(), Length(max=1024)]
    )


@bp.route("/change", methods=["GET", "POST"])
@limiter.limit(login_rate_limit, methods=["POST"])
def change():
    authz = request.args.get("authz", "")
    sso = current_sso()
    if sso is None:
        return redirect(url_for("login.login", authz=authz))
    form = ChangeForm()
    if not form.validate_on_submit():
        return render_template(
            "password/change.html",
            form=form,
            forced=sso.account.must_change_password,
            rules=selfservice.password_rules(),
        )
    account = sso.account
    runtime = current()
    policy = runtime.settings.passwords
    try:
        password.check(account, form.old.data, form.new.data, form.repeat.data, policy)
    except PasswordPolicyError as error:
        if error.reason == "wrong_old":
            # A guess at the current password is a failed sign-in (issue 10): whoever holds a session
            # cookie must not get unlimited guesses here; it feeds the account's lock and the escalation.
            now = runtime.clock()
            credentials.count_failure(account, now, runtime.settings.login)
            throttle().failed(ip=request.remote_addr or "", login=account.login, now=now)
            audit.record_sign_in_failure(
                db.session,
                audit.Context(audit.Actor.account(account), request.remote_addr, now),
                InvalidCredentialsError(
                    subject_id=account.id,
                    result="wrong_password",
                    locked_now=credentials.is_locked(account, now),
                ),
                staff=False,
                login=account.login,
                user_agent=request.user_agent.string,
                during="password_change",
            )
        db.session.commit()  # a wrong current password counts against the flow
        message = messages.password_reason(error.reason, policy.min_length)
        return render_template(
            "password/change.html",
            form=form,
            forced=account.must_change_password,
            error=message,
            rules=selfservice.password_rules(),
        )
    password.complete(
        db.session,
        account,
        form.new.data,
        ip=request.remote_addr,
        now=runtime.clock(),
        settings=policy,
        keep_sid=sso.sid,
        events=runtime.events,
    )
    db.session.commit()
    if load_pending(authz):
        return redirect(url_for("oauth.resume", pending_id=authz))
    flash(_("Пароль изменён."))
    return redirect(url_for("login.index"))
