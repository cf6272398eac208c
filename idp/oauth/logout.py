"""Single logout: logout tokens (OpenID Connect Back-Channel Logout 1.0) and front-channel iframe URLs
(OpenID Connect Front-Channel Logout 1.0) for the relying parties that took part in an ended session.

How a logout reaches the relying parties: ``services.sessions.end_session`` notes each sid it ends on
the database session. ``init_logout`` listens for commits: the sids of a committed transaction go to a
small thread pool, so the request that ended the session never waits for a relying party, and a
transaction that rolled back notifies nobody. A job finds the clients that received a code or token
under that sid, signs one logout token per client with a ``backchannel_logout_uri`` and POSTs each
separately (``services.logout.deliver``: bounded timeout, retries), so one dead relying party delays
no other. Every way a session ends — «Выйти», RP-initiated logout, a timeout noticed when the browser
returns, a password change, an operator — goes through ``end_session`` and is covered.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from authlib.common.urls import add_params_to_uri
from flask import current_app
from flask import has_app_context
from joserfc import jwt
from sqlalchemy import event
from sqlalchemy import select

from ..extensions import db
from ..models import OAuth2Client
from ..models import SsoSession
from ..services import logout as delivery
from ..services import sessions
from ..services.tokens import new_secret
from . import keys

log = logging.getLogger(__name__)

EVENT = "http://schemas.openid.net/event/backchannel-logout"
# §2.4: exp SHOULD be short (the spec suggests at most two minutes); the token is used at once.
LOGOUT_TOKEN_TTL = 120
# A few threads for the whole process: deliveries wait on the network, not the CPU. Jobs queue
# behind a slow relying party rather than spawning threads without bound.
_EXECUTOR = ThreadPoolExecutor(max_workers=8, thread_name_prefix="idp-logout")


def logout_token(client: OAuth2Client, *, sid: str, sub: str, issuer: str, now: int) -> str:
    """§2.4: a JWT signed like the client's ID tokens, explicitly typed, with the logout event, sid
    and sub, and no nonce (so it can never pass for an ID token)."""
    alg = client.id_token_signed_response_alg
    key = keys.signing_key(alg)
    header = {"alg": alg, "typ": "logout+jwt", "kid": key.kid}
    claims = {
        "iss": issuer,
        "aud": client.client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL,
        "jti": new_secret(18),
        "sid": sid,
        "sub": sub,
        "events": {EVENT: {}},
    }
    return jwt.encode(header, claims, key, algorithms=[alg])


def frontchannel_frames(sid: str) -> list[str]:
    """The iframe URLs for the clients of an ended session that registered a front-channel logout URI,
    each with ``iss`` and ``sid`` (Front-Channel Logout §2, §3)."""
    issuer = current_app.config["SERVER_ISSUER"]
    return [
        add_params_to_uri(client.frontchannel_logout_uri, [("iss", issuer), ("sid", sid)])
        for client in sessions.session_clients(db.session, sid)
        if client.frontchannel_logout_uri
    ]


def init_logout(app) -> None:
    app.extensions["idp.logout"] = delivery.DeliverySettings(
        timeout=app.config["LOGOUT_BACKCHANNEL_TIMEOUT"], retries=app.config["LOGOUT_BACKCHANNEL_RETRIES"]
    )
    # One listener for every app: db.session is shared; each commit names its app through current_app.
    if not event.contains(db.session, "after_commit", _after_commit):
        event.listen(db.session, "after_commit", _after_commit)
        event.listen(db.session, "after_rollback", _after_rollback)


def _after_commit(session) -> None:
    sids = sessions.take_ended_sids(session)
    if sids and has_app_context() and "idp.logout" in current_app.extensions:
        _EXECUTOR.submit(_notify, current_app._get_current_object(), sids)


def _after_rollback(session) -> None:
    sessions.take_ended_sids(session)


def _notify(app, sids: list[str]) -> None:
    try:
        with app.app_context():
            settings = app.extensions["idp.logout"]
            messages = [message for sid in sids for message in _logout_tokens(sid)]
        for uri, token in messages:
            try:
                _EXECUTOR.submit(_deliver, uri, token, settings)
            except RuntimeError:
                # The interpreter is exiting (an `idp` command that ended sessions): deliver before it does.
                _deliver(uri, token, settings)
    except Exception:  # noqa: BLE001 - a background job has nobody to raise to
        log.exception("back-channel logout: could not prepare the logout tokens")


def _logout_tokens(sid: str) -> list[tuple[str, str]]:
    sso = db.session.scalar(select(SsoSession).filter_by(sid=sid))
    if sso is None:
        return []
    issuer, sub = current_app.config["SERVER_ISSUER"], sso.account.sub
    now = int(time.time())
    return [
        (client.backchannel_logout_uri, logout_token(client, sid=sid, sub=sub, issuer=issuer, now=now))
        for client in sessions.session_clients(db.session, sid)
        if client.backchannel_logout_uri
    ]


def _deliver(uri: str, token: str, settings: delivery.DeliverySettings) -> None:
    try:
        delivery.deliver(uri, token, settings=settings)
    except Exception:  # noqa: BLE001 - see _notify
        log.exception("back-channel logout to %s failed", uri)
