"""The temporary password and its forced change (seed step 3)."""

import pytest
from sqlalchemy import select
from sqlalchemy import update

from idp.extensions import db
from idp.models import Account
from idp.models import AuditEvent
from idp.models import SsoSession

from ..helpers import Browser
from ..helpers import pkce_pair
from ..helpers import query

NEW = "новый пароль для кабинета"


def _change(browser, old, new, repeat=None):
    return browser.submit("/password/change", {"old": old, "new": new, "repeat": new if repeat is None else repeat})


def test_temporary_password_leads_to_the_change_and_then_to_the_relying_party(browser, make_account, rp):
    account = make_account(temporary=True)
    _, challenge = pkce_pair()
    page = browser.authorize(response_type="code", client_id=rp["client_id"], redirect_uri="https://rp.example/cb",
                             scope="openid", state="st", code_challenge=challenge, code_challenge_method="S256")
    change_page = browser.sign_in(account["login"], account["password"], page=page)
    html = change_page.get_data(as_text=True)
    for text in ("Старый пароль", "Новый пароль", "Повторно введите новый пароль", "сменить пароль"):
        assert text in html
    path = change_page.request.full_path
    done = browser.follow(browser.submit(path, {"old": account["password"], "new": NEW, "repeat": NEW}, page=change_page))
    assert done.status_code == 302 and done.headers["Location"].startswith("https://rp.example/cb?")
    assert query(done.headers["Location"])["state"] == "st"


def test_no_code_is_issued_before_the_change(browser, make_account, rp):
    account = make_account(temporary=True)
    _, challenge = pkce_pair()
    browser.submit("/login", {"login": account["login"], "password": account["password"]})
    response = browser.authorize(response_type="code", client_id=rp["client_id"], redirect_uri="https://rp.example/cb",
                                 scope="openid", prompt="none", code_challenge=challenge, code_challenge_method="S256")
    assert query(response.headers["Location"])["error"] == "interaction_required"


def test_expired_temporary_password_gets_the_generic_error(app, browser, make_account):
    account = make_account(temporary=True)
    with app.app_context():
        db.session.execute(update(Account).values(temporary_password_expires_at=1))
        db.session.commit()
    page = browser.submit("/login", {"login": account["login"], "password": account["password"]})
    assert "Неверный логин или пароль." in page.get_data(as_text=True)


@pytest.mark.parametrize("old, new, repeat, message", [
    ("wrong", NEW, NEW, "Старый пароль введён неверно."),
    (None, NEW, NEW + "x", "Новые пароли не совпадают."),
    (None, "short", "short", "Пароль слишком короткий"),
    (None, None, None, "Новый пароль должен отличаться от старого."),
    (None, "77-0000001", "77-0000001", "не должен совпадать с логином"),
])
def test_policy_rejections_explain_why(browser, account, old, new, repeat, message):
    browser.submit("/login", {"login": account["login"], "password": account["password"]})
    old = account["password"] if old is None else old
    new = account["password"] if new is None else new
    response = _change(browser, old, new, repeat if repeat is not None else new)
    assert response.status_code == 200 and message in response.get_data(as_text=True)


def test_long_unicode_password_is_accepted_whole(app, browser, account):
    long_password = "пароль" * 11  # 66 characters, 132 bytes of UTF-8: past bcrypt's 72-byte limit
    browser.submit("/login", {"login": account["login"], "password": account["password"]})
    assert _change(browser, account["password"], long_password).status_code == 302
    other = Browser(app.test_client())
    assert other.submit("/login", {"login": account["login"], "password": long_password}).status_code == 302
    other = Browser(app.test_client())
    assert other.submit("/login", {"login": account["login"], "password": long_password[:-1]}).status_code == 200


def test_change_ends_other_sessions_but_keeps_this_one(app, browser, account):
    elsewhere = Browser(app.test_client())
    elsewhere.submit("/login", {"login": account["login"], "password": account["password"]})
    browser.submit("/login", {"login": account["login"], "password": account["password"]})
    assert _change(browser, account["password"], NEW).status_code == 302
    assert elsewhere.get("/").headers["Location"] == "/login"
    landing = browser.get("/")
    assert landing.status_code == 200 and "Пароль изменён." in landing.get_data(as_text=True)
    with app.app_context():
        assert len([s for s in db.session.scalars(select(SsoSession)) if s.ended_at is None]) == 1
        [changed] = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "account.password_changed"))
        assert (changed.account_id, changed.actor_type, changed.details) == (account["id"], "account", {})
