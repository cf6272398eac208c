"""The temporary password and its forced change (seed step 3)."""

import html

import pytest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from idp.extensions import db
from idp.models import Account
from idp.models import AuditEvent
from idp.models import PasswordChangeFlow
from idp.models import SsoSession

from ..helpers import Browser
from ..helpers import csrf_token
from ..helpers import pkce_pair
from ..helpers import query

NEW = "новый пароль для кабинета"


def _change(browser, old, new, repeat=None):
    return browser.submit(
        "/password/change", {"old": old, "new": new, "repeat": new if repeat is None else repeat}
    )


def test_temporary_password_leads_to_the_change_and_then_to_the_relying_party(browser, make_account, rp):
    account = make_account(temporary=True)
    _, challenge = pkce_pair()
    page = browser.authorize(
        response_type="code",
        client_id=rp["client_id"],
        redirect_uri="https://rp.example/cb",
        scope="openid",
        state="st",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    change_page = browser.sign_in(account["login"], account["password"], page=page)
    html = change_page.get_data(as_text=True)
    for text in ("Старый пароль", "Новый пароль", "Повторно введите новый пароль", "сменить пароль"):
        assert text in html
    path = change_page.request.full_path
    done = browser.follow(
        browser.submit(path, {"old": account["password"], "new": NEW, "repeat": NEW}, page=change_page)
    )
    assert done.status_code == 302 and done.headers["Location"].startswith("https://rp.example/cb?")
    assert query(done.headers["Location"])["state"] == "st"


def test_no_code_is_issued_before_the_change(browser, make_account, rp):
    account = make_account(temporary=True)
    _, challenge = pkce_pair()
    browser.submit("/login", {"login": account["login"], "password": account["password"]})
    response = browser.authorize(
        response_type="code",
        client_id=rp["client_id"],
        redirect_uri="https://rp.example/cb",
        scope="openid",
        prompt="none",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert query(response.headers["Location"])["error"] == "interaction_required"


def test_expired_temporary_password_gets_the_generic_error(app, browser, make_account):
    account = make_account(temporary=True)
    with app.app_context():
        db.session.execute(update(PasswordChangeFlow).values(expires_at=1))
        db.session.commit()
    page = browser.submit("/login", {"login": account["login"], "password": account["password"]})
    assert "Неверный логин или пароль." in page.get_data(as_text=True)


@pytest.mark.parametrize(
    "old, new, repeat, message",
    [
        ("wrong", NEW, NEW, "Старый пароль введён неверно."),
        (None, NEW, NEW + "x", "Новые пароли не совпадают."),
        (None, "short", "short", "Пароль слишком короткий"),
        (None, None, None, "Новый пароль должен отличаться от старого."),
        (None, "77-0000001", "77-0000001", "Пароль содержит ваш логин"),
    ],
)
def test_policy_rejections_explain_why(browser, account, old, new, repeat, message):
    browser.submit("/login", {"login": account["login"], "password": account["password"]})
    old = account["password"] if old is None else old
    new = account["password"] if new is None else new
    response = _change(browser, old, new, repeat if repeat is not None else new)
    assert response.status_code == 200 and message in response.get_data(as_text=True)


def test_long_unicode_password_is_accepted_whole(app, browser, account):
    # 67 characters, 123 bytes of UTF-8: past bcrypt's 72-byte limit
    long_password = "жёлтый трамвай едет мимо чайханы где пекут самсу и пьют зелёный чай"
    browser.submit("/login", {"login": account["login"], "password": account["password"]})
    assert _change(browser, account["password"], long_password).status_code == 302
    other = Browser(app.test_client())
    assert other.submit("/login", {"login": account["login"], "password": long_password}).status_code == 302
    other = Browser(app.test_client())
    assert (
        other.submit("/login", {"login": account["login"], "password": long_password[:-1]}).status_code == 200
    )


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
        [changed] = db.session.scalars(
            select(AuditEvent).where(AuditEvent.event == "account.password_changed")
        )
        assert (changed.account_id, changed.actor_type, changed.details) == (account["id"], "account", {})


PERSONAL = "Пароль содержит ваш логин, фамилию, имя, отчество или номер телефона. Придумайте другой."


@pytest.mark.parametrize(
    "login, names, password",
    [
        ("77-0000011", {"surname": "Каримов"}, "Каримов1990"),
        ("77-0000012", {"given_name": "Бахтиёр"}, "Бахтиёр!"),
        ("77-0000013", {"surname": "Иванов"}, "Иванов12"),
    ],
)
def test_forced_change_refuses_the_persons_own_names_then_takes_a_good_password(
    app, browser, make_account, login, names, password
):
    account = make_account(login=login, temporary=True, **names)
    change_page = browser.sign_in(account["login"], account["password"])
    assert change_page.request.path == "/password/change"
    assert "ряды клавиш и повторы, ваши логин, фамилию, имя, отчество и телефон" in change_page.get_data(
        as_text=True
    )
    refused = browser.submit(
        "/password/change", {"old": account["password"], "new": password, "repeat": password}
    )
    assert refused.status_code == 200 and PERSONAL in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Account, account["id"]).must_change_password
    done = browser.submit("/password/change", {"old": account["password"], "new": NEW, "repeat": NEW})
    assert done.status_code == 302
    with app.app_context():
        assert not db.session.get(Account, account["id"]).must_change_password


@pytest.mark.parametrize(
    "new, russian, english",
    [
        (
            "Рахимов1990",
            PERSONAL,
            "The password contains your login, surname, given name, patronymic or phone number. "
            "Choose another one.",
        ),
        (
            "moskva-patent-2024",
            "Пароль содержит слово, связанное с сервисом (например, «патент», «Москва» или «госуслуги»). "
            "Придумайте другой.",
            "The password contains a word related to this service (such as “patent”, “Moscow” or "
            "“gosuslugi”). Choose another one.",
        ),
        (
            "gfhjkm2024!",
            "Этот пароль слишком распространён или легко угадывается (например, частое слово с годом или ряд "
            "клавиш). Придумайте другой.",
            "This password is too common or easy to guess (a common word with a year, or a "
            "row of keys, for example). Choose another one.",
        ),
        (
            "zzzzzzzzzz",
            "Пароль состоит из повторяющихся или идущих подряд символов "
            "(например, «aaaaaaaa» или «12345678»). Придумайте другой.",
            "The password is made of repeated or consecutive characters (such as “aaaaaaaa” or "
            "“12345678”). Choose another one.",
        ),
    ],
)
def test_each_refusal_is_explained_in_the_pages_language(app, browser, account, new, russian, english):
    browser.submit("/login", {"login": account["login"], "password": account["password"]})
    response = _change(browser, account["password"], new)
    assert response.status_code == 200 and html.escape(russian, quote=False) in response.get_data(
        as_text=True
    )
    english_page = browser.get("/password/change", headers={"Accept-Language": "en"})
    response = browser.client.post(
        "/password/change",
        headers={"Accept-Language": "en"},
        data={
            "csrf_token": csrf_token(english_page.get_data(as_text=True)),
            "old": account["password"],
            "new": new,
            "repeat": new,
        },
    )
    assert response.status_code == 200 and html.escape(english, quote=False) in response.get_data(
        as_text=True
    )


@pytest.mark.config(login={"max_failures": 3, "captcha_after": 10})
def test_wrong_current_passwords_at_the_change_count_as_failed_sign_ins(app, browser, account):
    """Issue 10: /password/change guesses did not feed the lockout, so a borrowed session could guess
    the current password without limit. They count now, and reach the lock like sign-in failures."""
    browser.submit("/login", {"login": account["login"], "password": account["password"]})
    for _ in range(2):
        _change(browser, "a wrong guess", NEW)
    with app.app_context():
        assert db.session.scalar(select(Account.failed_logins)) == 2
    _change(browser, "a wrong guess", NEW)
    with app.app_context():
        assert db.session.scalar(select(Account.locked_until)) > 0
    other = Browser(app.test_client())
    refused = other.submit("/login", {"login": account["login"], "password": account["password"]})
    assert refused.status_code == 200 and "Неверный логин или пароль." in refused.get_data(as_text=True)


def test_staff_wrong_current_passwords_count_too(app, admin_client):
    from idp.models import StaffUser

    client = admin_client
    page = client.get("/admin/password")
    data = {"csrf_token": csrf_token(page.get_data(as_text=True)), "old": "a wrong guess"}
    data.update(new="a brand new staff pass phrase", repeat="a brand new staff pass phrase")
    assert client.post("/admin/password", data=data).status_code == 200
    with app.app_context():
        assert db.session.scalar(select(StaffUser.failed_logins)) == 1


@pytest.mark.config(login={"rate_limit": "3/minute"})
def test_change_posts_past_the_address_limit_are_refused_before_the_password_check(app, account, monkeypatch):
    """/password/change takes [login] rate_limit too (per address, a count of its own beside the sign-in
    page's): the fourth POST within the minute is answered 429 before the current password is checked
    or anything is written."""
    from idp.services import passwords

    browser = Browser(app.test_client())
    # Signed in from another address: only the change's own POSTs count here.
    page = browser.client.get("/login")
    signed_in = browser.client.post(
        "/login",
        data={"csrf_token": csrf_token(page.get_data(as_text=True)), **account},
        environ_base={"REMOTE_ADDR": "127.0.0.2"},
    )
    assert signed_in.status_code == 302
    checked = []
    check = passwords.verify_password
    monkeypatch.setattr(
        passwords, "verify_password", lambda *args, **kwargs: checked.append(1) or check(*args, **kwargs)
    )
    mismatched = [_change(browser, account["password"], NEW, repeat=NEW + "!") for _ in range(3)]
    assert [response.status_code for response in mismatched] == [200, 200, 200]
    assert len(checked) == 3

    def state():
        with app.app_context():
            return db.session.scalar(select(Account.password_hash)), db.session.scalar(
                select(func.count()).select_from(AuditEvent)
            )

    before = state()
    # A well-formed change with the right current password: refused all the same, and nothing changes.
    refused = _change(browser, account["password"], NEW)
    assert refused.status_code == 429
    assert "Слишком много попыток. Подождите и повторите." in refused.get_data(as_text=True)
    assert len(checked) == 3
    assert state() == before
