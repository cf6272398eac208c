"""Password reset by SMS (seed: «Сброс пароля к личному кабинету иностранного гражданина»), through the
Flask test client: the page's wording, the SMS, uniform answers, the captcha, the daily limits, the SMS
Aero gateway and bad input.

The captcha answer is fixed by replacing ``captcha.new_answer``; the clock, where it matters, by
replacing ``web.now`` (the views and sign-in read it there)."""

from __future__ import annotations

import datetime
import html
import logging
import re
import time
import zoneinfo

import pytest
from sqlalchemy import func
from sqlalchemy import select

from idp.extensions import db
from idp.models import Account
from idp.models import DailyCounter
from idp.services import passwords
from idp.views import reset as reset_view

from ..conftest import CAPTCHA_ANSWER as ANSWER
from ..conftest import PASSWORD
from ..conftest import _create_account
from ..helpers import Browser
from ..helpers import csrf_token
from ..helpers import outbox_reader

pytestmark = pytest.mark.usefixtures("known_captcha")

PHONE = "+79161234567"
HEADING = "Сброс пароля к личному кабинету иностранного гражданина"
SENT = "Новый пароль будет выслан на номер телефона, полученный при подаче заявления на патент."
LIMIT = "Функция сброса пароля будет доступна на следующий день"
CAPTCHA_WRONG = "Код на изображении введён неверно. Введите код с новой картинки."
SMS_FAILED = "Не удалось отправить СМС, попробуйте позже."
WRONG_CREDENTIALS = "Неверный логин или пароль."
NEW = "новый пароль для кабинета"
MOSCOW = zoneinfo.ZoneInfo("Europe/Moscow")

_ALERT = re.compile(r'<div class="error" role="alert">(.*?)</div>', re.S)
_SMS_PASSWORD = re.compile(r": ([" + passwords.TEMPORARY_ALPHABET + r"]{10})\. ")
_CSRF_VALUE = re.compile(r'(name="csrf_token" type="hidden" value=")[^"]+"')


@pytest.fixture
def outbox(app):
    """Messages the file backend wrote during this test, oldest first."""
    with outbox_reader(app.config["SMS_FILE_PATH"]) as read:
        yield read


def prepare(client, login: str, phone: str = PHONE, answer: str | None = ANSWER, image: bool = True) -> dict:
    """Open the reset page as a browser does (the page, then its captcha image); return the filled form."""
    page = client.get("/reset/")
    assert page.status_code == 200
    if image:
        assert client.get("/reset/captcha.png").status_code == 200
    data = {"csrf_token": csrf_token(page.get_data(as_text=True)), "login": login, "phone": phone}
    if answer is not None:
        data["captcha"] = answer
    return data


def ask(client, login: str, phone: str = PHONE, answer: str | None = ANSWER, image: bool = True):
    return client.post("/reset/", data=prepare(client, login, phone, answer, image))


def alert(response) -> str | None:
    match = _ALERT.search(response.get_data(as_text=True))
    return html.unescape(match.group(1)) if match else None


def sms_password(message: dict) -> str:
    match = _SMS_PASSWORD.search(message["text"])
    assert match, message["text"]
    return match.group(1)


def pending_hash(app, login: str) -> str | None:
    with app.app_context():
        return db.session.scalar(select(Account.reset_password_hash).filter_by(login=login))


def counted(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.coalesce(func.sum(DailyCounter.count), 0)))


def moscow(*args) -> int:
    return int(datetime.datetime(*args, tzinfo=MOSCOW).timestamp())


def assert_sent(response) -> None:
    assert (response.status_code, response.headers.get("Location")) == (302, "/reset/sent"), alert(response)


# --- the page -------------------------------------------------------------------------------------


def test_page_has_the_seed_wording(client):
    body = client.get("/reset/").get_data(as_text=True)
    for text in (
        HEADING,
        "Если вы забыли пароль для входа в личный кабинет, укажите следующую информацию и новый пароль будет "
        "выслан на телефон, указанный в заявлении на патент",
        '<label for="login">Логин (№ заявления на патент)</label>',
        '<label for="phone">Ваш номер телефона</label>',
        'placeholder="+7 (9XX) XXX-XX-XX"',
        "Телефон, указанный в заявлении на патент",
        '<img id="captcha-image" src="/reset/captcha.png"',
        ">Обновить</a>",
        '<label for="captcha">Код на изображении</label>',
        '<button type="submit">Прислать новый пароль</button>',
        '<a href="/login">вернуться на страницу входа</a>',
        "В случае возникновения проблем, связанных с доступом к Личному кабинету, обращайтесь в "
        '<a href="https://mc.mos.ru">ГБУ «Миграционный центр»</a>',
        "Если вы не используете номер телефона, полученный при подаче заявления на патент, для "
        "восстановления доступа обратитесь в Миграционный центр.",
    ):
        assert text in html.unescape(body), text


def test_captcha_image_is_an_uncached_png(client):
    response = client.get("/reset/captcha.png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert "no-store" in response.headers["Cache-Control"]


def test_sign_in_page_links_here(client):
    body = client.get("/login").get_data(as_text=True)
    assert '<a href="/reset/">не могу войти</a>' in body


def _note_lines(body: str) -> list[str]:
    note = body[body.index('<div class="note">'):]
    note = note[: note.index("</div>")]
    return [html.unescape(re.sub(r"<[^>]+>", "", p)).strip() for p in re.findall(r"<p>(.*?)</p>", note, re.S)]


ADDRESS, HOURS = "Москва, ул. Примерная, 1", "Ежедневно 8:00–20:00"


@pytest.mark.config(contacts={"address": ADDRESS, "phone": "", "hours": HOURS})
def test_contacts_that_are_set_appear_on_both_pages(client, account):
    for path in ("/reset/", "/reset/sent"):
        lines = _note_lines(client.get(path).get_data(as_text=True))
        assert lines[2:] == [ADDRESS, HOURS], (path, lines)


def test_no_empty_contact_lines_by_default(client):
    assert len(_note_lines(client.get("/reset/").get_data(as_text=True))) == 2


# --- a match --------------------------------------------------------------------------------------


def test_match_sends_one_sms_with_a_new_password_and_the_sign_in_address(app, client, account, outbox):
    response = ask(client, account["login"], "8 (916) 123-45-67")
    assert_sent(response)
    [message] = outbox()
    assert message["to"] == PHONE
    temporary = sms_password(message)
    assert "http://localhost/login" in message["text"]
    assert passwords.verify_password(temporary, pending_hash(app, account["login"]))

    page = client.get(response.headers["Location"])
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and HEADING in body and SENT in body
    assert '<a class="button" href="/login">на страницу входа</a>' in body


# 42 characters: the longest issuer the SMS text is sized for (idp/views/reset.py).
@pytest.mark.config(server={"issuer": "https://lichnyi-kabinet.migrantcentr.mos.r"})
def test_sms_fits_two_segments(client, account, outbox):
    assert_sent(ask(client, account["login"]))
    [message] = outbox()
    assert "https://lichnyi-kabinet.migrantcentr.mos.r/login" in message["text"]
    # A Cyrillic text goes as UCS-2: two segments carry 2 × 67 characters.
    assert len(message["text"]) <= 2 * 67, len(message["text"])


@pytest.mark.parametrize("typed", ["+7 916 123 45 67", "89161234567", "9161234567", "+7(916)123-45-67"])
def test_login_and_phone_may_be_typed_loosely(client, account, outbox, typed):
    assert_sent(ask(client, "77 0000001", typed))
    assert [m["to"] for m in outbox()] == [PHONE]


@pytest.mark.parametrize("locale, browser, opening", [
    ("en", "ru", "New password for your personal account: "),
    ("ru", "en", "Новый пароль от личного кабинета: "),
])
def test_sms_speaks_the_account_language_not_the_browser(app, make_account, outbox, locale, browser, opening):
    account = make_account(locale=locale)
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = browser
    assert_sent(ask(client, account["login"]))
    [message] = outbox()
    assert message["text"].startswith(opening), message["text"]
    assert passwords.verify_password(sms_password(message), pending_hash(app, account["login"]))


def _strip_csrf(body: str) -> str:
    return _CSRF_VALUE.sub(r'\1"', body)


def _observe(app, login: str, phone: str) -> tuple:
    client = app.test_client()
    response = ask(client, login, phone)
    headers = sorted((k, v) for k, v in response.headers.items() if k != "Set-Cookie")
    page = client.get(response.headers.get("Location", "/reset/"))
    return (response.status_code, headers, _strip_csrf(response.get_data(as_text=True)),
            page.status_code, _strip_csrf(page.get_data(as_text=True)))


def test_unknown_login_wrong_phone_and_match_look_the_same(app, account, outbox):
    unknown = _observe(app, "77-9999999", PHONE)
    wrong_phone = _observe(app, account["login"], "+7 916 000-00-00")
    assert outbox() == []
    match = _observe(app, account["login"], PHONE)
    assert len(outbox()) == 1
    assert unknown == wrong_phone == match
    assert match[0] == 302 and SENT in match[4]


@pytest.mark.config(reset={"response_floor_ms": 300})
def test_every_answer_takes_at_least_the_floor(app, account, outbox):
    took = {}
    for name, login in (("unknown", "77-9999999"), ("match", account["login"])):
        client = app.test_client()
        data = prepare(client, login)
        started = time.monotonic()
        assert_sent(client.post("/reset/", data=data))
        took[name] = time.monotonic() - started
    assert len(outbox()) == 1
    assert min(took.values()) >= 0.3, took


# --- the pending password -------------------------------------------------------------------------


def _sign_in(app, login: str, password: str):
    return Browser(app.test_client()).submit("/login", {"login": login, "password": password})


def test_old_password_keeps_working_and_voids_the_pending_one(app, client, account, outbox):
    assert_sent(ask(client, account["login"]))
    temporary = sms_password(outbox()[0])

    response = _sign_in(app, account["login"], PASSWORD)
    assert (response.status_code, response.headers["Location"]) == (302, "/")
    assert pending_hash(app, account["login"]) is None
    response = _sign_in(app, account["login"], temporary)
    assert response.status_code == 200 and alert(response) == WRONG_CREDENTIALS


def test_sms_password_signs_in_once_and_forces_the_change(app, client, account, outbox):
    assert_sent(ask(client, account["login"]))
    temporary = sms_password(outbox()[0])

    browser = Browser(app.test_client())
    response = browser.submit("/login", {"login": account["login"], "password": temporary})
    assert (response.status_code, response.headers["Location"]) == (302, "/password/change")
    assert pending_hash(app, account["login"]) is None
    change_page = browser.get("/password/change")
    body = change_page.get_data(as_text=True)
    assert "Вы вошли с временным паролем" in body and "сменить пароль" in body
    done = browser.submit("/password/change", {"old": temporary, "new": NEW, "repeat": NEW}, page=change_page)
    assert (done.status_code, done.headers["Location"]) == (302, "/")

    for stale in (PASSWORD, temporary):
        response = _sign_in(app, account["login"], stale)
        assert response.status_code == 200 and alert(response) == WRONG_CREDENTIALS
    response = _sign_in(app, account["login"], NEW)
    assert (response.status_code, response.headers["Location"]) == (302, "/")


def test_sms_password_expires_with_the_temporary_ttl(app, client, account, outbox, clock):
    assert_sent(ask(client, account["login"]))
    temporary = sms_password(outbox()[0])
    clock.now += app.config["PASSWORDS_TEMPORARY_TTL"]
    response = _sign_in(app, account["login"], temporary)
    assert response.status_code == 200 and alert(response) == WRONG_CREDENTIALS
    assert (_sign_in(app, account["login"], PASSWORD).status_code) == 302


# --- the captcha ----------------------------------------------------------------------------------


def test_wrong_captcha_sends_nothing_and_needs_a_new_image(client, account, outbox):
    response = ask(client, account["login"], answer="13579")
    assert response.status_code == 200 and alert(response) == CAPTCHA_WRONG
    assert 'value="13579"' not in response.get_data(as_text=True)
    # The right digits for the image already tried: that image is spent.
    response = ask(client, account["login"], image=False)
    assert alert(response) == CAPTCHA_WRONG
    assert outbox() == []
    assert_sent(ask(client, account["login"]))
    assert len(outbox()) == 1


def test_one_image_answers_one_post(client, account, outbox):
    data = prepare(client, account["login"])
    assert_sent(client.post("/reset/", data=data))
    response = client.post("/reset/", data=data)
    assert alert(response) == CAPTCHA_WRONG
    assert len(outbox()) == 1


def test_a_replayed_session_cookie_cannot_reuse_a_challenge(app, account, outbox):
    # The challenge id travels in the signed cookie; a saved copy of the cookie must not bring it back.
    client = app.test_client()
    data = prepare(client, account["login"])
    saved = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    assert_sent(client.post("/reset/", data=data))
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], saved)
    assert alert(client.post("/reset/", data=data)) == CAPTCHA_WRONG
    assert len(outbox()) == 1


@pytest.mark.parametrize("age, solved", [(-1, True), (0, False), (1, False)],
                         ids=["just-in-time", "at-ttl", "late"])
def test_captcha_expires_after_its_ttl(app, client, account, outbox, clock, age, solved):
    data = prepare(client, account["login"])
    clock.now += app.config["CAPTCHA_TTL"] + age
    response = client.post("/reset/", data=data)
    if solved:
        assert_sent(response)
    else:
        assert alert(response) == CAPTCHA_WRONG
    assert len(outbox()) == int(solved)


def test_captcha_is_checked_before_the_account(app, client, account, outbox, monkeypatch):
    calls = []
    real = reset_view.request_reset

    def spy(*args, **kwargs):
        calls.append(kwargs["login"])
        return real(*args, **kwargs)

    monkeypatch.setattr(reset_view, "request_reset", spy)
    for _ in range(3):
        assert alert(ask(client, account["login"], answer="02468")) == CAPTCHA_WRONG
    assert calls == [] and outbox() == [] and counted(app) == 0
    # Wrong digits used none of the day's three resets.
    for _ in range(3):
        assert_sent(ask(client, account["login"]))
    assert len(outbox()) == 3 and calls == [account["login"]] * 3


@pytest.mark.parametrize("answer", [None, "", "0" * 16])
def test_no_image_no_reset(client, account, outbox, answer):
    assert alert(ask(client, account["login"], answer=answer, image=False)) == CAPTCHA_WRONG
    assert outbox() == []


@pytest.mark.config(captcha={"enabled": False})
def test_without_captcha_no_image_is_needed(client, account, outbox):
    body = client.get("/reset/").get_data(as_text=True)
    assert "captcha.png" not in body and 'name="captcha"' not in body
    assert_sent(ask(client, account["login"], answer=None, image=False))
    assert len(outbox()) == 1


# --- daily limits ---------------------------------------------------------------------------------


def test_fourth_reset_of_the_day_is_refused(client, account, outbox):
    for _ in range(3):
        assert_sent(ask(client, account["login"]))
    response = ask(client, account["login"])
    assert response.status_code == 200 and alert(response) == LIMIT
    assert len(outbox()) == 3


def test_unknown_login_is_refused_after_three_the_same_way(client, account, outbox):
    for _ in range(3):
        assert_sent(ask(client, "77-9999999"))
    response = ask(client, "77 9999999")
    assert response.status_code == 200 and alert(response) == LIMIT
    # Another login is not affected.
    assert_sent(ask(client, account["login"]))
    assert len(outbox()) == 1


def test_a_new_day_starts_at_midnight_in_moscow(client, account, outbox, clock):
    clock.now = moscow(2026, 3, 10, 23, 59)
    for _ in range(3):
        assert_sent(ask(client, account["login"]))
    clock.now = moscow(2026, 3, 10, 23, 59, 30)
    assert alert(ask(client, account["login"])) == LIMIT
    # 00:00:30 in Moscow is still 21:00:30 of the 10th in UTC: a UTC day would refuse this one.
    clock.now = moscow(2026, 3, 11, 0, 0, 30)
    assert_sent(ask(client, account["login"]))
    assert len(outbox()) == 4


@pytest.mark.config(reset={"phone_daily_limit": 1})
def test_phone_limit_counts_sms_to_one_number(client, make_account, outbox):
    first = make_account(login="77-0000001")
    second = make_account(login="77-0000002")
    other = make_account(login="77-0000003", phone="+79031112233")
    assert_sent(ask(client, first["login"]))
    # The second account on the same phone gets the same answer, but no SMS.
    assert_sent(ask(client, second["login"]))
    assert_sent(ask(client, other["login"], "+79031112233"))
    assert [m["to"] for m in outbox()] == [PHONE, "+79031112233"]


@pytest.mark.config(reset={"ip_daily_limit": 2})
def test_ip_limit_counts_every_login_from_one_address(app, client, account, outbox):
    assert_sent(ask(client, "77-9999998"))
    assert_sent(ask(client, "77-9999999"))
    assert alert(ask(client, account["login"])) == LIMIT
    assert outbox() == []
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.20.30.40"
    assert_sent(ask(elsewhere, account["login"]))
    assert len(outbox()) == 1


@pytest.mark.config(reset={"sms_daily_budget": 1})
def test_spent_sms_budget_sends_nothing_and_alerts(client, make_account, outbox, caplog):
    first = make_account(login="77-0000001")
    second = make_account(login="77-0000002", phone="+79031112233")
    assert_sent(ask(client, first["login"]))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    caplog.set_level(logging.ERROR)
    response = ask(client, second["login"], "+79031112233")
    assert_sent(response)
    assert SENT in client.get("/reset/sent").get_data(as_text=True)
    assert [m["to"] for m in outbox()] == [PHONE]
    alerts = [r for r in caplog.records if r.levelno == logging.ERROR and "ALERT" in r.getMessage()]
    assert len(alerts) == 1, caplog.text


# --- SMS Aero -------------------------------------------------------------------------------------


def test_smsaero_delivers_the_reset_sms(aero_app, gateway):
    account = _create_account(aero_app)
    assert_sent(ask(aero_app.test_client(), account["login"]))
    [message] = gateway.received
    assert message["number"] == 79161234567
    assert passwords.verify_password(sms_password(message), pending_hash(aero_app, account["login"]))


@pytest.mark.parametrize("mode", ["reject", "garbage", "slow"])
def test_gateway_failure_changes_nothing_and_costs_no_attempt(aero_app, gateway, mode):
    account = _create_account(aero_app)
    client = aero_app.test_client()
    gateway.mode, gateway.delay = mode, 5
    response = ask(client, account["login"])
    assert response.status_code == 200 and alert(response) == SMS_FAILED
    assert pending_hash(aero_app, account["login"]) is None
    assert counted(aero_app) == 0

    gateway.mode = "ok"
    for _ in range(3):
        assert_sent(ask(client, account["login"]))
        stored = pending_hash(aero_app, account["login"])
        # The timed-out message may still land at the fake later; the stored password is from a new one.
        assert any(passwords.verify_password(sms_password(m), stored) for m in gateway.received)
    assert alert(ask(client, account["login"])) == LIMIT


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("login, phone, message", [
    ("77-0000001", "12345", "Введите номер телефона в формате +7 (9XX) XXX-XX-XX."),
    ("77-0000001", "телефон", "Введите номер телефона в формате +7 (9XX) XXX-XX-XX."),
    ("<script>alert(1)</script>", PHONE, "Проверьте номер заявления на патент."),
    ("77\x000000001", PHONE, "Проверьте номер заявления на патент."),
    ("77-0000001'; DROP TABLE accounts;--", PHONE, "Проверьте номер заявления на патент."),
    ("", PHONE, "Заполните все поля."),
    ("77-0000001", "", "Заполните все поля."),
    ("   ", PHONE, "Проверьте номер заявления на патент."),
    ("7" * 129, PHONE, "Заполните все поля."),
    ("77-0000001", "9" * 33, "Заполните все поля."),
], ids=["short-phone", "letters-phone", "markup-login", "nul-login", "quote-login", "no-login", "no-phone",
        "blanks", "long-login", "long-phone"])
def test_bad_input_gets_a_form_error(app, client, account, outbox, login, phone, message):
    response = ask(client, login, phone)
    assert response.status_code == 200 and alert(response) == message
    assert "<script>alert(1)</script>" not in response.get_data(as_text=True)
    assert outbox() == [] and counted(app) == 0


def test_missing_csrf_token_gets_the_400_page(client, account, outbox):
    client.get("/reset/captcha.png")
    response = client.post("/reset/", data={"login": account["login"], "phone": PHONE, "captcha": ANSWER})
    assert response.status_code == 400
    assert "Страница устарела. Обновите её и повторите попытку." in response.get_data(as_text=True)
    assert outbox() == []


def test_oversized_request_is_refused_not_parsed(client, account, outbox):
    data = prepare(client, "7" * 70000)
    response = client.post("/reset/", data=data)
    assert response.status_code == 413 and outbox() == []
