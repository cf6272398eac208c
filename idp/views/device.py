"""The page of the device authorization grant (RFC 8628 §3.3): «Введите код с экрана».

The person types the user code shown by the device (or arrives with it from verification_uri_complete),
signs in if needed, sees which relying party asks for what, and allows or refuses. The request being
confirmed is kept in the signed session cookie as its row id, never as the code. Submitting codes is
rate-limited per client IP ([device] rate_limit): the code is short, guessing it is the attack.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import scope_to_list
from flask import Blueprint
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms import SubmitField

from ..extensions import db
from ..extensions import limiter
from ..models import DeviceCode
from ..models.device import PENDING
from ..oauth import device as device_grant
from ..oauth.storage import query_client
from ..runtime import current
from .consent import SCOPE_LABELS
from .consent import SELF_NAMED_DEVICE_WARNING
from .consent import registered_by
from .sso import current_sso

bp = Blueprint("device", __name__, url_prefix="/device")

CODE_NOT_FOUND = _l("Код не найден или устарел. Проверьте код на экране устройства и введите его ещё раз.")
# The session key of the request being confirmed: {"id": row id, "at": when the code was entered}.
SESSION_KEY = "device"


class CodeForm(FlaskForm):
    user_code = StringField(_l("Код с экрана"))
    submit = SubmitField(_l("Продолжить"))


class ConfirmForm(FlaskForm):
    allow = SubmitField(_l("Разрешить"))
    deny = SubmitField(_l("Отказать"))


def device_rate_limit() -> str:
    return current().settings.device.rate_limit


@bp.route("", methods=["GET", "POST"])
@limiter.limit(device_rate_limit, methods=["POST"])
def start():
    form = CodeForm()
    if request.method == "GET" and request.args.get("user_code"):
        form.user_code.data = request.args["user_code"][:32]
    error = None
    if form.validate_on_submit():
        row = device_grant.find_pending(form.user_code.data or "")
        if row is not None:
            session[SESSION_KEY] = {"id": row.id, "at": current().clock()}
            return redirect(url_for("device.confirm"))
        error = CODE_NOT_FOUND
    return render_template("device/start.html", form=form, error=error), 400 if error else 200


def waiting_row() -> DeviceCode | None:
    """The request this browser entered a code for, while it is still pending and unexpired."""
    kept = session.get(SESSION_KEY)
    if not isinstance(kept, dict):
        return None
    row = db.session.get(DeviceCode, kept.get("id"))
    if row is None or row.status != PENDING or row.is_expired(current().clock()):
        session.pop(SESSION_KEY, None)
        return None
    return row


@bp.route("/confirm", methods=["GET", "POST"])
def confirm():
    row = waiting_row()
    if row is None:
        return redirect(url_for("device.start"))
    sso = current_sso()
    if sso is None:
        # The sign-in page comes back here (views/login.py reads the same session key).
        return redirect(url_for("login.login"))
    if sso.account.must_change_password:
        return redirect(url_for("password.change"))
    client = query_client(row.client_id)
    form = ConfirmForm()
    if client is not None and form.validate_on_submit():
        approved = bool(form.allow.data)
        session.pop(SESSION_KEY, None)
        if not device_grant.decide(row, sso, approved=approved):
            return redirect(url_for("device.start"))
        return render_template("device/done.html", approved=approved)
    if client is None:
        session.pop(SESSION_KEY, None)
        return redirect(url_for("device.start"))
    labels = [SCOPE_LABELS[s] for s in scope_to_list(row.scope) or [] if s in SCOPE_LABELS]
    return render_template(
        "device/confirm.html",
        form=form,
        client_name=client.client_name,
        labels=labels,
        registered_by=registered_by(client),
        warning=SELF_NAMED_DEVICE_WARNING if client.dynamically_registered else None,
    )


def continues_device_flow() -> bool:
    """For the sign-in page: whether this browser entered a device code and should come back to confirm."""
    return waiting_row() is not None
