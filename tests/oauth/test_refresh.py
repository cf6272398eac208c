"""Refresh tokens (RFC 6749 §6, OIDC Core §11-§12, RFC 9700 §4.14.2): issued only with offline_access,
rotated on use, and a replayed one revokes its family. Conformance oidcc-refresh-token."""

import time

import pytest
from sqlalchemy import update

from idp.extensions import db
from idp.models import Token

from ._flow import public_rp
from ._flow import refresh
from ._flow import sign_in_for_tokens
from ._flow import userinfo
from ._flow import verify_id_token

GRACE = 30  # [oauth] refresh_grace, the default


def _invalid_grant(response):
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_grant"


def _offline(browser, account, rp, **params):
    tokens, done = sign_in_for_tokens(browser, account, rp, scope="openid profile offline_access", **params)
    assert tokens.get("refresh_token"), tokens
    return tokens, done


def test_no_refresh_token_without_offline_access(browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp, scope="openid profile")
    assert "refresh_token" not in tokens


def test_no_refresh_token_when_client_may_not_ask_offline_access(browser, account, make_rp):
    online = make_rp(scope="openid profile")
    tokens, _ = sign_in_for_tokens(browser, account, online, scope="openid profile offline_access")
    assert "refresh_token" not in tokens
    assert "offline_access" not in tokens["scope"].split()


def test_refresh_rotates(browser, account, rp):
    tokens, _ = _offline(browser, account, rp)
    response = refresh(browser.client, rp, tokens["refresh_token"])
    assert response.status_code == 200, response.get_json()
    assert "no-store" in response.headers["Cache-Control"]
    new = response.get_json()
    assert new["refresh_token"] and new["refresh_token"] != tokens["refresh_token"]
    assert new["access_token"] != tokens["access_token"]
    assert set(new["scope"].split()) == {"openid", "profile", "offline_access"}
    assert userinfo(browser.client, new["access_token"]).status_code == 200
    # The new refresh token works in turn; the old one does not.
    assert refresh(browser.client, rp, new["refresh_token"]).status_code == 200
    _invalid_grant(refresh(browser.client, rp, tokens["refresh_token"]))


def test_refresh_with_post_authentication(browser, account, rp):
    tokens, _ = _offline(browser, account, rp)
    response = refresh(browser.client, rp, tokens["refresh_token"], method="client_secret_post")
    assert response.status_code == 200, response.get_json()


def test_replayed_refresh_token_revokes_the_family(browser, account, rp):
    tokens, _ = _offline(browser, account, rp)
    second = refresh(browser.client, rp, tokens["refresh_token"]).get_json()
    third = refresh(browser.client, rp, second["refresh_token"]).get_json()
    assert userinfo(browser.client, third["access_token"]).status_code == 200

    _invalid_grant(refresh(browser.client, rp, tokens["refresh_token"]))

    _invalid_grant(refresh(browser.client, rp, third["refresh_token"]))
    for access_token in (tokens["access_token"], second["access_token"], third["access_token"]):
        assert userinfo(browser.client, access_token).status_code == 401


def test_replay_does_not_touch_other_families(browser, account, rp, clock):
    mine, _ = _offline(browser, account, rp)
    other, _ = _offline(browser, account, rp)
    refresh(browser.client, rp, mine["refresh_token"])
    clock.now += GRACE + 1
    _invalid_grant(refresh(browser.client, rp, mine["refresh_token"]))
    assert userinfo(browser.client, other["access_token"]).status_code == 200
    assert refresh(browser.client, rp, other["refresh_token"]).status_code == 200


def test_refresh_returns_new_id_token(browser, account, rp):
    tokens, done = _offline(browser, account, rp)
    original = verify_id_token(browser.client, tokens["id_token"]).claims
    assert original["nonce"] == done.request["nonce"]
    response = refresh(browser.client, rp, tokens["refresh_token"]).get_json()
    assert response["id_token"] != tokens["id_token"]
    claims = verify_id_token(browser.client, response["id_token"]).claims
    assert claims["sub"] == original["sub"] == account["sub"]
    assert claims["auth_time"] == original["auth_time"]
    assert claims["sid"] == original["sid"]
    assert claims["iss"] == original["iss"] and claims["aud"] == rp["client_id"]
    assert claims["amr"] == ["pwd"]
    assert "nonce" not in claims
    assert claims["iat"] >= original["iat"]


def test_refresh_token_of_another_client(browser, account, rp, make_rp):
    other = make_rp()
    tokens, _ = _offline(browser, account, rp)
    _invalid_grant(refresh(browser.client, other, tokens["refresh_token"]))
    # The owner is unaffected by a stranger's attempt.
    assert refresh(browser.client, rp, tokens["refresh_token"]).status_code == 200


def test_public_client_refresh_and_cross_client(browser, account, make_rp, rp):
    public = public_rp(make_rp)
    tokens, _ = _offline(browser, account, public)
    _invalid_grant(refresh(browser.client, rp, tokens["refresh_token"]))
    response = refresh(browser.client, public, tokens["refresh_token"])
    assert response.status_code == 200, response.get_json()


def test_access_token_is_not_a_refresh_token(browser, account, rp):
    tokens, _ = _offline(browser, account, rp)
    _invalid_grant(refresh(browser.client, rp, tokens["access_token"]))


def test_expired_refresh_token(app, browser, account, rp):
    tokens, _ = _offline(browser, account, rp)
    with app.app_context():
        db.session.execute(update(Token).values(refresh_expires_at=int(time.time()) - 1))
        db.session.commit()
    _invalid_grant(refresh(browser.client, rp, tokens["refresh_token"]))


def test_rotation_keeps_the_family_end(app, browser, account, rp):
    tokens, _ = _offline(browser, account, rp)
    refresh(browser.client, rp, tokens["refresh_token"])
    with app.app_context():
        ends = {row.refresh_expires_at for row in db.session.scalars(db.select(Token))}
    assert len(ends) == 1 and None not in ends


def test_refresh_cannot_widen_scope(browser, account, rp):
    tokens, _ = _offline(browser, account, rp)
    wider = "openid profile phone offline_access"
    response = refresh(browser.client, rp, tokens["refresh_token"], scope=wider)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_scope"


def test_refresh_after_account_blocked(app, browser, account, rp):
    from idp.models import Account

    tokens, _ = _offline(browser, account, rp)
    with app.app_context():
        db.session.execute(update(Account).values(status="blocked"))
        db.session.commit()
    response = refresh(browser.client, rp, tokens["refresh_token"])
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


# -- the grace (RFC 9700 §4.14.2): a token response lost between the commit and the client -----------------


def test_a_retry_within_the_grace_gets_a_fresh_pair(browser, account, rp, clock):
    tokens, _ = _offline(browser, account, rp)
    lost = refresh(browser.client, rp, tokens["refresh_token"]).get_json()  # never reached the client
    clock.now += GRACE
    retry = refresh(browser.client, rp, tokens["refresh_token"])
    assert retry.status_code == 200, retry.get_json()
    fresh = retry.get_json()
    assert fresh["refresh_token"] not in (lost["refresh_token"], tokens["refresh_token"])
    claims = verify_id_token(browser.client, fresh["id_token"]).claims
    assert claims["sub"] == account["sub"]
    # The pair the client never received is revoked; the fresh one works and rotates as usual.
    assert userinfo(browser.client, lost["access_token"]).status_code == 401
    assert userinfo(browser.client, fresh["access_token"]).status_code == 200
    assert refresh(browser.client, rp, fresh["refresh_token"]).status_code == 200


def test_the_replaced_successor_showing_up_later_is_reuse(browser, account, rp, clock):
    tokens, _ = _offline(browser, account, rp)
    lost = refresh(browser.client, rp, tokens["refresh_token"]).get_json()
    fresh = refresh(browser.client, rp, tokens["refresh_token"]).get_json()
    # Someone did receive the "lost" answer after all: two holders of one family. It ends.
    _invalid_grant(refresh(browser.client, rp, lost["refresh_token"]))
    _invalid_grant(refresh(browser.client, rp, fresh["refresh_token"]))
    assert userinfo(browser.client, fresh["access_token"]).status_code == 401


def test_no_grace_once_the_successor_was_used(browser, account, rp):
    tokens, _ = _offline(browser, account, rp)
    second = refresh(browser.client, rp, tokens["refresh_token"]).get_json()
    third = refresh(browser.client, rp, second["refresh_token"]).get_json()
    # The client did receive `second` (it used it): the first token coming back is reuse.
    _invalid_grant(refresh(browser.client, rp, tokens["refresh_token"]))
    _invalid_grant(refresh(browser.client, rp, third["refresh_token"]))


def test_no_grace_after_the_window(browser, account, rp, clock):
    tokens, _ = _offline(browser, account, rp)
    second = refresh(browser.client, rp, tokens["refresh_token"]).get_json()
    clock.now += GRACE + 1
    _invalid_grant(refresh(browser.client, rp, tokens["refresh_token"]))
    _invalid_grant(refresh(browser.client, rp, second["refresh_token"]))


def test_no_grace_for_another_client(browser, account, rp, make_rp):
    tokens, _ = _offline(browser, account, rp)
    second = refresh(browser.client, rp, tokens["refresh_token"]).get_json()
    _invalid_grant(refresh(browser.client, make_rp(), tokens["refresh_token"]))
    # A rotated-out token in another client's hands means it leaked: the family ends.
    _invalid_grant(refresh(browser.client, rp, second["refresh_token"]))


@pytest.mark.config(oauth={"refresh_grace": 0})
def test_grace_zero_makes_every_replay_reuse(browser, account, rp):
    tokens, _ = _offline(browser, account, rp)
    second = refresh(browser.client, rp, tokens["refresh_token"]).get_json()
    _invalid_grant(refresh(browser.client, rp, tokens["refresh_token"]))
    _invalid_grant(refresh(browser.client, rp, second["refresh_token"]))
