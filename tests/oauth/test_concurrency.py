"""Races at the token endpoint, over real HTTP against the threaded live server, so the requests meet in
the database (SQLite or PostgreSQL) as they would in production:

* one authorization code redeemed by many clients at once is honoured once (RFC 6749 §4.1.2);
* one refresh token used many times at once rotates at most once, and the replays end the family
  (RFC 9700 §4.14.2);
* introspections of different tokens at once are each answered about their own token (RFC 7662);
* so is every other endpoint that is one object shared by all requests: UserInfo (OIDC Core §5.3),
  revocation (RFC 7009) and client_credentials at the token endpoint (RFC 6749 §4.4). Nothing of one
  request may live on such an object: requests of different accounts, tokens and clients are sent in
  rounds, each round's requests released together by a barrier, and every answer is checked.
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from idp.crypto import digest
from idp.extensions import db
from idp.models import Account
from idp.models import Token
from idp.oauth import storage
from idp.oauth.subjects import subject

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


def test_concurrent_introspections_each_answer_their_own_token(_switch_often, live_server, account, rp):
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


# Eight accounts, each with its own names, phone and login: an answer about the wrong one shows.
_PEOPLE = [
    ("Рахимов", "Алишер"),
    ("Каримов", "Бахром"),
    ("Юсупов", "Дилшод"),
    ("Назаров", "Фарход"),
    ("Саидов", "Жасур"),
    ("Турсунов", "Рустам"),
    ("Алиев", "Шерзод"),
    ("Исмоилов", "Тимур"),
]
# What UserInfo releases for each scope (OIDC Core §5.4), besides the sub.
_USERINFO_SCOPES = {
    "openid profile": ("family_name", "given_name", "name", "locale", "updated_at"),
    "openid phone": ("phone_number", "phone_number_verified"),
    "openid patent": ("patent_application_number",),
    "openid profile phone patent": (
        "family_name",
        "given_name",
        "name",
        "locale",
        "updated_at",
        "phone_number",
        "phone_number_verified",
        "patent_application_number",
    ),
}
_WIDTH = 8  # requests in the server at once


@pytest.fixture
def _switch_often():
    """Threads of this process (the live server's and the test's) switch every microsecond rather than
    every 5 ms (CPython's default), so that a request is interrupted between any two steps: a value of one
    request kept on a shared object between two steps, even without a query in between, is then
    overwritten by another request within a few hundred requests."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _in_rounds(cases: list, ask, width: int = _WIDTH) -> list[tuple]:
    """``(case, ask(http, case))`` for every case, ``width`` requests at a time: a barrier releases each
    round's requests together, each on its own connection, so that they are in the server at once."""
    assert len(cases) % width == 0, "a round short of requests would never pass the barrier"
    barrier = threading.Barrier(width, timeout=20)

    def one(case):
        with http_session() as http:
            barrier.wait()
            return case, ask(http, case)

    answers: list[tuple] = []
    with ThreadPoolExecutor(max_workers=width) as pool:
        for start in range(0, len(cases), width):
            answers += pool.map(one, cases[start : start + width])
    return answers


def _all(cases: list, ask) -> list[tuple]:
    """``(case, ask(http, case))`` for every case, as fast as the server answers: the checks afterwards,
    on one kept-alive connection per thread."""
    local = threading.local()
    sessions = []

    def one(case):
        if not hasattr(local, "http"):
            local.http = http_session()
            sessions.append(local.http)
        return case, ask(local.http, case)

    try:
        with ThreadPoolExecutor(max_workers=_WIDTH) as pool:
            return list(pool.map(one, cases))
    finally:
        for http in sessions:
            http.close()


def test_concurrent_userinfo_requests_each_answer_their_own_account(
    _switch_often, live_server, make_account, rp, make_rp
):
    """The UserInfo endpoint and its resource protector are shared by every request, and the claims are
    built from the token the protector validated for this request (``generate_user_info``): requests at
    once with the access tokens of different accounts, of a public and a pairwise client, with different
    scopes, must each get their own account's sub (OIDC Core §8, per client) and claims (§5.3.2)."""
    pairwise = make_rp(name="Портал", subject_type="pairwise")
    people = [
        make_account(
            login=f"77-00001{number:02d}",
            phone=f"+791612300{number:02d}",
            surname=surname,
            given_name=given_name,
            middle_name=None,
        )
        for number, (surname, given_name) in enumerate(_PEOPLE)
    ]
    scopes = list(_USERINFO_SCOPES)
    specs = [
        (client, person, scopes[(number + side) % len(scopes)])
        for number, person in enumerate(people)
        for side, client in enumerate((rp, pairwise))
    ]
    rows = _store_tokens(live_server, specs)
    with live_server.app.app_context():
        for row in rows:
            person = db.session.get(Account, row["account"]["id"])
            claims = {
                "sub": subject(person, storage.query_client(row["client"]["client_id"])),
                "family_name": person.surname,
                "given_name": person.given_name,
                "name": person.full_name,
                "locale": person.locale,
                "updated_at": person.updated_at,
                "phone_number": person.phone,
                "phone_number_verified": True,
                "patent_application_number": person.login,
            }
            row["userinfo"] = {name: claims[name] for name in ("sub", *_USERINFO_SCOPES[row["scope"]])}
    # The pairwise client sees other subs than the public one: a mixed-up client shows as well.
    assert len({row["userinfo"]["sub"] for row in rows}) == len(rows)

    def ask(http, row):
        resp = http.get(
            live_server.url + "/userinfo",
            headers={"Authorization": f"Bearer {row['access_token']}"},
            timeout=30,
        )
        return resp.status_code, resp.json()

    # Each round has the requests of four accounts, with the tokens of both clients: 512 in all.
    answers = _in_rounds([row for _ in range(32) for row in rows], ask)
    wrong = [
        (row["userinfo"], status, body)
        for row, (status, body) in answers
        if (status, body) != (200, row["userinfo"])
    ]
    assert wrong == [], (len(wrong), wrong[:3])


def test_concurrent_revocations_each_revoke_their_own_token(
    _switch_often, live_server, account, make_account, rp, make_rp
):
    """The revocation endpoint is shared by every request, and what it revokes depends on the string
    presented (RFC 7009 §2.1: a refresh token takes its grant's access tokens with it, an access token
    goes alone). Revocations at once of different tokens of two clients, access and refresh tokens mixed,
    must each revoke exactly their own: afterwards introspection finds inactive exactly what was revoked,
    and active every token of a control set that nobody revoked."""
    other = make_rp(name="Портал")
    someone = make_account(login="77-0000201", phone="+79161230201")
    # Sixteen revocations a round, of both clients' access and refresh tokens; a control set untouched.
    rounds, width = 10, 16
    owners = [(rp, account), (other, someone)]
    revoked = _store_tokens(live_server, [(*owners[n % 2], f"openid r{n}") for n in range(rounds * width)])
    control = _store_tokens(live_server, [(*owners[n % 2], f"openid c{n}") for n in range(32)])
    for number, row in enumerate(revoked):
        row["revoke"] = ("access_token", "refresh_token")[number // 2 % 2]
    for row in control:
        row["revoke"] = None

    def revoke(http, row):
        client = row["client"]
        resp = http.post(
            live_server.url + "/revoke",
            data={"token": row[row["revoke"]]},
            auth=(client["client_id"], client["client_secret"]),
            timeout=30,
        )
        return resp.status_code

    statuses = [status for _, status in _in_rounds(revoked, revoke, width)]
    assert statuses == [200] * len(revoked)

    def introspect(http, case):
        row, kind = case
        client = row["client"]
        resp = http.post(
            live_server.url + "/introspect",
            data={"token": row[kind]},
            auth=(client["client_id"], client["client_secret"]),
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["active"]

    def expected(row, kind):
        # A revoked refresh token ends its access token too; a revoked access token leaves the refresh.
        return row["revoke"] is None or (row["revoke"] == "access_token" and kind == "refresh_token")

    cases = [(row, kind) for row in revoked + control for kind in ("access_token", "refresh_token")]
    wrong = [
        (row["scope"], row["revoke"], kind, active)
        for (row, kind), active in _all(cases, introspect)
        if active != expected(row, kind)
    ]
    assert wrong == [], (len(wrong), wrong[:5])


def test_concurrent_client_credentials_each_get_their_own_token(_switch_often, live_server, make_rp):
    """client_credentials at /token is answered by the app's one authorization server, its token
    generator and grant extensions, in front of Flask (``read_front``): requests at once of different
    clients, each asking for its own scopes, must each get a token issued to themselves (RFC 6749 §4.4.3),
    which introspection names with their client_id and scope (RFC 7662 §2.2)."""
    extra = ["profile", "phone", "email", "patent"]
    rounds, width = 12, 16
    clients = []
    for number in range(width):
        # Its own subset of the four scopes (1..15 as bits), but for the last, which repeats the first.
        scope = " ".join(name for bit, name in enumerate(extra) if (number % 15 + 1) >> bit & 1)
        client = make_rp(name=f"Сервис {number}", scope=f"openid {scope}", grant_types=["client_credentials"])
        clients.append({**client, "asks": scope})

    def token(http, client):
        resp = http.post(
            live_server.url + "/token",
            data={"grant_type": "client_credentials", "scope": client["asks"]},
            auth=(client["client_id"], client["client_secret"]),
            timeout=30,
        )
        json = resp.headers.get("Content-Type", "").startswith("application/json")
        return resp.status_code, resp.json() if json else resp.text[:200]

    issued = _in_rounds(clients * rounds, token, width)
    refused = [(client["asks"], status, body) for client, (status, body) in issued if status != 200]
    assert refused == [], (len(refused), refused[:3])
    assert len({body["access_token"] for _, (_, body) in issued}) == len(issued)

    def introspect(http, case):
        client, body = case
        resp = http.post(
            live_server.url + "/introspect",
            data={"token": body["access_token"]},
            auth=(client["client_id"], client["client_secret"]),
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    wrong = []
    for (client, body), answer in _all([(client, body) for client, (_, body) in issued], introspect):
        mine = {"active": True, "client_id": client["client_id"], "scope": client["asks"]}
        if body["scope"] != client["asks"] or {key: answer.get(key) for key in mine} != mine:
            wrong.append((client["asks"], body.get("scope"), answer))
    assert wrong == [], (len(wrong), wrong[:3])


def _issue_tokens(live_server, account, rp, count: int) -> list[dict]:
    """``count`` token rows of ``rp`` for ``account``, each with its own scope, access and refresh token."""
    return _store_tokens(live_server, [(rp, account, f"openid s{number}") for number in range(count)])


def _store_tokens(live_server, specs: list[tuple[dict, dict, str]]) -> list[dict]:
    """A token row per (client, account, scope), each with its own access and refresh token, family and
    expiry."""
    rows = []
    with live_server.app.app_context():
        now = int(time.time())
        for number, (client, owner, scope) in enumerate(specs):
            access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            db.session.add(
                Token(
                    client_id=client["client_id"],
                    account_id=owner["id"],
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
                    "client": client,
                    "account": owner,
                    "access_token": access,
                    "refresh_token": refresh,
                    "scope": scope,
                    "access_exp": now + 600 + number,
                    "refresh_exp": now + 3600 + number,
                }
            )
        db.session.commit()
    return rows
