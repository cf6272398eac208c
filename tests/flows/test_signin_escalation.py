"""Escalation instead of a lock (issue 10; services.signin_throttle): after a few failures a login needs
the captcha, an address that keeps failing must wait («Попробуйте снова через N с.», answered at once),
and the hard lock comes only at NIST's 100 — so an attacker cannot keep the owner out."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import Account
from idp.models import StaffUser
from idp.services import passwords

from ..helpers import captcha_token
from ..helpers import csrf_token
from ..helpers import redis_url
from ..staff import create_member
from ..staff import fresh_code

GENERIC = "Неверный логин или пароль."
CAPTCHA_OWED = "Чтобы войти, введите также код с картинки."
WAIT = "Слишком много неудачных попыток входа. Попробуйте снова через"
ATTACKER, OWNER = "203.0.113.7", "198.51.100.9"
# The counts in this process (the tests' default) and in Redis, as in production, where a sign-in reads
# and clears several of them in one command each (services.signin_throttle.counts and clear).
STORAGES = [
    pytest.param(uri, marks=pytest.mark.config(rate_limits={"storage_uri": uri}), id=uri.split(":")[0])
    for uri in ("memory://", redis_url(5))
]


class Person:
    """A browser at one address: GETs the form, POSTs it back with the CSRF token and, when the page
    carries a captcha and ``answer`` is given, the digits."""

    def __init__(self, app, ip: str, path: str = "/login"):
        self.client, self.ip, self.path = app.test_client(), ip, path
        self.page = self.client.get(path, environ_base={"REMOTE_ADDR": ip}).get_data(as_text=True)

    def reload(self) -> None:
        self.page = self.client.get(self.path, environ_base={"REMOTE_ADDR": self.ip}).get_data(as_text=True)

    def has_captcha(self) -> bool:
        return 'name="captcha_token"' in self.page

    def post(self, answer: str | None = None, **fields) -> str:
        data = {"csrf_token": csrf_token(self.page), **fields}
        if self.has_captcha():
            data["captcha_token"] = captcha_token(self.page)
            if answer is not None:
                data["captcha"] = answer
        response = self.client.post(self.path, data=data, environ_base={"REMOTE_ADDR": self.ip})
        self.status, self.location = response.status_code, response.headers.get("Location")
        self.page = response.get_data(as_text=True) if response.status_code == 200 else self.page
        return self.page


def _failures(app) -> int:
    with app.app_context():
        return db.session.scalar(select(Account.failed_logins))


@pytest.mark.parametrize("storage_uri", STORAGES)
def test_fifty_wrong_attempts_cannot_keep_the_owner_out(
    app, clock, account, known_captcha, monkeypatch, storage_uri
):
    """The issue's bar: 50 wrong passwords on a known login (the attacker solving every captcha and
    waiting out every delay), then the owner, from their own address, signs in with the right password
    and a solved captcha. No request sleeps."""
    monkeypatch.setattr(time, "sleep", _no_sleep)
    attacker = Person(app, ATTACKER)
    refused_unchecked = 0
    wrong = 0
    while wrong < 50:
        page = attacker.post(known_captcha, login=account["login"], password=f"guess {wrong}")
        if WAIT in page:
            refused_unchecked += 1
            clock.now += 900  # the longest wait ([login] max_delay)
            attacker.reload()  # a new captcha: the one shown has expired meanwhile
            continue
        assert GENERIC in page and attacker.status == 200
        wrong += 1
    assert refused_unchecked > 0, "the attacker's address never had to wait"
    assert _failures(app) == 50  # counted, but far from the lock at 100
    owner = Person(app, OWNER)
    assert not owner.has_captcha()  # a fresh address gets the plain form…
    page = owner.post(login=account["login"], password=account["password"])
    assert CAPTCHA_OWED in page and owner.has_captcha()  # …the login owes a captcha, the password unchecked
    owner.post(known_captcha, login=account["login"], password=account["password"])
    assert owner.status == 302 and owner.location == "/"
    assert _failures(app) == 0
    # The sign-in forgot the login's failures: from yet another address no captcha is owed for it.
    again = Person(app, "192.0.2.200")
    again.post(login=account["login"], password=account["password"])
    assert again.status == 302


def _no_sleep(seconds):
    raise AssertionError(f"a request handler called time.sleep({seconds})")


@pytest.mark.parametrize("login", ["77-0000001", "99-9999999", "not a login"])
def test_a_login_needs_the_captcha_after_three_failures_known_or_not(app, account, known_captcha, login):
    person = Person(app, OWNER)
    for _ in range(3):
        assert GENERIC in person.post(login=login, password="wrong password")
    assert person.has_captcha()
    # Another address, the same login: the captcha is owed before the password is looked at.
    other = Person(app, "192.0.2.55")
    assert CAPTCHA_OWED in other.post(login=login, password="wrong password")
    assert "Код на изображении введён неверно" in other.post("00000", login=login, password="x")
    assert GENERIC in other.post(known_captcha, login=login, password="wrong password")


@pytest.mark.parametrize("storage_uri", STORAGES)
def test_a_waiting_address_is_refused_at_once_without_a_password_check(
    app, clock, account, known_captcha, monkeypatch, storage_uri
):
    attacker = Person(app, ATTACKER)
    for number in range(10):  # [login] delay_after
        assert GENERIC in attacker.post(known_captcha, login=f"77-00000{number + 10}", password="x")
    checks = []
    with monkeypatch.context() as patch:
        patch.setattr(passwords, "verify_password", lambda *args, **kwargs: checks.append(args) or True)
        patch.setattr(time, "sleep", _no_sleep)
        page = attacker.post(known_captcha, login=account["login"], password=account["password"])
    assert WAIT in page and attacker.status == 200 and checks == []
    clock.now += 1  # 1 s after the 10th failure, doubling after each further one
    attacker.post(known_captcha, login=account["login"], password=account["password"])
    assert attacker.status == 302


@pytest.mark.parametrize("storage_uri", STORAGES)
def test_getting_in_forgets_the_logins_failures_and_a_clean_sign_in_clears_nothing(
    app, account, monkeypatch, storage_uri
):
    """The owner getting in clears the login's counts, one DEL, only when the check before the password
    found one set: a sign-in with nothing counted sends no DEL (issue 12)."""
    from idp.services import signin_throttle

    cleared = []
    clear = signin_throttle.clear
    monkeypatch.setattr(
        signin_throttle, "clear", lambda storage, keys: cleared.append(keys) or clear(storage, keys)
    )
    owner = Person(app, OWNER)
    owner.post(login=account["login"], password=account["password"])
    assert owner.status == 302 and cleared == []
    # Two failures (the captcha comes with the third), then the owner gets in: both are forgotten, so two
    # more from elsewhere still owe no captcha.
    for _ in range(2):
        assert GENERIC in Person(app, ATTACKER).post(login=account["login"], password="wrong password")
    owner = Person(app, OWNER)
    owner.post(login=account["login"], password=account["password"])
    assert owner.status == 302 and len(cleared) == 1
    other = Person(app, "192.0.2.66")
    for _ in range(2):
        assert GENERIC in other.post(login=account["login"], password="wrong password")
    assert not other.has_captcha()


def test_the_address_keeps_its_count_when_it_signs_in_somewhere(app, account, known_captcha):
    """Signing in to an account of one's own must not wipe what one's guessing counted."""
    attacker = Person(app, ATTACKER)
    for number in range(10):
        attacker.post(known_captcha, login=f"77-00000{number + 10}", password="x")
    attacker.post(known_captcha, login=account["login"], password=account["password"])
    assert Person(app, ATTACKER).has_captcha()  # [login] ip_captcha_after = 10


@pytest.mark.parametrize("storage_uri", STORAGES)
def test_the_addresses_of_one_ipv6_64_are_counted_as_one(app, clock, account, known_captcha, storage_uri):
    """An IPv6 customer holds a whole /64 (services.net.rate_key): a fresh address of it for every guess
    is still the same address to the escalation; the next /64 is someone else."""
    for number in range(10):  # [login] ip_captcha_after and delay_after, each from a new address
        rotating = Person(app, f"2001:db8:1:2:{number:x}::{number + 1:x}")
        assert GENERIC in rotating.post(known_captcha, login=f"77-00000{number + 10}", password="x")
    neighbour = Person(app, "2001:db8:1:2:ffff:ffff:ffff:fffe")
    assert neighbour.has_captcha()
    assert WAIT in neighbour.post(known_captcha, login=account["login"], password=account["password"])
    elsewhere = Person(app, "2001:db8:1:3::1")
    assert not elsewhere.has_captcha()
    elsewhere.post(login=account["login"], password=account["password"])
    assert elsewhere.status == 302


def test_an_ipv4_mapped_address_counts_as_its_ipv4_address(app, account, known_captcha):
    for number in range(10):
        Person(app, ATTACKER).post(known_captcha, login=f"77-00000{number + 10}", password="x")
    assert Person(app, f"::ffff:{ATTACKER}").has_captcha()
    assert not Person(app, "::ffff:203.0.113.8").has_captcha()


@pytest.mark.config(login={"max_failures": 5, "captcha_after": 50, "delay_after": 50, "ip_captcha_after": 50})
def test_the_hard_lock_refuses_the_password_but_not_an_operator_reissue(app, account, make_account):
    person = Person(app, OWNER)
    for _ in range(5):
        person.post(login=account["login"], password="wrong password")
    assert GENERIC in person.post(login=account["login"], password=account["password"])
    with app.app_context():
        from idp.services import accounts
        from tests.helpers import settings_of

        row = db.session.scalar(select(Account))
        assert row.locked_until > 0
        accounts.set_temporary_password(
            db.session, row, "Temp0rary-Pass", now=int(time.time()), settings=settings_of(app).passwords
        )
        db.session.commit()
        assert row.failed_logins == 0 and row.locked_until == 0
    person.post(login=account["login"], password="Temp0rary-Pass")
    assert person.status == 302


# -- staff ----------------------------------------------------------------------------------------------


def test_staff_sign_in_escalates_too(app, clock, known_captcha):
    admin = create_member(app, role="admin")
    attacker = Person(app, ATTACKER, "/admin/login")
    for _ in range(3):
        page = attacker.post(known_captcha, username=admin["username"], password="wrong", code="000000")
        assert "Неверное имя пользователя, пароль или код." in page
    owner = Person(app, OWNER, "/admin/login")
    fields = {"username": admin["username"], "password": admin["password"]}
    assert CAPTCHA_OWED in owner.post(code=fresh_code(admin, clock.now), **fields)
    owner.post(known_captcha, code=fresh_code(admin, clock.now), **fields)
    assert owner.status == 302


def test_staff_codes_are_limited_once_the_password_is_right(app, clock, known_captcha):
    """Six digits must not get 100 guesses: after [login] totp_failures (5) wrong codes with the right
    password the member is locked, and the right code no longer helps."""
    admin = create_member(app, role="admin")
    fields = {"username": admin["username"], "password": admin["password"]}
    person = Person(app, OWNER, "/admin/login")
    for guess in range(5):
        person.post(known_captcha, code=f"{guess:06d}", **fields)
    with app.app_context():
        assert db.session.scalar(select(StaffUser.locked_until)) > clock.now
    person.post(known_captcha, code=fresh_code(admin, clock.now), **fields)
    assert person.status == 200 and "Неверное имя пользователя, пароль или код." in person.page
