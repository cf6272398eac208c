"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0) over real HTTP: the logout token the
provider POSTs, who receives one, and that a dead or slow relying party neither breaks nor slows the
logout. The relying parties' back-channel endpoints are bare recorders (tests/relying_parties.py)."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.oauth.logout import EVENT
from idp.runtime import of

from ..helpers import Browser
from ..helpers import pkce_pair
from ..helpers import query
from ..live import follow_inside
from ..live import http_session
from ..live import sign_in
from ..oauth._flow import sign_in_for_tokens
from ..outbound import StubResolver
from ..outbound import network  # noqa: F401  (fixture)
from ..relying_parties import closed_port
from ..relying_parties import receiver

REDIRECT_URI = "https://rp.example/cb"
POST_LOGOUT_URI = "https://rp.example/bye"


def _tokens(live_server, browser, rp: dict, account: dict | None = None) -> dict:
    """An authorization for ``rp`` in ``browser``'s session (signing in if ``account`` is given), redeemed."""
    verifier, challenge = pkce_pair()
    url = (
        live_server.url
        + "/authorize?"
        + urlencode(
            {
                "response_type": "code",
                "client_id": rp["client_id"],
                "redirect_uri": REDIRECT_URI,
                "scope": "openid",
                "state": "s",
                "nonce": verifier[:16],
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
    )
    if account is not None:
        response = sign_in(browser, live_server.url, url, account["login"], account["password"])
    else:
        first = browser.get(url, allow_redirects=False, timeout=10)
        response = follow_inside(browser, first, live_server.url)
    location = response.headers.get("Location", "")
    assert response.status_code == 302 and location.startswith(REDIRECT_URI), response.text
    token = _redeem(live_server, rp, query(location)["code"], verifier)
    assert token.status_code == 200, token.text
    return token.json()


def _redeem(live_server, rp: dict, code: str, verifier: str):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    auth = (rp["client_id"], rp["client_secret"])
    with http_session() as http:
        data["code_verifier"] = verifier
        return http.post(live_server.url + "/token", data=data, auth=auth, timeout=10)


def _jwks(live_server) -> KeySet:
    with http_session() as http:
        return KeySet.import_key_set(http.get(live_server.url + "/jwks.json", timeout=10).json())


def _logout(live_server, browser, id_token: str):
    """RP-initiated logout with a hint; returns the response and how long it took."""
    started = time.monotonic()
    response = browser.get(
        live_server.url + "/logout",
        params={
            "id_token_hint": id_token,
            "post_logout_redirect_uri": POST_LOGOUT_URI,
            "state": "bye",
        },
        allow_redirects=False,
        timeout=30,
    )
    return response, time.monotonic() - started


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_logout_token_follows_the_spec(live_server, account, make_rp, alg):
    with receiver() as endpoint:
        rp = make_rp(id_token_alg=alg, backchannel_logout_uri=endpoint.url)
        browser = http_session()
        tokens = _tokens(live_server, browser, rp, account)
        keys = _jwks(live_server)
        id_token = jwt.decode(tokens["id_token"], keys, algorithms=[alg]).claims

        response, _ = _logout(live_server, browser, tokens["id_token"])
        assert response.status_code == 302
        (request,) = endpoint.wait_for(1)

    # §2.5: a form-encoded POST with the one parameter logout_token.
    assert request["method"] == "POST" and request["content_type"] == "application/x-www-form-urlencoded"
    assert list(request["form"]) == ["logout_token"] and len(request["form"]["logout_token"]) == 1
    # §2.4: signed by a key of the JWKS, with the client's ID token algorithm, explicitly typed.
    token = jwt.decode(request["form"]["logout_token"][0], keys, algorithms=[alg])
    assert token.header["alg"] == alg and token.header["typ"] == "logout+jwt"
    assert token.header["kid"] in {key.kid for key in keys}
    claims = token.claims
    assert set(claims) == {"iss", "aud", "iat", "exp", "jti", "events", "sid", "sub"}
    assert claims["iss"] == live_server.url
    assert claims["aud"] == rp["client_id"]
    assert abs(claims["iat"] - time.time()) < 60
    assert 0 < claims["exp"] - claims["iat"] <= 120
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    assert claims["events"] == {EVENT: {}}
    assert "nonce" not in claims
    assert claims["sid"] == id_token["sid"] and claims["sub"] == id_token["sub"] == account["sub"]
    browser.close()


def test_every_client_of_the_session_is_told_and_no_other(live_server, account, make_rp):
    with receiver() as first, receiver() as second, receiver() as elsewhere, receiver() as unused:
        cabinet = make_rp(name="Кабинет", backchannel_logout_uri=first.url)
        portal = make_rp(name="Портал", backchannel_logout_uri=second.url)
        other_session = make_rp(name="Другой сеанс", backchannel_logout_uri=elsewhere.url)
        make_rp(name="Не участвовал", backchannel_logout_uri=unused.url)
        quiet = make_rp(name="Без back-channel")
        browser, other_browser = http_session(), http_session()
        tokens = _tokens(live_server, browser, cabinet, account)
        _tokens(live_server, browser, portal)  # single sign-on: no password this time
        _tokens(live_server, browser, quiet)
        _tokens(live_server, other_browser, other_session, account)

        response, _ = _logout(live_server, browser, tokens["id_token"])
        assert response.status_code == 302
        (to_cabinet,), (to_portal,) = first.wait_for(1), second.wait_for(1)
        time.sleep(0.3)
        assert len(first.received) == 1 and len(second.received) == 1
        assert elsewhere.received == [] and unused.received == []

    keys = _jwks(live_server)
    claims = [jwt.decode(r["form"]["logout_token"][0], keys).claims for r in (to_cabinet, to_portal)]
    assert [c["aud"] for c in claims] == [cabinet["client_id"], portal["client_id"]]
    assert claims[0]["sid"] == claims[1]["sid"]
    assert claims[0]["jti"] != claims[1]["jti"]
    browser.close()
    other_browser.close()


@pytest.mark.config(outbound={"deadline": 1}, logout={"backchannel_retries": 1}, outbox={"retry_delay": 1})
def test_dead_relying_parties_do_not_slow_the_logout(live_server, account, make_rp, caplog):
    caplog.set_level(logging.WARNING)
    dead_uri = f"http://127.0.0.1:{closed_port()}/backchannel"
    with receiver(delay=4) as sleepy, receiver() as alive:
        dead = make_rp(name="Не отвечает", backchannel_logout_uri=dead_uri)
        slow = make_rp(name="Медленный", backchannel_logout_uri=sleepy.url)
        good = make_rp(name="Работает", backchannel_logout_uri=alive.url)
        browser = http_session()
        tokens = _tokens(live_server, browser, dead, account)
        _tokens(live_server, browser, slow)
        _tokens(live_server, browser, good)

        response, elapsed = _logout(live_server, browser, tokens["id_token"])
        # The page answers at once: delivery runs in the background, not even one timeout is waited for.
        assert response.status_code == 302 and response.headers["Location"] == POST_LOGOUT_URI + "?state=bye"
        assert elapsed < 1.0, f"logout took {elapsed:.2f}s"
        # The live relying party is told at once, whatever the others do.
        alive.wait_for(1, timeout=1.0)
        # The slow one: each attempt is cut at the deadline (1 s), not at its 4 s, then retried once
        # after the [outbox] retry_delay (1 s; due times are whole seconds).
        sleepy.wait_for(2, timeout=5.0)
        gap = sleepy.arrivals[1] - sleepy.arrivals[0]
        assert 1.0 <= gap < 3.5, gap
        # The dead one (refused connections) and the slow one: one retry each, then the provider gives up.
        for uri in (dead_uri, sleepy.url):
            _wait_for_log(caplog, f"(backchannel_logout): gave up after 2 attempt(s): {uri}: Outbound")
        token = sleepy.received[0]["form"]["logout_token"][0]
    # Logout tokens are never logged, and the browser is signed out all the same.
    assert token not in caplog.text
    landing = browser.get(live_server.url + "/", allow_redirects=False, timeout=10)
    assert landing.headers["Location"] == "/login"
    browser.close()


def _wait_for_log(caplog, text: str, timeout: float = 4.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in caplog.text:
        assert time.monotonic() < deadline, caplog.text
        time.sleep(0.05)


def test_code_redeemed_after_the_logout_is_refused(live_server, account, make_rp):
    # The relying parties were told the session ended; a code from it must not yield tokens after that.
    rp = make_rp()
    browser = http_session()
    tokens = _tokens(live_server, browser, rp, account)
    verifier, challenge = pkce_pair()
    url = (
        live_server.url
        + "/authorize?"
        + urlencode(
            {
                "response_type": "code",
                "client_id": rp["client_id"],
                "redirect_uri": REDIRECT_URI,
                "scope": "openid",
                "state": "s",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
    )
    code = query(browser.get(url, allow_redirects=False, timeout=10).headers["Location"])["code"]
    assert _logout(live_server, browser, tokens["id_token"])[0].status_code == 302
    late = _redeem(live_server, rp, code, verifier)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
    browser.close()


# -- names that resolve inside (issue 10, DNS rebinding): never contacted ------------------------------


def test_names_resolving_to_private_addresses_are_never_contacted(app, account, make_rp, network, caplog):
    # Registered while they pointed somewhere harmless (or registered in development): what counts is
    # where the name points when the provider is about to call it.
    caplog.set_level(logging.WARNING, logger="idp.services.logout")
    names = ["metadata.test", "intranet.test", "mapped.test", "mixed.test"]
    dns = StubResolver(
        {
            "localhost": ["127.0.0.1"],
            "metadata.test": ["169.254.169.254"],
            "intranet.test": ["10.0.0.5"],
            "mapped.test": ["::ffff:10.0.0.1"],
            "mixed.test": ["93.184.216.34", "192.168.0.10"],
        }
    )
    of(app).outbound.resolver = dns
    with receiver() as good:
        rps = [make_rp(name=name, backchannel_logout_uri=f"https://{name}/backchannel") for name in names]
        nearby = f"http://localhost:{urlsplit(good.url).port}/backchannel"
        rps.append(make_rp(name="Рядом", backchannel_logout_uri=nearby))
        browser = Browser(app.test_client())
        for rp in rps:
            sign_in_for_tokens(browser, account, rp)
        assert browser.submit("/logout/confirm", {}, page=browser.get("/")).status_code == 200
        # The test app runs no background loop: one delivery pass, as a server process makes it.
        sent = of(app).background.deliver_due()
        # A refusal by the outbound rules fails the message at once: no retry can mend it.
        assert (sent.delivered, sent.retried, sent.failed) == (1, 0, 4)
        (request,) = good.wait_for(1)
        assert list(request["form"]) == ["logout_token"]
        for name in names:
            _wait_for_log(
                caplog,
                f"back-channel logout to https://{name}/backchannel: refused by the outbound "
                f"rules: {name} resolves to",
            )
    # Each name was looked up once (a refusal is not retried), and nothing left the loopback network.
    assert sorted(dns.asked) == sorted([*names, "localhost"])
    assert network.outside == []


def test_logout_token_of_a_pairwise_client_carries_its_pairwise_sub(live_server, account, make_rp):
    # OIDC Core §8.1: the sub of the logout token is the one this client knows, and the id_token_hint
    # naming it (with that pairwise sub) ends the session without asking.
    with receiver() as endpoint:
        rp = make_rp(backchannel_logout_uri=endpoint.url, subject_type="pairwise")
        browser = http_session()
        tokens = _tokens(live_server, browser, rp, account)
        id_token = jwt.decode(tokens["id_token"], _jwks(live_server), algorithms=["RS256"]).claims
        response, _ = _logout(live_server, browser, tokens["id_token"])
        assert response.status_code == 302
        (request,) = endpoint.wait_for(1)
    token = jwt.decode(request["form"]["logout_token"][0], _jwks(live_server), algorithms=["RS256"])
    assert token.claims["sub"] == id_token["sub"] != account["sub"]
    browser.close()
