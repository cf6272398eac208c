"""Protocol endpoints: authorization, token, UserInfo, revocation, introspection, discovery, JWKS.

The authorization endpoint is the one with pages behind it: it validates with authlib, asks
``interaction.next_step`` what is missing, and sends the browser to that flow with the request parked.
"""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import Blueprint
from flask import Response
from flask import abort
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.datastructures import MultiDict

from .. import messages
from ..extensions import authorization
from ..extensions import csrf
from ..extensions import db
from ..oauth import dpop
from ..oauth import keys
from ..oauth import par
from ..oauth import response_modes
from ..oauth.cors import add_cors_headers
from ..oauth.discovery import metadata_document
from ..oauth.errors import json_endpoint
from ..oauth.errors import read_by_programs
from ..oauth.interaction import ParamsRequest
from ..oauth.interaction import Step
from ..oauth.interaction import next_step
from ..oauth.keys import Document
from ..oauth.openapi import document as openapi_document
from ..oauth.pending import PendingRequest
from ..oauth.pending import drop_pending
from ..oauth.pending import load_pending
from ..oauth.pending import new_pending
from ..oauth.pending import save_pending
from ..runtime import current
from ..services.consents import find_consent
from ..urls import issuer_path
from .sso import current_sso

bp = Blueprint("oauth", __name__)
bp.after_request(add_cors_headers)

STEP_ENDPOINTS = {
    Step.LOGIN: "login.login",
    Step.CONSENT: "consent.consent",
    Step.CHANGE_PASSWORD: "password.change",
}


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize():
    # OIDC Core §3.1.2.1: GET and POST both carry the request; a POST is form-encoded by the relying
    # party, not a form of ours (so no CSRF token).
    try:
        # RFC 9126 §4: a request_uri from /par stands for the pushed parameters, and only those.
        params, pushed_id = par.resolve(list(request.values.items(multi=True)))
    except OAuth2Error as error:
        return error_response(error)
    return proceed(new_pending(params, pushed_id=pushed_id))


@bp.route("/authorize/continue/<pending_id>")
def resume(pending_id: str):
    pending = load_pending(pending_id)
    if pending is None:
        return render_template("oauth/expired.html"), 400
    return proceed(pending)


def proceed(pending: PendingRequest):
    params = MultiDict(pending.params)
    oauth_request = ParamsRequest(request.method, request.url, request.headers, params)
    oauth_request.pushed = pending.pushed
    mode = response_modes.requested(params)
    # Issuing commits the code; any other step writes nothing and the request ends at once.
    sso = current_sso(caller_commits=True)
    try:
        grant = authorization.get_consent_grant(request=oauth_request, end_user=sso)
        needs_lookup = sso is not None and not grant.client.trusted
        consent = find_consent(db.session, sso.account_id, grant.client.client_id) if needs_lookup else None
        step = next_step(
            grant, sso=sso, consent=consent, started_at=pending.started_at, now=current().clock()
        )
        if step is not Step.ISSUE and not pending.fits():
            # A request that needs the user is parked in the session cookie, which has no room for it;
            # a pushed one (RFC 9126) is kept on the server instead, whatever its size.
            raise InvalidRequestError(
                "The authorization request is too large: push it to the PAR endpoint (RFC 9126).",
                redirect_uri=grant.redirect_uri,
                state=grant.request.payload.state,
            )
    except OAuth2Error as error:
        drop_pending(pending.id)
        return error_response(error, mode)
    if step is Step.ISSUE:
        drop_pending(pending.id)
        response = authorization.create_authorization_response(
            request=oauth_request, grant_user=sso, grant=grant
        )
        return response_modes.deliver(response, mode)
    save_pending(pending)
    if step is Step.LOGIN:
        # The form at once, in this response: a redirect to /login would cost every sign-in one more
        # request (issue 12). The form posts to /login?authz=…, which finds the request parked above.
        from .login import sign_in_page  # why: views.login imports proceed from this module

        return sign_in_page(pending)
    return redirect(url_for(STEP_ENDPOINTS[step], authz=pending.id))


def error_response(error: OAuth2Error, mode: str = response_modes.QUERY):
    """Send the error to the client, in the response mode it asked for, only when authlib validated its
    redirect_uri (RFC 6749 §4.1.2.1); otherwise explain on our own page."""
    response = authorization.error_redirect(error)
    if response is not None:
        return response_modes.deliver(response, mode)
    explanation = messages.OAUTH_ERRORS.get(error.error, messages.OAUTH_ERROR_DEFAULT)
    return render_template("oauth/error.html", error=error.error, explanation=explanation), 400


def parked_grant(pending_id: str):
    """Re-validate a parked request for a page that shows it (consent); None if it is gone or invalid."""
    pending = load_pending(pending_id or "")
    if pending is None:
        return None, None
    oauth_request = ParamsRequest("GET", request.url, request.headers, MultiDict(pending.params))
    oauth_request.pushed = pending.pushed
    try:
        return pending, authorization.get_consent_grant(request=oauth_request, end_user=current_sso())
    except OAuth2Error:
        return None, None


@bp.route("/token", methods=["POST"])
@csrf.exempt
@json_endpoint
def token():
    # RFC 9449 §8: with nonces required, every answer hands the client the next one.
    return dpop.attach_nonce(authorization.create_token_response())


@bp.route("/par", methods=["POST"])
@csrf.exempt
@json_endpoint
def par_endpoint():
    """Pushed authorization requests (RFC 9126); the path is discovery's
    pushed_authorization_request_endpoint."""
    if not current().settings.par.enabled:
        abort(404)
    # RFC 9449 §8: a DPoP proof may come with the push (§10.1), so its answer carries the next nonce.
    return dpop.attach_nonce(authorization.create_endpoint_response("pushed_authorization"))


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
@json_endpoint
def userinfo():
    return dpop.attach_nonce(authorization.create_endpoint_response("userinfo"))


@bp.route("/revoke", methods=["POST"])
@csrf.exempt
@json_endpoint
def revoke():
    return authorization.create_endpoint_response("revocation")


@bp.route("/introspect", methods=["POST"])
@csrf.exempt
@json_endpoint
def introspect():
    return dpop.attach_nonce(authorization.create_endpoint_response("introspection"))


@bp.route("/device/authorize", methods=["POST"])
@csrf.exempt
@json_endpoint
def device_authorize():
    """Device authorization endpoint (RFC 8628 §3.1)."""
    return authorization.create_endpoint_response("device_authorization")


@bp.route("/register", methods=["POST"])
@csrf.exempt
@json_endpoint
def register():
    """Dynamic client registration (RFC 7591), with an initial access token only."""
    return authorization.create_endpoint_response("client_registration")


@bp.route("/register/<client_id>", methods=["GET", "PUT", "DELETE"])
@csrf.exempt
@json_endpoint
def client_configuration(client_id: str):
    """Client configuration (RFC 7592), with the client's registration access token."""
    return authorization.create_endpoint_response("client_configuration")


@bp.route("/.well-known/openid-configuration")
@read_by_programs
def discovery():
    # OIDC Discovery 1.0 §4: the issuer followed by /.well-known/openid-configuration, and only there.
    _under_the_issuer()
    return _cacheable(metadata_document())


@bp.route("/.well-known/oauth-authorization-server")
@read_by_programs
def authorization_server_metadata_document():
    # RFC 8414 §3: the OAuth 2.0 metadata of the same issuer, for OAuth clients that do not read OIDC's
    # (discovery.authorization_server_metadata: the same document). For an issuer with a path this is the
    # OIDC-style address (issuer + /.well-known/...) that some OAuth libraries use too.
    _under_the_issuer()
    return _cacheable(metadata_document())


@bp.route("/.well-known/oauth-authorization-server/<path:path>")
@read_by_programs
def authorization_server_metadata_of_path(path: str):
    """RFC 8414 §3.1: the metadata of an issuer with a path (https://host/idp) is at the host's root, the
    well-known part inserted before the path: /.well-known/oauth-authorization-server/idp."""
    if request.script_root or "/" + path != issuer_path(current().settings.server.issuer):
        abort(404)
    return _cacheable(metadata_document())


def _under_the_issuer() -> None:
    # A metadata document names its issuer, so it is served at the address built from that issuer only:
    # under an issuer with a path, not at the host's root (RFC 8414 §3.3: the issuer must match).
    if request.script_root != issuer_path(current().settings.server.issuer):
        abort(404)


@bp.route("/openapi.json")
@read_by_programs
def openapi():
    """OpenAPI 3.1 description of the JSON endpoints (idp/oauth/openapi.py)."""
    return jsonify(openapi_document())


@bp.route("/jwks.json")
@read_by_programs
def jwks():
    return _cacheable(keys.cache().jwks_document())


def _cacheable(document: Document) -> Response:
    """The document's precomputed bytes, or 304 when the client holds them already (RFC 9110 §13.1.2):
    relying parties and caches revalidate with If-None-Match once max-age has passed."""
    headers = {
        "ETag": f'"{document.etag}"',
        "Cache-Control": f"public, max-age={current().settings.keys.jwks_max_age}",
    }
    if "If-None-Match" in request.headers and request.if_none_match.contains(document.etag):
        return Response(status=304, headers=headers)
    return Response(document.body, mimetype="application/json", headers=headers)
