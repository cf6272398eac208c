"""panva's openid-client (npm, a certified strict relying party; pinned in tests/node/package-lock.json and
installed by `make test` with `npm ci`) against the live provider, in Node: discovery, private_key_jwt,
PAR, PKCE, DPoP-bound tokens at the token endpoint, UserInfo, refresh and introspection. The browser part
(sign-in) is played by requests; the rest is openid-client's own."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from joserfc.jwk import ECKey
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuthorizationCode

from ..live import http_session
from ..live import sign_in

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "node"
REDIRECT_URI = "https://rp.example/cb"


def _node() -> str:
    node = shutil.which("node")
    assert node, "Node 20 is needed for the openid-client tests"
    installed = (NODE_DIR / "node_modules" / "openid-client").is_dir()
    assert installed, "run `make node-tools` (npm ci in tests/node)"
    return node


def _read(process: subprocess.Popen) -> dict:
    text = process.stdout.readline()
    assert text, process.stderr.read()
    answer = json.loads(text)
    assert "error" not in answer, answer
    return answer


def _rp(make_rp, key: ECKey, **overrides) -> dict:
    values = dict(
        auth_method="private_key_jwt",
        jwks={"keys": [key.as_dict(private=False)]},
        require_par=True,
        dpop_bound=True,
        access_token_format="jwt",
        grant_types=["authorization_code", "refresh_token"],
        scope="openid profile offline_access",
    )
    values.update(overrides)
    return make_rp(**values)


def _run(live_server, account, rp: dict, key: ECKey, *, expect_error: bool = False, **options) -> dict:
    """Drive rp.mjs through one authorization: its authorization URL, the sign-in by requests, the
    callback handed back; returns its last line (the tokens and what it did with them, or its error)."""
    args = {
        "issuer": live_server.url,
        "client_id": rp["client_id"],
        "private_jwk": key.as_dict(private=True),
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile offline_access",
        **options,
    }
    process = subprocess.Popen(
        [_node(), str(NODE_DIR / "rp.mjs"), json.dumps(args)],
        cwd=NODE_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started = _read(process)
        assert started["par_endpoint"] == live_server.url + "/par"
        url = started["authorization_url"]
        if options.get("par", True):
            # PAR: the browser carries only client_id and the request_uri (RFC 9126 §4).
            assert "request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3A" in url and "scope=" not in url
        browser = http_session()
        answer = sign_in(browser, live_server.url, url, account["login"], account["password"])
        assert answer.status_code == 302, answer.text
        callback = answer.headers["Location"]
        assert callback.startswith(REDIRECT_URI + "?")
        process.stdin.write(callback + "\n")
        process.stdin.flush()
        if expect_error:
            text = process.stdout.readline()
            assert text, process.stderr.read()
            return json.loads(text)
        return _read(process)
    finally:
        process.kill()
        process.wait(timeout=10)


def _code_jkts(live_server, rp: dict) -> list[str | None]:
    with live_server.app.app_context():
        query = select(AuthorizationCode.dpop_jkt).filter_by(client_id=rp["client_id"])
        return list(db.session.scalars(query))


@pytest.mark.parametrize(
    "require_nonce",
    [
        pytest.param(False, marks=pytest.mark.config(dpop={"require_nonce": False})),
        pytest.param(True, marks=pytest.mark.config(dpop={"require_nonce": True})),
    ],
    ids=["dpop", "dpop-nonce"],
)
def test_openid_client_par_dpop_private_key_jwt(live_server, account, make_rp, require_nonce):
    key = ECKey.generate_key("P-256", parameters={"kid": "rp-es256"}, private=True)
    rp = _rp(make_rp, key)
    result = _run(live_server, account, rp, key)
    assert result["token_type"].lower() == "dpop" and result["refreshed_token_type"].lower() == "dpop"
    assert result["userinfo"]["sub"] == result["sub"] == result["userinfo_after_refresh"]["sub"]
    assert result["userinfo"]["name"]
    introspection = result["introspection"]
    assert introspection["active"] is True and introspection["token_type"] == "DPoP"
    assert introspection["client_id"] == rp["client_id"] and introspection["cnf"]["jkt"]
    # RFC 9449 §10.1: openid-client signed the push with its DPoP key, which bound the code to that key.
    assert _code_jkts(live_server, rp) == [introspection["cnf"]["jkt"]]
    # The bound token is worthless to anyone who copies it as a bearer token (RFC 9449 §7.2).
    http = http_session()
    stolen = http.get(
        live_server.url + "/userinfo", headers={"Authorization": "Bearer " + result["refreshed_access_token"]}
    )
    assert stolen.status_code == 401
    # The same client without PAR is refused at /authorize (require_pushed_authorization_requests).
    direct = http.get(
        live_server.url + "/authorize",
        params={"client_id": rp["client_id"], "response_type": "code", "redirect_uri": REDIRECT_URI},
        allow_redirects=False,
    )
    assert direct.status_code == 302 and "error=invalid_request" in direct.headers["Location"]


def test_openid_client_pushes_a_large_request(live_server, account, make_rp):
    """RFC 9126 §1: a request too large for a URL (or for the session cookie) is pushed, and it goes
    through the sign-in (the session holds only a reference to it)."""
    key = ECKey.generate_key("P-256", parameters={"kid": "rp-es256"}, private=True)
    rp = _rp(make_rp, key, dpop_bound=False)
    wanted = {"name": {"essential": True}, **{f"urn:example:claim:{n:04d}": None for n in range(150)}}
    extra = {
        "claims": json.dumps({"userinfo": wanted}),
        "state": "s" * 2500,
        "login_hint": account["login"],
        "ui_locales": "ru",
    }
    assert sum(len(k) + len(v) for k, v in extra.items()) > 7000
    result = _run(live_server, account, rp, key, extra=extra)
    assert result["userinfo"]["sub"] == result["sub"] and result["userinfo"]["name"]


def test_openid_client_binds_the_code_with_dpop_jkt(live_server, account, make_rp):
    """Without PAR, openid-client names its DPoP key's thumbprint in the authorization URL (dpop_jkt,
    RFC 9449 §10); the code is bound to it and redeemed with a proof by that key."""
    key = ECKey.generate_key("P-256", parameters={"kid": "rp-es256"}, private=True)
    rp = _rp(make_rp, key, require_par=False)
    result = _run(live_server, account, rp, key, par=False)
    assert result["token_type"].lower() == "dpop"
    assert _code_jkts(live_server, rp) == [result["introspection"]["cnf"]["jkt"]]


@pytest.mark.parametrize("par", [True, False], ids=["par", "dpop_jkt"])
def test_openid_client_cannot_redeem_a_bound_code_with_another_key(live_server, account, make_rp, par):
    key = ECKey.generate_key("P-256", parameters={"kid": "rp-es256"}, private=True)
    rp = _rp(make_rp, key, require_par=par)
    answer = _run(live_server, account, rp, key, par=par, token_dpop="other", expect_error=True)
    assert answer.get("oauth_error") == "invalid_grant", answer
