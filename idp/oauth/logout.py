"""Single logout: logout tokens (OpenID Connect Back-Channel Logout 1.0) and front-channel iframe URLs
(OpenID Connect Front-Channel Logout 1.0) for the relying parties that took part in an ended session.

How a logout reaches the relying parties: every way a session ends — «Выйти», RP-initiated logout, a
timeout (noticed when the browser returns, or by the sweep of ``idp.background``), a password change,
an operator — goes through ``services.sessions.end_session``, which emits ``events.SessionEnded`` with
its database session. ``create_app`` subscribes ``BackchannelLogout.session_ended``: in that same
transaction it writes one outbox message (``services.outbox``, kind ``backchannel_logout``) per client
that received a code or token under that sid and registered a ``backchannel_logout_uri``. A rolled-back
ending writes nothing; a committed one is delivered by the server processes, with retries and backoff,
even across restarts, and the request that ended the session never waits for a relying party.

The message holds the claims only (iss, aud, sub, sid, jti), never a token: ``deliver_backchannel``
signs the logout token just before each attempt, with the client's ID token algorithm and the keys of
that moment, and POSTs it through the app's outbound client (``services.logout.post``).
"""

from __future__ import annotations

from authlib.common.urls import add_params_to_uri
from joserfc import jwt
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..crypto import new_secret
from ..errors import OutboxRefusedError
from ..events import SessionEnded
from ..extensions import db
from ..models import Account
from ..models import OAuth2Client
from ..runtime import current
from ..services import logout as delivery
from ..services import outbox
from ..services import sessions
from . import keys
from .subjects import subject

EVENT = "http://schemas.openid.net/event/backchannel-logout"
# §2.4: exp SHOULD be short (the spec suggests at most two minutes); the token is used at once.
LOGOUT_TOKEN_TTL = 120
# The outbox kind of a back-channel logout delivery.
KIND = "backchannel_logout"


def logout_token(
    client: OAuth2Client, *, sid: str, sub: str, issuer: str, now: int, jti: str | None = None
) -> str:
    """§2.4: a JWT signed like the client's ID tokens, explicitly typed, with the logout event, sid
    and sub, and no nonce (so it can never pass for an ID token)."""
    alg = client.id_token_signed_response_alg
    key = keys.cache().signing_key(alg)
    header = {"alg": alg, "typ": "logout+jwt", "kid": key.kid}
    claims = {
        "iss": issuer,
        "aud": client.client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL,
        "jti": jti or new_secret(18),
        "sid": sid,
        "sub": sub,
        "events": {EVENT: {}},
    }
    return jwt.encode(header, claims, key, algorithms=[alg])


def frontchannel_frames(sid: str) -> list[str]:
    """The iframe URLs for the clients of an ended session that registered a front-channel logout URI,
    each with ``iss`` and ``sid`` (Front-Channel Logout §2, §3)."""
    issuer = current().settings.server.issuer
    return [
        add_params_to_uri(client.frontchannel_logout_uri, [("iss", issuer), ("sid", sid)])
        for client in sessions.session_clients(db.session, sid)
        if client.frontchannel_logout_uri
    ]


class BackchannelLogout:
    """The subscriber of ``SessionEnded``: one outbox message per relying party to tell."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def session_ended(self, session: Session, ended: SessionEnded) -> None:
        account = session.get(Account, ended.account_id)
        if account is None:
            return
        for client in sessions.session_clients(session, ended.sid):
            if client.backchannel_logout_uri:
                claims = {
                    "iss": self.issuer,
                    "aud": client.client_id,
                    "sub": subject(account, client),
                    "sid": ended.sid,
                    # Kept from the first attempt to the last: a repeat (at-least-once delivery) is
                    # recognisable by the relying party (§2.6 step 8).
                    "jti": new_secret(18),
                }
                outbox.enqueue(session, KIND, claims, now=ended.at)


def outbox_gauges() -> dict[str, float]:
    """The back-channel part of the outbox for /metrics, read at each scrape (``idp.metrics``)."""
    try:
        found = outbox.counts(db.session, now=current().clock(), kind=KIND)
    except SQLAlchemyError:
        # The database is down: /metrics still answers, without these gauges (/readyz says why).
        db.session.rollback()
        return {}
    return {
        "idp_backchannel_logout_pending": found["pending"],
        "idp_backchannel_logout_oldest_age_seconds": found["oldest_pending_age"],
    }


def deliver_backchannel(session: Session, claims: dict) -> None:
    """The outbox handler of ``backchannel_logout``: sign the logout token now, POST it once."""
    client = session.scalar(select(OAuth2Client).filter_by(client_id=claims["aud"]))
    if client is None or not client.enabled or not client.backchannel_logout_uri:
        raise OutboxRefusedError(
            f"client {claims['aud']} was deleted, disabled or no longer has a back-channel logout URI"
        )
    uri = client.backchannel_logout_uri
    now = current().clock()
    token = logout_token(
        client, sid=claims["sid"], sub=claims["sub"], issuer=claims["iss"], now=now, jti=claims["jti"]
    )
    # Nothing more to read: no database connection is held while the relying party answers.
    session.rollback()
    delivery.post(uri, token, client=current().outbound)
