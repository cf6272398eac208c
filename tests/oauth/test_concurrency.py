"""Races at the token endpoint, over real HTTP against the threaded live server, so the requests meet in
the database (SQLite or PostgreSQL) as they would in production:

* one authorization code redeemed by many clients at once is honoured once (RFC 6749 §4.1.2);
* one refresh token used many times at once rotates at most once, and the replays end the family
  (RFC 9700 §4.14.2).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

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
    url = live_server.url + "/authorize?" + "&".join([
        f"response_type=code&client_id={rp['client_id']}&redirect_uri={REDIRECT_URI}",
        "scope=openid%20offline_access&state=s&nonce=n",
        f"code_challenge={challenge}&code_challenge_method=S256",
    ])
    with http_session() as browser:
        done = sign_in(browser, live_server.url, url, account["login"], account["password"])
    assert done.status_code == 302, done.text
    code = query(done.headers["Location"])["code"]
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}, (rp["client_id"], rp["client_secret"])


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
            resp = http.post(live_server.url + "/token", data={
                "grant_type": "refresh_token", "refresh_token": body["refresh_token"],
            }, auth=auth, timeout=10)
            assert (resp.status_code, resp.json()["error"]) == (400, "invalid_grant")
