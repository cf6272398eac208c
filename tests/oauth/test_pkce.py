"""PKCE (RFC 7636), S256 only and required of public clients (RFC 9700 §2.1.1)."""

import pytest

from ..helpers import pkce_pair
from ._flow import ISSUER
from ._flow import authorize
from ._flow import public_rp
from ._flow import redeem


def _refused_at_authorize(done, error="invalid_request"):
    result = done.result
    assert result["error"] == error, result
    assert result["state"] == done.request["state"]
    assert result["iss"] == ISSUER
    assert "code" not in result


def _invalid_grant(response):
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_grant"


def test_public_client_with_s256(browser, account, make_rp):
    public = public_rp(make_rp)
    done = authorize(browser, public, account)
    assert redeem(browser.client, public, done.code, done.verifier).status_code == 200


def test_wrong_verifier_public(browser, account, make_rp):
    public = public_rp(make_rp)
    done = authorize(browser, public, account)
    other_verifier, _ = pkce_pair()
    _invalid_grant(redeem(browser.client, public, done.code, other_verifier))


def test_missing_verifier(browser, account, make_rp):
    public = public_rp(make_rp)
    done = authorize(browser, public, account)
    response = redeem(browser.client, public, done.code, None)
    assert response.status_code == 400
    assert response.get_json()["error"] in ("invalid_request", "invalid_grant")


def test_plain_refused_at_authorize(browser, account, rp):
    verifier, _ = pkce_pair()
    done = authorize(browser, rp, pkce=False, code_challenge=verifier, code_challenge_method="plain")
    _refused_at_authorize(done)


def test_challenge_without_method_refused(browser, account, rp):
    _, challenge = pkce_pair()
    done = authorize(browser, rp, pkce=False, code_challenge=challenge)
    _refused_at_authorize(done)


@pytest.mark.parametrize("method", ["s256", "S512", ""])
def test_unknown_method_refused(browser, account, rp, method):
    _, challenge = pkce_pair()
    done = authorize(browser, rp, pkce=False, code_challenge=challenge, code_challenge_method=method)
    _refused_at_authorize(done)


def test_public_client_without_challenge_refused(browser, account, make_rp):
    public = public_rp(make_rp)
    done = authorize(browser, public, pkce=False)
    _refused_at_authorize(done)


def test_public_client_without_challenge_refused_even_when_signed_in(browser, account, make_rp):
    public = public_rp(make_rp)
    authorize(browser, public, account)
    done = authorize(browser, public, pkce=False)
    _refused_at_authorize(done)


def test_confidential_client_without_pkce(browser, account, rp):
    done = authorize(browser, rp, account, pkce=False)
    assert "code_challenge" not in done.request
    response = redeem(browser.client, rp, done.code, None)
    assert response.status_code == 200, response.get_json()


def test_confidential_client_with_pkce_is_held_to_it(browser, account, rp):
    done = authorize(browser, rp, account)
    other_verifier, _ = pkce_pair()
    _invalid_grant(redeem(browser.client, rp, done.code, other_verifier))

    fresh = authorize(browser, rp)
    missing = redeem(browser.client, rp, fresh.code, None)
    assert missing.status_code == 400
    assert missing.get_json()["error"] in ("invalid_request", "invalid_grant")


def test_verifier_without_challenge_refused(browser, account, rp):
    done = authorize(browser, rp, account, pkce=False)
    verifier, _ = pkce_pair()
    response = redeem(browser.client, rp, done.code, verifier)
    assert response.status_code == 400
    assert response.get_json()["error"] in ("invalid_request", "invalid_grant")


@pytest.mark.parametrize("verifier", ["short", "x" * 129, "has spaces" + "a" * 40])
def test_malformed_verifier(browser, account, make_rp, verifier):
    public = public_rp(make_rp)
    done = authorize(browser, public, account)
    response = redeem(browser.client, public, done.code, verifier)
    assert response.status_code == 400
    assert response.get_json()["error"] in ("invalid_request", "invalid_grant")
