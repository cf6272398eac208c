"""Sign-out: our own «Выйти» and RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)."""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from flask import Blueprint
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField
from wtforms import SubmitField

from ..extensions import authorization
from ..extensions import csrf
from ..headers import allow_frames
from ..oauth.logout import frontchannel_frames
from ..oauth.subjects import subject
from .sso import current_sso
from .sso import end_sso

bp = Blueprint("logout", __name__, url_prefix="/logout")

FORWARDED = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "logout_hint", "ui_locales")
# With front-channel logout iframes on the page, the redirect to the relying party waits this long
# (seconds) so that they can load; the page also has a link to go on at once.
FRONTCHANNEL_WAIT = 2


class LogoutForm(FlaskForm):
    id_token_hint = HiddenField()
    client_id = HiddenField()
    post_logout_redirect_uri = HiddenField()
    state = HiddenField()
    logout_hint = HiddenField()
    ui_locales = HiddenField()
    submit = SubmitField(_l("Выйти"))


@bp.route("", methods=["GET", "POST"])
@csrf.exempt
def end_session():
    """The end_session_endpoint. rpinitiated §2: GET and POST. Exempt from CSRF because relying
    parties POST here; nothing ends without a valid id_token_hint or the user's confirmation."""
    try:
        end_request = authorization.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        # rpinitiated §4: on an error the OP MUST NOT redirect.
        return render_template(
            "oauth/error.html", error=error.error, description=error.get_error_description()
        ), 400
    sso = current_sso()
    if sso is None:
        return _finish(end_request)
    if end_request.needs_confirmation or end_request.id_token_claims.get("sub") != subject(
        sso.account, end_request.client
    ):
        form = LogoutForm(data={k: request.values.get(k, "") for k in FORWARDED})
        return render_template("logout/confirm.html", form=form, client=end_request.client)
    return _finish(end_request)


@bp.route("/confirm", methods=["POST"])
def confirm():
    form = LogoutForm()
    if not form.validate_on_submit():
        return render_template("logout/confirm.html", form=form, client=None), 400
    try:
        end_request = authorization.validate_endpoint_request("end_session")
    except OAuth2Error:
        end_request = None
    return _finish(end_request)


def _finish(end_request):
    sid = end_sso()
    # authlib matched it exactly against the client's post_logout_redirect_uris (rpinitiated §3).
    continue_url = end_request.redirect_uri if end_request is not None else None
    # Front-Channel Logout §3: the page that ends the session loads each taking-part RP's logout URI.
    frames = frontchannel_frames(sid) if sid else []
    if continue_url and not frames:
        return redirect(continue_url)
    page = render_template(
        "logout/done.html", frames=frames, continue_url=continue_url, wait=FRONTCHANNEL_WAIT
    )
    return allow_frames(make_response(page), frames)
