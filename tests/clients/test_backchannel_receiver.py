"""The receiving end of back-channel logout in the demo relying parties (clients/oidc.py): every check
of Back-Channel Logout §2.6, the answer of §2.8, and which local sessions end (§2.7). Tokens are signed
with the live provider's own keys, so only the claim or header under test is wrong."""

from __future__ import annotations

import secrets
import time

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select

from idp.extensions import db
from idp.models import OAuth2Client
from idp.oauth import keys
from idp.oauth.logout import EVENT
from idp.oauth.logout import logout_token

from ..live import http_session


def _signed(live_server, registration: dict, *, header: dict | None = None, key=None, drop=(), **claims):
    now = int(time.time())
    body = {
        "iss": live_server.url,
        "aud": registration["client_id"],
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(12),
        "sid": "sid-1",
        "sub": "sub-1",
        "events": {EVENT: {}},
    }
    body.update(claims)
    for name in drop:
        body.pop(name)
    with live_server.app.app_context():
        signing = key or keys.cache().signing_key((header or {}).get("alg", "RS256"))
        head = {"alg": "RS256", "typ": "logout+jwt", "kid": signing.kid, **(header or {})}
        return jwt.encode(head, body, signing, algorithms=[head["alg"]])


def _post(running, token: str):
    with http_session() as http:
        return http.post(running.url + "/backchannel-logout", data={"logout_token": token}, timeout=10)


def _sessions(running):
    store = running.rp.store
    return [
        store.create(sid="sid-1", sub="sub-1", token={}),
        store.create(sid="sid-2", sub="sub-1", token={}),
        store.create(sid="sid-3", sub="sub-2", token={}),
    ]


def _alive(running, sessions) -> list[bool]:
    return [running.rp.store.get(local.id) is not None for local in sessions]


def test_the_providers_logout_token_ends_the_session_with_its_sid(live_server, demo_rps):
    running = demo_rps.cabinet
    sessions = _sessions(running)
    with live_server.app.app_context():
        row = db.session.scalar(select(OAuth2Client).filter_by(client_id=running.registration["client_id"]))
        token = logout_token(row, sid="sid-1", sub="sub-1", issuer=live_server.url, now=int(time.time()))
    response = _post(running, token)
    # §2.8: 200, not cached.
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert _alive(running, sessions) == [False, True, True]
    # §2.6 step 8: the same token again is refused.
    replay = _post(running, token)
    assert replay.status_code == 400 and "jti" in replay.json()["error_description"]


def test_a_token_with_sub_only_ends_every_session_of_that_user(live_server, demo_rps):
    running = demo_rps.portal
    sessions = _sessions(running)
    response = _post(running, _signed(live_server, running.registration, drop=("sid",)))
    assert response.status_code == 200
    assert _alive(running, sessions) == [False, False, True]


def test_a_session_created_after_its_logout_is_dead(live_server, demo_rps):
    # A sign-in that raced the logout: the logout token came first.
    running = demo_rps.cabinet
    assert _post(running, _signed(live_server, running.registration, sid="sid-late")).status_code == 200
    late = running.rp.store.create(sid="sid-late", sub="sub-1", token={})
    assert running.rp.store.get(late.id) is None


def _foreign_key():
    return RSAKey.generate_key(2048, parameters={"alg": "RS256"}, auto_kid=True)


def _refused() -> dict:
    """Each way a token can fail, with times taken now (the suite may run long past collection)."""
    now = int(time.time())
    return {
        "foreign key": dict(key="foreign"),
        "registered alg is RS256": dict(header={"alg": "ES256"}),
        "typ JWT": dict(header={"typ": "JWT"}),
        "wrong iss": dict(iss="https://other-issuer.example"),
        "wrong aud": dict(aud="another-client"),
        "expired": dict(exp=now - 600, iat=now - 700),
        "issued in the future": dict(iat=now + 600),
        "no exp": dict(drop=("exp",)),
        "no iat": dict(drop=("iat",)),
        "no jti": dict(drop=("jti",)),
        "no events": dict(drop=("events",)),
        "another event": dict(events={"http://schemas.openid.net/event/other": {}}),
        "event not an object": dict(events={EVENT: "yes"}),
        "nonce": dict(nonce="n-1"),
        "neither sid nor sub": dict(drop=("sid", "sub")),
    }


def test_a_token_failing_any_check_is_refused_and_ends_nothing(live_server, demo_rps):
    running = demo_rps.cabinet
    sessions = _sessions(running)
    wrong = []
    for case, options in _refused().items():
        options = dict(options)
        if options.get("key") == "foreign":
            options["key"] = _foreign_key()
        response = _post(running, _signed(live_server, running.registration, **options))
        # §2.8: 400, with an error in the body, not cached.
        refused = response.status_code == 400 and response.json()["error"] == "invalid_request"
        if not refused or response.headers.get("Cache-Control") != "no-store":
            wrong.append((case, response.status_code, response.text))
    assert wrong == []
    assert _alive(running, sessions) == [True, True, True]


@pytest.mark.parametrize("body", [{}, {"logout_token": ""}, {"logout_token": "not.a.jwt"}])
def test_a_request_without_a_usable_token_is_refused(demo_rps, body):
    with http_session() as http:
        response = http.post(demo_rps.cabinet.url + "/backchannel-logout", data=body, timeout=10)
    assert response.status_code == 400
