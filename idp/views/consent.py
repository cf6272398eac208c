"""Consent: the user allows a non-trusted client to receive the requested claims (OIDC Core §3.1.2.4)."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import scope_to_list
from flask import Blueprint
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SubmitField

from ..extensions import authorization
from ..extensions import db
from ..services.consents import grant_consent
from . import web
from .oauth import parked_grant

bp = Blueprint("consent", __name__, url_prefix="/consent")

SCOPE_LABELS = {
    "openid": _l("Подтверждение вашей личности"),
    "profile": _l("Фамилия, имя, отчество"),
    "phone": _l("Номер телефона"),
    "email": _l("Адрес электронной почты"),
    "patent": _l("Номер заявления на патент"),
    "offline_access": _l("Доступ к этим данным, пока вы не выйдете из кабинета"),
}


class ConsentForm(FlaskForm):
    allow = SubmitField(_l("Разрешить"))
    deny = SubmitField(_l("Отказать"))


@bp.route("/", methods=["GET", "POST"])
def consent():
    authz = request.args.get("authz", "")
    pending, grant = parked_grant(authz)
    sso = web.current_sso()
    if pending is None:
        return render_template("oauth/expired.html"), 400
    if sso is None:
        return redirect(url_for("oauth.resume", pending_id=authz))
    form = ConsentForm()
    if form.validate_on_submit():
        if form.deny.data:
            web.drop_pending(authz)
            return authorization.create_authorization_response(request=grant.request, grant_user=None, grant=grant)
        grant_consent(db.session, sso.account_id, grant.client.client_id, grant.request.scope, now=web.now())
        db.session.commit()
        return redirect(url_for("oauth.resume", pending_id=authz))
    labels = [SCOPE_LABELS[s] for s in scope_to_list(grant.request.scope) or [] if s in SCOPE_LABELS]
    return render_template("consent/consent.html", form=form, client_name=grant.client.client_name, labels=labels)
