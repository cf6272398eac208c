"""Consent: the user allows a non-trusted client to receive the requested claims (OIDC Core §3.1.2.4)."""

from __future__ import annotations

from urllib.parse import urlsplit

import idna
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
from ..oauth import response_modes
from ..oauth.claims import consent_scope
from ..oauth.pending import drop_pending
from ..runtime import current
from ..services import audit
from ..services.consents import grant_consent
from ..services.net import is_loopback
from .oauth import parked_grant
from .sso import current_sso

bp = Blueprint("consent", __name__, url_prefix="/consent")

SCOPE_LABELS = {
    "openid": _l("Подтверждение вашей личности"),
    "profile": _l("Фамилия, имя, отчество"),
    "phone": _l("Номер телефона"),
    "email": _l("Адрес электронной почты"),
    "patent": _l("Номер заявления на патент"),
    "offline_access": _l("Доступ к этим данным, пока вы не выйдете из кабинета"),
}


# Who is asking: the name is the client's own choice, so the page also says where the answer goes
# and who registered the client (issue 10: a self-registered «Личный кабинет…» must not pass for ours).
REGISTERED_BY_ADMIN = _l("администратором")
REGISTERED_DYNAMICALLY = _l("самостоятельно, администратор его не проверял")
SELF_NAMED_WARNING = _l(
    "Название сайт указал сам. Разрешайте, только если вы пришли сюда с сайта %(host)s и доверяете ему."
)
ON_THIS_DEVICE = _l("%(host)s — приложение на этом устройстве")
# The device grant has no redirect URI to show; a self-named client there is the shape of device-code
# phishing (a code sent to the victim, the attacker's device polling), so the person is asked whether
# they began the sign-in themselves.
SELF_NAMED_DEVICE_WARNING = _l(
    "Название сайт указал сам. Разрешайте, только если вход на этом устройстве начали вы сами."
)


def registered_by(client) -> str:
    """Who registered ``client``, as the consent and device pages say it."""
    return REGISTERED_DYNAMICALLY if client.dynamically_registered else REGISTERED_BY_ADMIN


class ConsentForm(FlaskForm):
    allow = SubmitField(_l("Разрешить"))
    deny = SubmitField(_l("Отказать"))


@bp.route("/", methods=["GET", "POST"])
def consent():
    authz = request.args.get("authz", "")
    pending, grant = parked_grant(authz)
    sso = current_sso()
    if pending is None:
        return render_template("oauth/expired.html"), 400
    if sso is None:
        return redirect(url_for("oauth.resume", pending_id=authz))
    form = ConsentForm()
    if form.validate_on_submit():
        # Only an explicit «Разрешить» allows (issue 10): a POST with neither button, or both, denies.
        if form.deny.data or not form.allow.data:
            ctx = audit.Context(audit.Actor.account(sso.account), request.remote_addr, current().clock())
            client_id = grant.client.client_id
            audit.record(db.session, ctx, "consent.denied", account_id=sso.account_id, client_id=client_id)
            db.session.commit()
            drop_pending(authz)
            response = authorization.create_authorization_response(
                request=grant.request, grant_user=None, grant=grant
            )
            return response_modes.deliver(response, response_modes.requested(grant.request.payload.data))
        now = current().clock()
        scope = consent_scope(grant)
        grant_consent(db.session, sso.account_id, grant.client.client_id, scope, now=now)
        ctx = audit.Context(audit.Actor.account(sso.account), request.remote_addr, now)
        audit.record(
            db.session,
            ctx,
            "consent.granted",
            account_id=sso.account_id,
            client_id=grant.client.client_id,
            details={"scope": scope},
        )
        db.session.commit()
        return redirect(url_for("oauth.resume", pending_id=authz))
    labels = [SCOPE_LABELS[s] for s in scope_to_list(consent_scope(grant)) or [] if s in SCOPE_LABELS]
    client, host = grant.client, _shown_host(grant.redirect_uri)
    return render_template(
        "consent/consent.html",
        form=form,
        client_name=client.client_name,
        labels=labels,
        host=ON_THIS_DEVICE % {"host": host} if is_loopback(host) else host,
        registered_by=registered_by(client),
        warning=SELF_NAMED_WARNING % {"host": host} if client.dynamically_registered else None,
    )


def _shown_host(redirect_uri: str) -> str:
    """The redirect URI's host as a person reads it, with its ASCII form when that differs, so that
    a look-alike Unicode name (кабинет.рф in Latin letters, say) shows what it really is."""
    host = urlsplit(redirect_uri).hostname or ""
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
        unicode_host = idna.decode(ascii_host)
    except idna.IDNAError:
        return host
    return unicode_host if unicode_host == ascii_host else f"{unicode_host} ({ascii_host})"
