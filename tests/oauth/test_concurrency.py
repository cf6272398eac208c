"""Races at the token endpoint, over real HTTP against the threaded live server, so the requests meet in
the database (SQLite or PostgreSQL) as they would in production:

* one authorization code redeemed by many clients at once is honoured once (RFC 6749 §4.1.2);
* one refresh token used many times at once rotates at most once, and the replays end the family
  (RFC 9700 §4.14.2);
* introspections of different tokens at once are each answered about their own token (RFC 7662).
"""

from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from idp.crypto import digest
from idp.extensions import db
from idp.models import Token

from ..helpers import pkce_pair
from ..helpers import query
from ..live import http_session
from ..live import sign_in

REDIRECT_URI = "https://rp.example/cb"


def _race(count: int, url: str, data: dict, auth) -> list[tuple[int, dict]]:
    """POST the same form ``count`` times at once, each from its own connection."""
    barrier = threading.Barrier(count, timeout=20)

    def one(_):
        with http_session() as session:
            barrier.wait()
            resp = session.post(url, data=data, auth=auth, timeout=60)
            return resp.status_code, resp.json()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def _tokens_from_code(live_server, account, rp) -> tuple[dict, tuple[str, str]]:
    verifier, challenge = pkce_pair()
    url = (
        live_server.url
        + "/authorize?"
        + "&".join(
            [
                f"response_type=code&client_id={rp['client_id']}&redirect_uri={REDIRECT_URI}",
                "scope=openid%20offline_access&state=s&nonce=n",
                f"code_challenge={challenge}&code_challenge_method=S256",
            ]
        )
    )
    with http_session() as browser:
        done = sign_in(browser, live_server.url, url, account["login"], account["password"])
    assert done.status_code == 302, done.text
    code = query(done.headers["Location"])["code"]
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }, (rp["client_id"], rp["client_secret"])


def _introspect(http, live_server, auth, token: str) -> bool:
    resp = http.post(live_server.url + "/introspect", data={"token": token}, auth=auth, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["active"]


def test_parallel_code_redemption_succeeds_once(live_server, account, rp):
    form, auth = _tokens_from_code(live_server, account, rp)
    results = _race(20, live_server.url + "/token", form, auth)

    winners = [body for status, body in results if status == 200]
    losers = [(status, body.get("error")) for status, body in results if status != 200]
    assert len(winners) == 1, results
    assert losers == [(400, "invalid_grant")] * 19, losers
    issued = winners[0]
    assert issued["access_token"] and issued["refresh_token"]
    with http_session() as http:
        # The claim commits with the tokens, so every racing replay saw them and revoked them.
        assert not _introspect(http, live_server, auth, issued["access_token"])
        assert not _introspect(http, live_server, auth, issued["refresh_token"])
        # The code stays spent; one more try is a replay too.
        resp = http.post(live_server.url + "/token", data=form, auth=auth, timeout=10)
        assert (resp.status_code, resp.json()["error"]) == (400, "invalid_grant")
        assert not _introspect(http, live_server, auth, issued["access_token"])
        assert not _introspect(http, live_server, auth, issued["refresh_token"])


# Without the refresh-token grace: a retry moments after a rotation is no reuse (tests/oauth/test_refresh.py).
@pytest.mark.config(oauth={"refresh_grace": 0})
def test_parallel_refresh_rotates_at_most_once_and_ends_the_family(live_server, account, rp):
    form, auth = _tokens_from_code(live_server, account, rp)
    with http_session() as http:
        resp = http.post(live_server.url + "/token", data=form, auth=auth, timeout=10)
        assert resp.status_code == 200, resp.text
        first = resp.json()
        refresh_form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}

        results = _race(10, live_server.url + "/token", refresh_form, auth)

        winners = [body for status, body in results if status == 200]
        losers = [(status, body.get("error")) for status, body in results if status != 200]
        assert len(winners) <= 1, results
        assert losers == [(400, "invalid_grant")] * (10 - len(winners)), losers
        # Every replay that lost is a theft signal: nothing of the family may still work, including
        # what the winner received.
        family = [first["access_token"], first["refresh_token"]]
        for body in winners:
            assert body["refresh_token"] != first["refresh_token"]
            family += [body["access_token"], body["refresh_token"]]
        assert [token for token in family if _introspect(http, live_server, auth, token)] == []
        for access_token in family[::2]:
            resp = http.get(
                live_server.url + "/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
            )
            assert resp.status_code == 401
        for body in winners:
            resp = http.post(
                live_server.url + "/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": body["refresh_token"],
                },
                auth=auth,
                timeout=10,
            )
            assert (resp.status_code, resp.json()["error"]) == (400, "invalid_grant")


def test_concurrent_introspections_each_answer_their_own_token(live_server, account, rp):
    """The introspection endpoint is one object shared by every request (authlib registers one per
    server): two requests at once, one presenting an access token and one a refresh token, must each be
    answered about the string they presented (RFC 7662 §2.2)."""
    tokens = _issue_tokens(live_server, account, rp, count=6)
    auth = (rp["client_id"], rp["client_secret"])
    cases = [(row, kind) for row in tokens for kind in ("access_token", "refresh_token")] * 12

    def ask(case):
        row, kind = case
        with http_session() as http:
            resp = http.post(
                live_server.url + "/introspect", data={"token": row[kind]}, auth=auth, timeout=30
            )
        return case, resp.status_code, resp.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, cases))
    wrong = []
    for (row, kind), status, body in answers:
        expected = {
            "active": True,
            "scope": row["scope"],
            "token_type": "Bearer" if kind == "access_token" else "refresh_token",
            "exp": row["access_exp"] if kind == "access_token" else row["refresh_exp"],
        }
        if status != 200 or {key: body.get(key) for key in expected} != expected:
            wrong.append((kind, row["scope"], status, body))
    assert wrong == [], wrong[:3]


def _issue_tokens(live_server, account, rp, count: int) -> list[dict]:
    """``count`` token rows of ``rp`` for ``account``, each with its own scope, access and refresh token."""
    rows = []
    with live_server.app.app_context():
        now = int(time.time())
        for number in range(count):
            access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            scope = f"openid s{number}"
            db.session.add(
                Token(
                    client_id=rp["client_id"],
                    account_id=account["id"],
                    access_token_hash=digest(access),
                    refresh_token_hash=digest(refresh),
                    scope=scope,
                    issued_at=now,
                    expires_in=600 + number,
                    refresh_expires_at=now + 3600 + number,
                    family_id=secrets.token_urlsafe(12),
                )
            )
            rows.append(
                {
                    "access_token": access,
                    "refresh_token": refresh,
                    "scope": scope,
                    "access_exp": now + 600 + number,
                    "refresh_exp": now + 3600 + number,
                }
            )
        db.session.commit()
    return rows
