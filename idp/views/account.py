"""«Мой профиль» (/account): the signed-in migrant's data, their sessions on every device, the sites
they gave access to, and what they may do about them (``services.my_account``).

Every action is a POST with a CSRF token. When the password was last typed in this session longer ago
than ``[account] step_up_age``, the action waits while the password is asked again (/account/confirm,
like Kratos' privileged sessions) and is carried out once it is right. Ending sessions goes through the
session-ended machinery, so relying parties are told by back-channel logout; this page also loads their
front-channel logout URIs (``logout/done.html``).
"""

from __future__ import annotations

import datetime

from flask import Blueprint
from flask import flash
from flask import g
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms import IntegerField
from wtforms import PasswordField
from wtforms.validators import InputRequired
from wtforms.validators import Length

from .. import messages
from ..errors import InvalidCredentialsError
from ..extensions import db
from ..extensions import limiter
from ..headers import allow_frames
from ..models import SsoSession
from ..oauth.logout import frontchannel_frames
from ..runtime import current
from ..services import audit
from ..services import my_account
from ..services import sessions
from .consent import SCOPE_LABELS
from .login import check_password
from .login import login_rate_limit
from .logout import FRONTCHANNEL_WAIT
from .sso import current_sso

bp = Blueprint("account", __name__, url_prefix="/account")

# The action waiting for the password to be typed again, in the signed Flask session.
WAITING = "account_action"
END_ONE, END_ALL, REVOKE = "end_one", "end_all", "revoke"

PLACES = {
    my_account.THIS_COMPUTER: _l("этот компьютер"),
    my_account.LOCAL_NETWORK: _l("локальная сеть"),
    my_account.INTERNET: _l("сеть %(network)s"),
    my_account.UNKNOWN: _l("неизвестно"),
}


class ActionForm(FlaskForm):
    """A bare POST with its CSRF token: «Выйти на всех устройствах»."""


class EndSessionForm(FlaskForm):
    session_id = IntegerField(validators=[InputRequired()])


class RevokeForm(FlaskForm):
    client_id = HiddenField(validators=[InputRequired(), Length(max=64)])


class ConfirmForm(FlaskForm):
    password = PasswordField(_l("Пароль"), validators=[InputRequired(), Length(max=1024)])


def _when(timestamp: int) -> str:
    return format_datetime(datetime.datetime.fromtimestamp(timestamp, datetime.UTC), "dd.MM.yyyy HH:mm")


def _place(place: my_account.Place) -> str:
    words = PLACES.get(place.kind, PLACES[my_account.UNKNOWN])
    return str(words) % {"network": place.network} if place.network else str(words)


def _device(device: my_account.Device) -> str:
    parts = [part for part in (device.browser, device.system) if part]
    return ", ".join(parts) if parts else _("неизвестное устройство")


def _signed_in() -> SsoSession | None:
    sso = current_sso()
    if sso is None or sso.account.must_change_password:
        return None
    return sso


def _ctx(sso: SsoSession) -> audit.Context:
    return audit.Context(audit.Actor.account(sso.account), request.remote_addr, current().clock())


@bp.route("", methods=["GET"])
def profile():
    sso = current_sso()
    if sso is None:
        return redirect(url_for("login.login"))
    if sso.account.must_change_password:
        return redirect(url_for("password.change"))
    runtime = current()
    now = runtime.clock()
    account = sso.account
    rows = my_account.live_sessions(
        db.session, account.id, now=now, settings=runtime.settings.session, current_id=sso.id
    )
    shown_sessions = [
        {
            "id": row.id,
            "device": _device(row.device),
            "place": _place(row.place),
            "started": _when(row.started_at),
            "last_seen": _when(row.last_seen_at),
            "sites": row.sites,
            "current": row.current,
        }
        for row in rows
    ]
    grants = [
        {
            "client_id": grant.client_id,
            "name": grant.name,
            "scopes": [str(SCOPE_LABELS[s]) for s in grant.scopes if s in SCOPE_LABELS],
            "granted": _when(grant.granted_at) if grant.granted_at else "",
        }
        for grant in my_account.granted_sites(db.session, account.id, now=now)
    ]
    stale = my_account.needs_step_up(sso, now=now, max_age=runtime.settings.account.step_up_age)
    return render_template(
        "account/profile.html",
        account=account,
        phone=my_account.mask_phone(account.phone),
        email=my_account.mask_email(account.email),
        sessions=shown_sessions,
        grants=grants,
        stale=stale,
        end_form=EndSessionForm(),
        all_form=ActionForm(),
        revoke_form=RevokeForm(),
    )


@bp.route("/sessions/end", methods=["POST"])
def end_session():
    form = EndSessionForm()
    if not form.validate_on_submit():
        return _stale_form()
    return _act(END_ONE, str(form.session_id.data))


@bp.route("/sessions/end-all", methods=["POST"])
def end_all():
    if not ActionForm().validate_on_submit():
        return _stale_form()
    return _act(END_ALL, "")


@bp.route("/sites/revoke", methods=["POST"])
def revoke():
    form = RevokeForm()
    if not form.validate_on_submit():
        return _stale_form()
    return _act(REVOKE, form.client_id.data)


def _stale_form():
    flash(str(messages.STALE_FORM))
    return redirect(url_for("account.profile"))


def _act(action: str, target: str):
    sso = _signed_in()
    if sso is None:
        return redirect(url_for("login.login"))
    runtime = current()
    if my_account.needs_step_up(sso, now=runtime.clock(), max_age=runtime.settings.account.step_up_age):
        session[WAITING] = {"action": action, "target": target}
        return redirect(url_for("account.confirm"))
    return _carry_out(sso, action, target)


@bp.route("/confirm", methods=["GET", "POST"])
@limiter.limit(login_rate_limit, methods=["POST"])
def confirm():
    """Step-up: the password again before a waiting action (``[account] step_up_age``)."""
    sso = _signed_in()
    if sso is None:
        return redirect(url_for("login.login"))
    waiting = session.get(WAITING)
    if not isinstance(waiting, dict):
        return redirect(url_for("account.profile"))
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("account/confirm.html", form=form)
    runtime = current()
    now = runtime.clock()
    try:
        check_password(sso.account.login, form.password.data, now)
    except InvalidCredentialsError as error:
        audit.record_sign_in_failure(
            db.session,
            _ctx(sso),
            error,
            staff=False,
            login=sso.account.login,
            user_agent=request.user_agent.string,
            during="step_up",
        )
        db.session.commit()  # the failure counts towards the lock, as at sign-in
        form.password.data = ""
        return render_template("account/confirm.html", form=form, error=_("Неверный пароль.")), 200
    token = sessions.reauthenticate(db.session, sso, now=now, settings=runtime.settings.session, amr=["pwd"])
    db.session.commit()
    session["sso"] = token
    session.pop(WAITING, None)
    return _carry_out(sso, str(waiting.get("action")), str(waiting.get("target", "")))


def _carry_out(sso: SsoSession, action: str, target: str):
    runtime = current()
    now, ctx, account = runtime.clock(), _ctx(sso), sso.account
    if action == REVOKE:
        done = my_account.revoke_site(db.session, ctx, account, target, now=now)
        db.session.commit()
        if done:
            flash(_("Доступ отозван. Сайт попросит разрешение при следующем входе."))
        return redirect(url_for("account.profile"))
    if action == END_ALL:
        ended = my_account.end_everywhere(db.session, ctx, account, now=now, events=runtime.events)
    elif action == END_ONE and target.isdigit():
        sid = my_account.end_one(db.session, ctx, account, int(target), now=now, events=runtime.events)
        ended = [sid] if sid else []
    else:
        return redirect(url_for("account.profile"))
    db.session.commit()
    frames = [url for sid in ended for url in frontchannel_frames(sid)]
    if sso.sid in ended:
        # This browser is signed out too.
        session.clear()
        g.idp_sso = None
        page = render_template(
            "logout/done.html", frames=frames, continue_url=url_for("login.login"), wait=FRONTCHANNEL_WAIT
        )
        return allow_frames(make_response(page), frames)
    flash(_("Сеанс на другом устройстве завершён."))
    if not frames:
        return redirect(url_for("account.profile"))
    page = render_template(
        "logout/done.html", frames=frames, continue_url=url_for("account.profile"), wait=FRONTCHANNEL_WAIT
    )
    return allow_frames(make_response(page), frames)
