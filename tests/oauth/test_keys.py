"""Signing key rotation with ``idp keys rotate`` (OIDC Core §10.1.1): a new key is published at once and
signs only after publish_ahead; the old one keeps verifying; ``--now`` switches at once."""

import dataclasses
import time

import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent
from idp.models import SigningKey
from idp.oauth import keys

from ..helpers import settings_of
from ..staff import post_form
from ._flow import jwks
from ._flow import sign_in_for_tokens
from ._flow import verify_id_token


@pytest.fixture
def restore_keys(app):
    """Signing keys outlive a test (conftest keeps them); put them back as they were."""
    with app.app_context():
        before = {row.id: row.expires_at for row in db.session.scalars(select(SigningKey))}
    yield
    with app.app_context():
        for row in db.session.scalars(select(SigningKey)).all():
            if row.id in before:
                row.expires_at = before[row.id]
            else:
                db.session.delete(row)
        db.session.commit()
        keys.cache().forget()


def _cli(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _kids(client, alg=None) -> set[str]:
    return {k["kid"] for k in jwks(client)["keys"] if alg is None or k["alg"] == alg}


def _kid(client, id_token) -> str:
    return verify_id_token(client, id_token).header["kid"]


def _later(clock, offset: int) -> None:
    """Move the app's clock ``offset`` seconds past the wall clock."""
    clock.now = int(time.time()) + offset


def test_rotate_publishes_now_signs_after_publish_ahead(app, browser, account, rp, restore_keys, clock):
    before, _ = sign_in_for_tokens(browser, account, rp)
    old_kid = _kid(browser.client, before["id_token"])
    published_before = _kids(browser.client)

    output = _cli(app, "keys", "rotate")
    assert "published" in output

    published_after = _kids(browser.client)
    new = published_after - published_before
    assert len(new) == 3  # one RS256, one ES256, one EdDSA
    assert published_before <= published_after
    [new_rs256] = new & _kids(browser.client, "RS256")

    # Still inside publish_ahead: the old key signs.
    during, _ = sign_in_for_tokens(browser, account, rp)
    assert _kid(browser.client, during["id_token"]) == old_kid

    _later(clock, settings_of(app).keys.publish_ahead + 1)
    after, _ = sign_in_for_tokens(browser, account, rp)
    assert _kid(browser.client, after["id_token"]) == new_rs256
    with app.app_context():
        assert keys.cache().signing_key("ES256").kid in new


def test_a_key_activating_mid_request_signs_with_the_kid_it_names(
    app, browser, account, rp, restore_keys, clock, monkeypatch
):
    # authlib asks for the key twice (the header's kid, then the signing key). Make the rotated-in key
    # become active right after the first question: the token must still name the key that signed it.
    _cli(app, "keys", "rotate")
    activation = clock.now + settings_of(app).keys.publish_ahead + 1
    asked = []
    original = keys.KeyCache.signing_key

    def then_the_new_key_activates(cache, alg):
        key = original(cache, alg)
        asked.append(key.kid)
        clock.now = activation
        return key

    monkeypatch.setattr(keys.KeyCache, "signing_key", then_the_new_key_activates)
    tokens, _ = sign_in_for_tokens(browser, account, rp)
    assert asked, "no signing key was asked for"
    token = verify_id_token(browser.client, tokens["id_token"])
    assert token.header["kid"] == asked[0]


def test_token_signed_before_rotation_still_verifies(app, browser, account, rp, restore_keys, clock):
    before, _ = sign_in_for_tokens(browser, account, rp)
    _cli(app, "keys", "rotate")
    _later(clock, settings_of(app).keys.publish_ahead + 1)
    assert verify_id_token(browser.client, before["id_token"]).claims["sub"] == account["sub"]
    # And the provider itself still accepts it as a hint.
    response = browser.get("/logout", query_string={"id_token_hint": before["id_token"]})
    assert response.status_code == 200


def test_rotate_now_switches_at_once(app, browser, account, rp, restore_keys):
    before, _ = sign_in_for_tokens(browser, account, rp)
    old_kid = _kid(browser.client, before["id_token"])
    published_before = _kids(browser.client)

    etag = browser.client.get("/jwks.json").headers["ETag"]

    _cli(app, "keys", "rotate", "--now")

    published_after = _kids(browser.client)
    # The JWKS is rebuilt with the keys: a relying party revalidating its copy gets the new set.
    fresh = browser.client.get("/jwks.json", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
    assert old_kid not in published_after
    assert not published_before & published_after
    after, _ = sign_in_for_tokens(browser, account, rp)
    assert _kid(browser.client, after["id_token"]) in published_after
    # A compromised key's tokens no longer verify against the published set.
    with pytest.raises((JoseError, ValueError)):
        jwt.decode(before["id_token"], KeySet.import_key_set(jwks(browser.client)), algorithms=["RS256"])


def test_es256_client_follows_rotation(app, browser, account, make_rp, restore_keys):
    es = make_rp(id_token_alg="ES256")
    _cli(app, "keys", "rotate", "--now")
    tokens, _ = sign_in_for_tokens(browser, account, es)
    token = verify_id_token(browser.client, tokens["id_token"])
    assert token.header["alg"] == "ES256"
    assert token.header["kid"] in _kids(browser.client, "ES256")


def test_retire_takes_a_key_out_of_jwks(app, browser, account, rp, restore_keys):
    before = _kids(browser.client)
    _cli(app, "keys", "rotate")
    [pending_rs256] = (_kids(browser.client) - before) & _kids(browser.client, "RS256")
    # A kid is an RFC 7638 thumbprint and may start with "-": "--" ends the options.
    _cli(app, "keys", "retire", "--", pending_rs256)
    assert pending_rs256 not in _kids(browser.client)
    tokens, _ = sign_in_for_tokens(browser, account, rp)
    assert _kid(browser.client, tokens["id_token"]) in before
    result = app.test_cli_runner().invoke(args=["keys", "retire", "no-such-kid"])
    assert result.exit_code != 0


# -- the same rules from the staff console (/admin/keys) ------------------------------------------------


def _console(admin_client, path: str, data: dict):
    return post_form(admin_client, path, data, page_path="/admin/keys")


def test_console_rotation_publishes_first_and_keeps_old_tokens_verifying(
    app, browser, account, rp, admin_client, restore_keys, clock
):
    before, _ = sign_in_for_tokens(browser, account, rp)
    old_kid = _kid(browser.client, before["id_token"])
    published_before = _kids(browser.client)

    refused = _console(admin_client, "/admin/keys/rotate", {})
    assert refused.status_code == 400 and _kids(browser.client) == published_before

    response = _console(
        admin_client, "/admin/keys/rotate", {"rotate-confirm": "y", "rotate-reason": "плановая"}
    )
    assert response.status_code == 302
    new = _kids(browser.client) - published_before
    assert len(new) == 3 and published_before <= _kids(browser.client)
    # Published before it signs: inside publish_ahead the old key still signs.
    during, _ = sign_in_for_tokens(browser, account, rp)
    assert _kid(browser.client, during["id_token"]) == old_kid
    page = admin_client.get("/admin/keys").get_data(as_text=True)
    assert all(kid in page for kid in new) and "подписывает с" in page

    _later(clock, settings_of(app).keys.publish_ahead + 1)
    keys_now, _ = sign_in_for_tokens(browser, account, rp)
    assert _kid(browser.client, keys_now["id_token"]) in new
    # A token signed before the rotation still verifies against the JWKS published after it.
    assert verify_id_token(browser.client, before["id_token"]).claims["sub"] == account["sub"]
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).filter_by(event="keys.rotated"))
        assert set(event.details["kids"]) == new and event.reason == "плановая"


def test_console_rotation_for_a_compromise_switches_at_once(
    app, browser, account, rp, admin_client, restore_keys
):
    before, _ = sign_in_for_tokens(browser, account, rp)
    old_kid = _kid(browser.client, before["id_token"])
    response = _console(admin_client, "/admin/keys/rotate", {"rotate-confirm": "y", "rotate-immediate": "y"})
    assert response.status_code == 302
    assert old_kid not in _kids(browser.client)
    after, _ = sign_in_for_tokens(browser, account, rp)
    assert _kid(browser.client, after["id_token"]) != old_kid


def test_console_retire(app, browser, account, rp, admin_client, restore_keys):
    signing = _kid(browser.client, sign_in_for_tokens(browser, account, rp)[0]["id_token"])
    # The one key that signs for its algorithm stays: retiring it would leave RS256 without a key.
    refused = _console(admin_client, f"/admin/keys/{signing}/retire", {"retire-confirm": "y"})
    assert refused.status_code == 400 and signing in _kids(browser.client)
    before = _kids(browser.client)
    _console(admin_client, "/admin/keys/rotate", {"rotate-confirm": "y"})
    [pending] = (_kids(browser.client) - before) & _kids(browser.client, "RS256")
    assert _console(admin_client, f"/admin/keys/{pending}/retire", {}).status_code == 400
    assert _console(admin_client, f"/admin/keys/{pending}/retire", {"retire-confirm": "y"}).status_code == 302
    assert pending not in _kids(browser.client)
    assert (
        _console(admin_client, "/admin/keys/no-such-kid/retire", {"retire-confirm": "y"}).status_code == 404
    )


def test_a_reload_of_the_same_keys_imports_none_again(app, client, monkeypatch):
    # An RSA import validates the private key (~40 ms): redone every [keys] cache_ttl it stalled the
    # worker (issue 12). The same rows keep their imported keys, and the JWKS keeps its ETag.
    from idp.runtime import of

    etag = client.get("/jwks.json").headers["ETag"]
    imported = []
    real_import = keys._import
    monkeypatch.setattr(keys, "_import", lambda row: imported.append(row.id) or real_import(row))
    cache = of(app).keys
    cache._loaded = dataclasses.replace(cache._loaded, at=0.0)  # as if cache_ttl had passed
    assert client.get("/jwks.json").headers["ETag"] == etag
    assert imported == []
    of(app).keys.forget()
    assert client.get("/jwks.json").headers["ETag"] == etag
    assert imported  # forget() imports afresh


# -- issue 10: a key change reaches every process at its next request; the last key stays -----------------


def test_a_rotation_made_by_another_process_takes_effect_within_its_notification(
    app, browser, account, rp, restore_keys
):
    """A rotation committed elsewhere (no ``forget`` in this app): within [keys] cache_ttl (30 s, the clock
    does not move) this app must sign with the new key and publish only the new set as soon as the change
    is notified (PostgreSQL: milliseconds after the commit; SQLite: the next request reads the stamp) —
    a compromised key must not sign on."""
    before, _ = sign_in_for_tokens(browser, account, rp)
    old_kid = _kid(browser.client, before["id_token"])
    with app.app_context():
        from idp.services import keys as key_service

        new = key_service.rotate_keys(db.session, settings_of(app), now=int(time.time()), immediate=True)
        new_kids = {row.kid for row in new}
        db.session.commit()
    deadline = time.monotonic() + 2
    while _kids(browser.client) != new_kids and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _kids(browser.client) == new_kids and old_kid not in _kids(browser.client)
    after, _ = sign_in_for_tokens(browser, account, rp)
    assert _kid(browser.client, after["id_token"]) in new_kids


def test_retire_refuses_the_last_active_key_of_an_algorithm(app, browser, account, rp, restore_keys):
    """Retiring the only active RS256 key would make every token request for it fail (issue 10: 500s).
    The CLI refuses, says why, and audits nothing; after a rotation the old key may go."""
    [only] = _kids(browser.client, "RS256")
    result = app.test_cli_runner().invoke(args=["keys", "retire", "--", only])
    assert result.exit_code != 0 and "only active RS256 key" in result.output
    assert only in _kids(browser.client, "RS256")
    with app.app_context():
        assert not db.session.scalars(select(AuditEvent).filter_by(event="keys.retired")).all()
    _cli(app, "keys", "rotate", "--now")
    tokens, _ = sign_in_for_tokens(browser, account, rp)
    assert _kid(browser.client, tokens["id_token"]) != only


def test_every_key_command_that_changes_keys_is_audited(app, restore_keys):
    _cli(app, "keys", "rotate", "--reason", "плановая")
    with app.app_context():
        rotated = db.session.scalars(select(AuditEvent).filter_by(event="keys.rotated")).all()
        assert [event.reason for event in rotated] == ["плановая"] and rotated[0].actor_type == "cli"


def test_a_successful_cli_retire_and_an_immediate_rotation_are_audited(app, browser, restore_keys):
    # Issue 10: "every key command is audited". A compromise rotation says it was immediate, and a retire
    # names the key it took out of JWKS, with the operator's reason.
    before = _kids(browser.client)
    _cli(app, "keys", "rotate", "--now", "--reason", "утечка")
    compromise = _kids(browser.client)
    _cli(app, "keys", "rotate")
    [pending] = (_kids(browser.client) - compromise) & _kids(browser.client, "RS256")
    _cli(app, "keys", "retire", "--reason", "лишний", "--", pending)
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.event.like("keys.%")).order_by(AuditEvent.id)
        ).all()
    assert [(event.event, event.actor_type) for event in events] == [
        ("keys.rotated", "cli"),
        ("keys.rotated", "cli"),
        ("keys.retired", "cli"),
    ]
    now, planned, retired = events
    assert now.details["immediate"] is True and set(now.details["kids"]) == compromise
    assert now.reason == "утечка" and not compromise & before
    assert planned.details["immediate"] is False
    assert retired.details == {"kid": pending} and retired.reason == "лишний"


def test_a_console_retire_is_audited_with_the_staff_member(app, browser, admin_client, restore_keys):
    before = _kids(browser.client)
    _console(admin_client, "/admin/keys/rotate", {"rotate-confirm": "y", "rotate-immediate": "y"})
    # The compromise rotation left one RS256 key, which may not go; a planned one publishes a spare.
    [signing] = _kids(browser.client, "RS256")
    assert signing not in before
    _console(admin_client, "/admin/keys/rotate", {"rotate-confirm": "y"})
    [spare] = _kids(browser.client, "RS256") - {signing}
    response = _console(
        admin_client, f"/admin/keys/{spare}/retire", {"retire-confirm": "y", "retire-reason": "лишний"}
    )
    assert response.status_code == 302 and spare not in _kids(browser.client)
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.event.like("keys.%")).order_by(AuditEvent.id)
        ).all()
    assert [(event.event, event.actor_type) for event in events] == [
        ("keys.rotated", "staff"),
        ("keys.rotated", "staff"),
        ("keys.retired", "staff"),
    ]
    assert events[0].details["immediate"] is True and events[1].details["immediate"] is False
    retired = events[2]
    assert retired.details == {"kid": spare} and retired.reason == "лишний" and retired.actor_name
