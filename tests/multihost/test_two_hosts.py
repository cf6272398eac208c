"""Several hosts, tested (issue 9): two production servers (tests/multihost/hosts.py) on two ports, one
PostgreSQL database, one Redis. The relying party is authlib's requests client; the browser is a requests
session with a cookie jar (the cookie of 127.0.0.1 goes to both ports, as one load-balanced name would).

1. a sign-in at A, then the authorization at B reuses the session (single sign-on across hosts);
2. a code issued by A is redeemed at B; a refresh token rotated at B replays as reuse at A;
3. the per-IP sign-in limit is shared: the N+1st attempt spread over A and B is refused;
4. `idp keys rotate` on one host is picked up by the other within the key cache time, with no failed
   verification at the relying party;
5. a logout at B delivers the back-channel logout even when A and B are both restarted before the relying
   party comes up;
6. stopping PostgreSQL for a few seconds gives 503s and then recovery with no restart of A or B.

Figures (key pickup, the delivery after the restart, outage answers, recovery time) are printed: run with
-s to see them.
"""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
import time
from urllib.parse import urljoin

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.requests_client import OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.extensions import db
from idp.models import OutboxMessage

from ..conftest import _create_account
from ..conftest import _create_client
from ..helpers import csrf_token
from ..helpers import query
from ..live import follow_inside
from ..live import http_session
from ..live import sign_in
from ..relying_parties import receiver

pytestmark = [pytest.mark.multihost, pytest.mark.once]

REDIRECT_URI = "https://rp.example/cb"
SCOPE = "openid offline_access"
PASSWORD = "пароль для двух хостов"
LOGIN_LIMIT = 5  # BASE_CONFIG [login] rate_limit = "5/minute"


class RelyingParty:
    """A confidential client as a deployed one works: authlib for the protocol, the JWKS of the issuer
    cached and fetched again only for a kid it has not seen, every ID token verified."""

    def __init__(self, hosts, registered: dict):
        self.hosts = hosts
        self.client_id = registered["client_id"]
        self.session = OAuth2Session(
            client_id=registered["client_id"],
            client_secret=registered["client_secret"],
            token_endpoint_auth_method="client_secret_basic",
            scope=SCOPE,
            redirect_uri=REDIRECT_URI,
            code_challenge_method="S256",
        )
        self.session.trust_env = False
        self.meta = requests.get(f"{hosts.issuer}/.well-known/openid-configuration", timeout=5).json()
        self.jwks: KeySet | None = None
        self.jwks_fetches = 0
        self.verified = 0

    def authorization_url(self, host) -> tuple[str, str, str]:
        verifier, nonce = generate_token(48), generate_token(16)
        url, _ = self.session.create_authorization_url(
            f"{host.url}/authorize", code_verifier=verifier, nonce=nonce
        )
        return url, verifier, nonce

    def redeem(self, host, code: str, verifier: str) -> dict:
        return dict(self.session.fetch_token(f"{host.url}/token", code=code, code_verifier=verifier))

    def refresh(self, host, refresh_token: str) -> dict:
        return dict(self.session.refresh_token(f"{host.url}/token", refresh_token=refresh_token))

    def _fetch_jwks(self, host) -> None:
        # Behind one load balancer the JWKS may come from either host.
        self.jwks = KeySet.import_key_set(requests.get(f"{host.url}/jwks.json", timeout=5).json())
        self.jwks_fetches += 1

    def verify(self, id_token: str, *, nonce: str | None = None, via=None) -> dict:
        """OIDC Core §3.1.3.7: signature by a published key, iss, aud, exp, iat (and nonce)."""
        kid = _kid(id_token)
        if self.jwks is None or kid not in {key.kid for key in self.jwks}:
            self._fetch_jwks(via or self.hosts.a)
        decoded = jwt.decode(
            id_token, self.jwks, algorithms=self.meta["id_token_signing_alg_values_supported"]
        )
        options = {
            "iss": {"essential": True, "value": self.meta["issuer"]},
            "aud": {"essential": True, "value": self.client_id},
            "exp": {"essential": True},
            "iat": {"essential": True},
        }
        if nonce:
            options["nonce"] = {"essential": True, "value": nonce}
        claims = CodeIDToken(decoded.claims, decoded.header, options=options, params={"nonce": nonce})
        claims.validate()
        self.verified += 1
        return {"kid": decoded.header["kid"], **decoded.claims}


def _kid(id_token: str) -> str:
    """The kid of the JWS header, read before verifying to know whether the cached JWKS can verify it."""
    header = id_token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


@pytest.fixture(scope="module")
def registered(two_hosts):
    return _create_client(
        two_hosts.app,
        redirect_uris=[REDIRECT_URI],
        scope="openid profile offline_access",
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
    )


@pytest.fixture
def account(two_hosts):
    return _create_account(two_hosts.app, login=f"77-{secrets.randbelow(10**7):07d}", password=PASSWORD)


@pytest.fixture
def rp(two_hosts, registered):
    return RelyingParty(two_hosts, registered)


def _sign_in_at(host, browser, rp: RelyingParty, account: dict) -> tuple[str, str, str]:
    """The authorization request at ``host``, signing in there: the code, its verifier and nonce."""
    url, verifier, nonce = rp.authorization_url(host)
    response = sign_in(browser, host.url, url, account["login"], account["password"])
    assert response.status_code == 302 and response.headers["Location"].startswith(REDIRECT_URI), (
        response.status_code,
        response.text[:500],
    )
    return query(response.headers["Location"])["code"], verifier, nonce


# -- 1. single sign-on across hosts --------------------------------------------------------------------


def test_sign_in_at_a_is_single_sign_on_at_b(two_hosts, rp, account):
    a, b = two_hosts.a, two_hosts.b
    browser = http_session()
    code, verifier, nonce = _sign_in_at(a, browser, rp, account)
    rp.verify(rp.redeem(a, code, verifier)["id_token"], nonce=nonce)

    url, verifier, nonce = rp.authorization_url(b)
    response = follow_inside(browser, browser.get(url, allow_redirects=False, timeout=10), b.url)
    # No sign-in page at B: the session made at A is found in the shared database.
    assert response.status_code == 302, (response.status_code, response.url)
    result = query(response.headers["Location"])
    claims = rp.verify(rp.redeem(b, result["code"], verifier)["id_token"], nonce=nonce)
    assert claims["sub"] and claims["iss"] == two_hosts.issuer


# -- 2. a code from A redeemed at B; a refresh rotated at B replays as reuse at A ------------------------


def test_code_and_refresh_tokens_are_shared_between_hosts(two_hosts, rp, account):
    a, b = two_hosts.a, two_hosts.b
    code, verifier, nonce = _sign_in_at(a, http_session(), rp, account)
    first = rp.redeem(b, code, verifier)
    rp.verify(first["id_token"], nonce=nonce)

    second = rp.refresh(b, first["refresh_token"])
    third = rp.refresh(b, second["refresh_token"])  # the client used what B gave it
    assert requests.get(f"{a.url}/userinfo", headers=_bearer(third), timeout=5).status_code == 200

    # The first refresh token comes back at A after its successor was used: reuse (RFC 9700 §4.14.2).
    with pytest.raises(OAuthError) as replay:
        rp.refresh(a, first["refresh_token"])
    assert replay.value.error == "invalid_grant"
    # ... which revoked the whole family, at both hosts.
    with pytest.raises(OAuthError):
        rp.refresh(b, third["refresh_token"])
    for host in (a, b):
        assert requests.get(f"{host.url}/userinfo", headers=_bearer(third), timeout=5).status_code == 401


def _bearer(token: dict) -> dict:
    return {"Authorization": f"Bearer {token['access_token']}"}


# -- 3. the per-IP sign-in limit is shared ---------------------------------------------------------------


def test_the_sign_in_limit_counts_attempts_at_both_hosts(two_hosts, account):
    two_hosts.flush_rate_limits()
    browser = http_session()
    statuses = []
    try:
        for attempt in range(LOGIN_LIMIT + 1):
            host = two_hosts.hosts[attempt % 2]
            page = browser.get(f"{host.url}/login", timeout=10)
            action = re.search(r'<form method="post" action="((?!/language")[^"]*)"', page.text).group(1)
            response = browser.post(
                urljoin(page.url, html.unescape(action)),
                data={"csrf_token": csrf_token(page.text), "login": account["login"], "password": "wrong"},
                allow_redirects=False,
                timeout=10,
            )
            statuses.append((host.name, response.status_code))
    finally:
        two_hosts.flush_rate_limits()
    # Five wrong passwords answered with the form (3 at A, 2 at B); the sixth, at B, is over the limit.
    assert statuses == [("a", 200), ("b", 200), ("a", 200), ("b", 200), ("a", 200), ("b", 429)]


# -- 4. a key rotation on one host is picked up by the other ---------------------------------------------


def test_key_rotation_on_one_host_is_picked_up_by_the_other(two_hosts, rp, account):
    a, b = two_hosts.a, two_hosts.b
    code, verifier, nonce = _sign_in_at(a, http_session(), rp, account)
    tokens = rp.redeem(a, code, verifier)
    old_kid = rp.verify(tokens["id_token"], nonce=nonce)["kid"]

    started = time.monotonic()
    rotated = two_hosts.idp("keys", "rotate", "--json", "--reason", "two-host test")
    command_took = time.monotonic() - started
    # The rotation is committed just before the command exits: figures count from here.
    started = time.monotonic()
    new_kids = {row["alg"]: row["kid"] for row in json.loads(rotated.stdout)["published"]}
    new_kid = new_kids["RS256"]

    published_at: dict[str, float] = {}
    signing_at: dict[str, float] = {}
    deadline = started + 30
    turn = 0
    while len(signing_at) < 2:
        assert time.monotonic() < deadline, f"not every host signs with {new_kid}: {signing_at}"
        for host in (a, b):
            if host.name not in published_at:
                kids = {key["kid"] for key in requests.get(f"{host.url}/jwks.json", timeout=5).json()["keys"]}
                if new_kid in kids:
                    published_at[host.name] = time.monotonic() - started
        host = (a, b)[turn % 2]
        turn += 1
        tokens = rp.refresh(host, tokens["refresh_token"])
        kid = rp.verify(tokens["id_token"], via=(a, b)[turn % 2])["kid"]
        assert kid in (old_kid, new_kid)
        if kid == new_kid and host.name not in signing_at:
            signing_at[host.name] = time.monotonic() - started
        time.sleep(0.2)
    print(
        f"\n[two hosts] key rotation: `idp keys rotate` took {command_took:.2f} s; after it exited, the new "
        f"key was in the JWKS of A after {published_at.get('a', -1):.2f} s, "
        f"of B after {published_at.get('b', -1):.2f} s "
        f"(cache_ttl 2 s); signing with it at A after {signing_at['a']:.2f} s, at B after "
        f"{signing_at['b']:.2f} s (publish_ahead 12 s, counted from the command's start); "
        f"{rp.verified} ID tokens verified by the RP, "
        f"{rp.jwks_fetches} JWKS fetches, 0 failures"
    )
    # Published by each host within the key cache time (2 s, and a second for the polling), and signing
    # only after both hosts published it.
    for name in ("a", "b"):
        assert published_at[name] <= 2 + 1
        assert signing_at[name] >= max(published_at.values())


# -- 5. a back-channel logout survives the restart of both hosts -----------------------------------------

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def _outbox(two_hosts) -> list[OutboxMessage]:
    with two_hosts.app.app_context():
        rows = list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        db.session.expunge_all()
        db.session.remove()
        return rows


def _wait(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.2)
    return found


def test_a_logout_at_b_is_delivered_after_both_hosts_restart(two_hosts, account):
    a, b = two_hosts.a, two_hosts.b
    endpoint = f"http://127.0.0.1:{two_hosts.receiver_port}/backchannel"
    registered = _create_client(
        two_hosts.app,
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=["https://rp.example/bye"],
        backchannel_logout_uri=endpoint,
        scope="openid offline_access",
        grant_types=["authorization_code", "refresh_token"],
    )
    rp = RelyingParty(two_hosts, registered)
    browser = http_session()
    code, verifier, nonce = _sign_in_at(a, browser, rp, account)
    id_token = rp.redeem(a, code, verifier)["id_token"]
    signed_in = rp.verify(id_token, nonce=nonce)
    before = {row.id for row in _outbox(two_hosts)}

    # The relying party's endpoint is down (nothing listens on its port): the logout at B (with the ID
    # token A issued) is written to the outbox with the session's end, and the first attempt fails.
    logout = browser.get(
        f"{b.url}/logout",
        params={"id_token_hint": id_token, "post_logout_redirect_uri": "https://rp.example/bye"},
        allow_redirects=False,
        timeout=10,
    )
    assert logout.status_code == 302 and logout.headers["Location"].startswith("https://rp.example/bye")
    [message] = _wait(
        "a failed first attempt",
        # (an attempt counts when it claims the row; its error is written when it has failed)
        lambda: [r for r in _outbox(two_hosts) if r.id not in before and r.last_error],
        timeout=15,
    )
    assert message.status == "pending" and message.last_error, (message.status, message.last_error)

    # Both idp processes stop (SIGTERM, granian's graceful stop) and start again; only then does the
    # relying party come up.
    started = time.monotonic()
    for host in (a, b):
        host.stop()
    stopped_attempts = next(r for r in _outbox(two_hosts) if r.id == message.id).attempts
    for host in (a, b):
        host.start()
    restart_took = time.monotonic() - started
    still = next(r for r in _outbox(two_hosts) if r.id == message.id)
    assert still.status == "pending", (still.status, still.last_error)

    with receiver(port=two_hosts.receiver_port) as rp_endpoint:
        up = time.monotonic()
        [delivery] = rp_endpoint.wait_for(1, timeout=30)
        arrived_after = time.monotonic() - up
    done = _wait(
        "the row marked delivered",
        lambda: [r for r in _outbox(two_hosts) if r.id == message.id and r.status == "delivered"],
        timeout=10,
    )[0]

    # OpenID Connect Back-Channel Logout 1.0 §2.4-2.6: a signed logout token for this session.
    [logout_token] = delivery["form"]["logout_token"]
    if rp.jwks is None or _kid(logout_token) not in {key.kid for key in rp.jwks}:
        rp._fetch_jwks(a)
    claims = jwt.decode(logout_token, rp.jwks, algorithms=["RS256", "ES256"]).claims
    assert claims["iss"] == two_hosts.issuer and claims["aud"] == rp.client_id
    assert claims["sub"] == signed_in["sub"] and claims["sid"] == signed_in["sid"]
    assert BACKCHANNEL_EVENT in claims["events"] and "nonce" not in claims
    print(
        f"\n[two hosts] back-channel logout: attempt(s) before the stop {stopped_attempts}; both hosts "
        f"stopped and ready again in {restart_took:.2f} s; the relying party came up after that and got "
        f"the logout token {arrived_after:.2f} s later ({done.attempts} attempts in all, one delivery)"
    )
    # Exactly one delivery, though two hosts poll the outbox.
    time.sleep(2)
    assert len(rp_endpoint.received) == 1


# -- 6. PostgreSQL stopped for a few seconds: 503s, then recovery with no restart -------------------------

OUTAGE_SECONDS = 5
UNAVAILABLE_RU = "Сервис временно недоступен"


def _token(host, registered: dict) -> requests.Response:
    return requests.post(
        f"{host.url}/token",
        data={"grant_type": "client_credentials", "scope": ""},
        auth=(registered["client_id"], registered["client_secret"]),
        timeout=10,
    )


def _login_form(host, browser) -> dict:
    page = browser.get(f"{host.url}/login", timeout=10)
    assert page.status_code == 200
    return {"csrf_token": csrf_token(page.text), "login": "77-0000000", "password": "не важно"}


def test_a_database_outage_gives_503s_then_recovers_without_a_restart(two_hosts, registered):
    a, b = two_hosts.a, two_hosts.b
    for host in (a, b):
        assert _token(host, registered).status_code == 200
    two_hosts.flush_rate_limits()
    browser = http_session()
    forms = {host.name: _login_form(host, browser) for host in (a, b)}
    pids = {host.name: host.process.pid for host in (a, b)}

    two_hosts.postgres.stop()
    stopped = time.monotonic()
    statuses: dict[str, list[int]] = {"a": [], "b": [], "login a": [], "login b": []}
    try:
        for host in (a, b):
            # A browser page: 503 in Russian (the page's language), not a 500.
            page = browser.post(f"{host.url}/login", data=forms[host.name], allow_redirects=False, timeout=10)
            statuses[f"login {host.name}"].append(page.status_code)
            assert page.status_code == 503 and UNAVAILABLE_RU in page.text, (
                page.status_code,
                page.text[:300],
            )
            assert (
                page.headers["Content-Type"].startswith("text/html") and int(page.headers["Retry-After"]) > 0
            )
            ready = requests.get(f"{host.url}/readyz", timeout=10)
            assert ready.status_code == 503 and "database unreachable" in ready.json()["reasons"]
        turn = 0
        while time.monotonic() - stopped < OUTAGE_SECONDS:
            host = (a, b)[turn % 2]
            turn += 1
            answer = _token(host, registered)
            statuses[host.name].append(answer.status_code)
            # A protocol endpoint: the JSON error of RFC 6749 §5.2's family, with Retry-After.
            assert answer.status_code == 503, (answer.status_code, answer.text[:300])
            assert answer.json()["error"] == "temporarily_unavailable"
            assert int(answer.headers["Retry-After"]) > 0
            time.sleep(0.1)
    finally:
        two_hosts.postgres.start()
    outage = time.monotonic() - stopped
    restarted = time.monotonic()

    recovered: dict[str, float] = {}
    after: dict[str, list[int]] = {"a": [], "b": []}
    while len(recovered) < 2:
        assert time.monotonic() - restarted < 30, f"no recovery within 30 s: {after}"
        for host in (a, b):
            if host.name in recovered:
                continue
            answer = _token(host, registered)
            after[host.name].append(answer.status_code)
            # While the pools find their connections dead: 503, never a 500.
            assert answer.status_code in (200, 503), (answer.status_code, answer.text[:300])
            if answer.status_code == 200:
                recovered[host.name] = time.monotonic() - restarted
        time.sleep(0.1)
    two_hosts.flush_rate_limits()
    for host in (a, b):
        page = browser.post(f"{host.url}/login", data=forms[host.name], allow_redirects=False, timeout=10)
        assert page.status_code == 200 and UNAVAILABLE_RU not in page.text  # the form again: wrong login
        assert requests.get(f"{host.url}/readyz", timeout=10).status_code == 200
        # No restart: the same server processes.
        assert host.process.poll() is None and host.process.pid == pids[host.name]
    print(
        f"\n[two hosts] PostgreSQL stopped for {outage:.2f} s: /token answered "
        f"{len(statuses['a'])} x 503 at A and {len(statuses['b'])} x 503 at B (JSON, Retry-After), "
        f"POST /login 503 with the Russian page at both, /readyz 503 at both; after PostgreSQL was started "
        f"again /token answered 200 at A after {recovered['a']:.2f} s and at B after {recovered['b']:.2f} s "
        f"({after['a'].count(503)} + {after['b'].count(503)} more 503s meanwhile), no 500, no restart"
    )


# -- the hosts' logs: [logging] format = "json" under granian --------------------------------------------


def test_every_line_the_hosts_wrote_is_json_with_a_request_id(two_hosts):
    counts = {}
    for host in two_hosts.hosts:
        lines = []
        for log in sorted(host.instance.glob("server-*.log")):
            for text in log.read_text(encoding="utf-8").splitlines():
                try:
                    lines.append(json.loads(text))
                except json.JSONDecodeError:
                    pytest.fail(f"host {host.name} wrote a line that is not JSON: {text[:300]}")
        assert all({"time", "level", "logger", "message", "request_id"} <= line.keys() for line in lines)
        access = [line for line in lines if line["logger"] == "idp.access"]
        # Each access line has the id the client got (X-Request-Id), no query string.
        assert access and all(line["request_id"] and "?" not in line["path"] for line in access)
        counts[host.name] = (len(lines), len(access))
    print(
        f"\n[two hosts] log lines, all JSON: A {counts['a'][0]} ({counts['a'][1]} access), "
        f"B {counts['b'][0]} ({counts['b'][1]} access)"
    )
