"""Password reset by SMS (seed: «Сброс пароля к личному кабинету иностранного гражданина»), through the
Flask test client: the page's wording, the SMS, uniform answers, the captcha, the daily limits, the SMS
Aero gateway and bad input.

The captcha answer is fixed by replacing ``captcha.new_answer``; the time, where it matters, is set
through the ``clock`` fixture (the app's injected clock)."""

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
from sqlalchemy import update

from idp import create_app
from idp.extensions import db
from idp.models import Account
from idp.models import AuditEvent
from idp.models import DailyCounter
from idp.models import ResetFlow
from idp.services import captcha
from idp.services import passwords
from idp.services.selfservice import reset
from idp.views import reset as reset_view

from ..conftest import CAPTCHA_ANSWER as ANSWER
from ..conftest import PASSWORD
from ..conftest import _create_account
from ..conftest import make_config
from ..helpers import Browser
from ..helpers import captcha_fields
from ..helpers import captcha_token
from ..helpers import csrf_token
from ..helpers import daily_counts
from ..helpers import drain_outbox
from ..helpers import outbox_reader
from ..helpers import settings_of
from ..helpers import table_rows

pytestmark = pytest.mark.usefixtures("known_captcha")

PHONE = "+79161234567"
HEADING = "Сброс пароля к личному кабинету иностранного гражданина"
SENT = "Новый пароль будет выслан на номер телефона, полученный при подаче заявления на патент."
LIMIT = "Функция сброса пароля будет доступна на следующий день"
CAPTCHA_WRONG = "Код на изображении введён неверно. Введите код с новой картинки."
WRONG_CREDENTIALS = "Неверный логин или пароль."
NEW = "новый пароль для кабинета"
MOSCOW = zoneinfo.ZoneInfo("Europe/Moscow")

_ALERT = re.compile(r'<div id="form-error" class="error" role="alert">(.*?)</div>', re.S)
_SMS_PASSWORD = re.compile(r": ([" + passwords.TEMPORARY_ALPHABET + r"]{10})\. ")
_CSRF_VALUE = re.compile(r'(name="csrf_token" type="hidden" value=")[^"]+"')


def deliver(app) -> None:
    """What the server processes' background loop does: the durable outbox sends the queued reset SMS."""
    drain_outbox(app)


@pytest.fixture
def outbox(app):
    """Messages the file backend wrote during this test, oldest first (after the outbox delivered)."""
    with outbox_reader(settings_of(app).sms.file_path) as read:

        def delivered() -> list[dict]:
            deliver(app)
            return read()

        yield delivered


def prepare(
    client, login: str, phone: str = PHONE, answer: str | None = ANSWER, with_captcha: bool = True
) -> dict:
    """Open the reset page as a browser does (the page, then its captcha image); return the filled form."""
    page = client.get("/reset/")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    data = {"csrf_token": csrf_token(body), "login": login, "phone": phone}
    if with_captcha:
        data.update(captcha_fields(client, body, answer))
    return data


def ask(client, login: str, phone: str = PHONE, answer: str | None = ANSWER, with_captcha: bool = True):
    return client.post("/reset/", data=prepare(client, login, phone, answer, with_captcha))


def alert(response) -> str | None:
    match = _ALERT.search(response.get_data(as_text=True))
    return html.unescape(match.group(1)) if match else None


def sms_password(message: dict) -> str:
    match = _SMS_PASSWORD.search(message["text"])
    assert match, message["text"]
    return match.group(1)


def pending_hash(app, login: str) -> str | None:
    with app.app_context():
        query = select(ResetFlow.password_hash).join(Account, Account.id == ResetFlow.account_id)
        return db.session.scalar(query.where(Account.login == login, ResetFlow.state == "sent"))


def pending_matches(app, password: str, stored: str | None) -> bool:
    """Whether ``password`` is a stored pending reset's (a keyed digest: services.selfservice.reset)."""
    return stored is not None and reset._matches(settings_of(app).server.secret_key, password, stored)


def reset_states(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(ResetFlow.state).order_by(ResetFlow.id)))


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
        '<img id="captcha-image" src="/captcha/image.png?c=',
        'alt="Картинка с кодом из 5 цифр. Если не видно, нажмите «Прослушать код» или «Обновить».">',
        '<a id="captcha-listen" href="/captcha/audio.wav?c=',
        '">Прослушать код</a>',
        '<a id="captcha-refresh" href="/reset/" data-new="/captcha/new">Обновить</a>',
        '<label for="captcha">Код на изображении</label>',
        '<button type="submit">Прислать новый пароль</button>',
        '<a href="/login">вернуться на страницу входа</a>',
        "В случае возникновения проблем, связанных с доступом к Личному кабинету, обращайтесь в "
        '<a href="https://mc.mos.ru">ГБУ «Миграционный центр»</a>',
        "Если вы не используете номер телефона, полученный при подаче заявления на патент, для "
        "восстановления доступа обратитесь в Миграционный центр.",
    ):
        assert text in html.unescape(body), text


def test_sign_in_page_links_here(client):
    body = client.get("/login").get_data(as_text=True)
    assert '<a href="/reset/">не могу войти</a>' in body


def _note_lines(body: str) -> list[str]:
    note = body[body.index('<div class="note">') :]
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
    assert pending_matches(app, temporary, pending_hash(app, account["login"]))

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


@pytest.mark.parametrize(
    "locale, browser, opening",
    [
        ("en", "ru", "New password for your personal account: "),
        ("ru", "en", "Новый пароль личного кабинета: "),
    ],
)
def test_sms_speaks_the_account_language_not_the_browser(app, make_account, outbox, locale, browser, opening):
    account = make_account(locale=locale)
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = browser
    assert_sent(ask(client, account["login"]))
    [message] = outbox()
    assert message["text"].startswith(opening), message["text"]
    assert pending_matches(app, sms_password(message), pending_hash(app, account["login"]))


def _strip_csrf(body: str) -> str:
    return _CSRF_VALUE.sub(r'\1"', body)


def _observe(app, login: str, phone: str) -> tuple:
    client = app.test_client()
    response = ask(client, login, phone)
    # The cookie and the request id differ on every answer, whatever matched; so does the address's
    # remaining allowance of [limits] form_rate_limit (it counts every POST alike).
    headers = sorted(
        (k, v)
        for k, v in response.headers.items()
        if k not in ("Set-Cookie", "X-Request-Id", "Retry-After") and not k.startswith("X-RateLimit-")
    )
    page = client.get(response.headers.get("Location", "/reset/"))
    return (
        response.status_code,
        headers,
        _strip_csrf(response.get_data(as_text=True)),
        page.status_code,
        _strip_csrf(page.get_data(as_text=True)),
    )


# A phone the SMS sender refuses ([sms] allowed_country_codes is ["7"]): the CLI and the console refuse
# it now, but an account may hold one from before (issue 10: the reset page was an oracle for it).
UNREACHABLE = "+998901234567"


def legacy_account(app, make_account, login: str) -> dict:
    """An account whose phone no SMS can reach, as a row from before the CLI and console refused it."""
    created = make_account(login=login)
    with app.app_context():
        db.session.execute(update(Account).where(Account.id == created["id"]).values(phone=UNREACHABLE))
        db.session.commit()
    return created


def test_unknown_login_wrong_phone_and_match_look_the_same(app, account, make_account, outbox):
    legacy = legacy_account(app, make_account, "77-0000009")
    unknown = _observe(app, "77-9999999", PHONE)
    wrong_phone = _observe(app, account["login"], "+7 916 000-00-00")
    unreachable = _observe(app, legacy["login"], UNREACHABLE)
    assert outbox() == []
    match = _observe(app, account["login"], PHONE)
    assert len(outbox()) == 1
    assert unknown == wrong_phone == unreachable == match
    assert match[0] == 302 and SENT in match[4]


def test_a_miss_and_a_match_write_the_same_rows_of_every_table(app, make_account, outbox):
    """Issue 10: the work a request does must not tell whether it matched. Unknown login, wrong phone and
    a match each add the same rows to every table (the day's counts, one flow, one outbox message, the
    answered captcha), and answer the same; the SMS allowance and the account's history are written by
    the outbox afterwards, for the match only."""
    wrong, matching = make_account(login="77-0000001"), make_account(login="77-0000002")
    legacy = legacy_account(app, make_account, "77-0000003")
    # The address's day count exists from here on: each login below then adds its own count alike.
    assert_sent(ask(app.test_client(), "77-9999990"))
    observed, written = [], []
    for login, phone in (
        ("77-9999999", PHONE),
        (wrong["login"], "+7 916 000-00-00"),
        (legacy["login"], UNREACHABLE),
        (matching["login"], PHONE),
    ):
        before = table_rows(app)
        observed.append(_observe(app, login, phone))
        after = table_rows(app)
        written.append({name: after[name] - before[name] for name in after if after[name] != before[name]})
    assert written[0] == written[1] == written[2] == written[3], written
    assert written[0]["reset_flows"] == 1 and written[0]["outbox_messages"] == 1
    assert "audit_events" not in written[0]
    assert observed[0] == observed[1] == observed[2] == observed[3]
    assert [m["to"] for m in outbox()] == [PHONE]
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).filter_by(event="account.reset_sent")).all()
        assert [e.account_id for e in events] == [matching["id"]]


@pytest.mark.config(limits={"form_rate_limit": "100/minute"})
def test_an_account_no_sms_can_reach_is_answered_as_a_miss_to_the_end(app, make_account, outbox):
    """Issue 10: for an account whose phone is outside [sms] allowed_country_codes the page answered
    differently when login and phone matched. Now it is a miss throughout: each POST up to and past
    [limits] daily_limit answers as for an unknown login and a wrong phone, and, with the outbox run
    after each, writes the same rows and counts; no SMS is sent and the account's history is untouched."""
    wrong, legacy = (
        legacy_account(app, make_account, "77-0000001"),
        legacy_account(app, make_account, "77-0000002"),
    )
    assert_sent(ask(app.test_client(), "77-9999990"))  # the address's day count, as above
    deliver(app)
    tries = settings_of(app).limits.daily_limit + 1
    cases = {}
    # The limit's page shows the login and phone typed: each case types ones of the same length, and
    # they are left out of the comparison.
    unknown, other_phone = "779999999", "+998901234560"
    assert len(unknown) == len(wrong["login"]) == len(legacy["login"])
    for login, phone in (
        (unknown, UNREACHABLE),
        (wrong["login"], other_phone),
        (legacy["login"], UNREACHABLE),
    ):
        steps = []
        for _ in range(tries):
            before, counts_before = table_rows(app), daily_counts(app)
            status, headers, body, then, page = _observe(app, login, phone)
            body, page = (text.replace(login, "LOGIN").replace(phone, "PHONE") for text in (body, page))
            # Past the limit there is no redirect, and a fresh /reset/ carries a new captcha.
            seen = (status, headers, body) + ((then, page) if status == 302 else ())
            deliver(app)
            after, counts_after = table_rows(app), daily_counts(app)
            rows = {name: after[name] - before[name] for name in after if after[name] != before[name]}
            counts = {key: counts_after[key] - counts_before.get(key, 0) for key in counts_after}
            steps.append((seen, rows, counts))
        cases[login] = steps
    missed, wrong_phone, unreachable = cases.values()
    assert missed == wrong_phone == unreachable
    assert missed[0][0][0] == 302 and missed[-1][0][0] == 200 and LIMIT in missed[-1][0][2]
    assert outbox() == []
    with app.app_context():
        assert db.session.scalars(select(AuditEvent)).all() == []


def test_a_decoy_flow_never_signs_anyone_in(app, client, account, outbox):
    """A miss's flow belongs to no account: the outbox sends nothing for it and voids it, and even a
    decoy row holding a valid password digest (as if the outbox had made one) signs nobody in."""
    assert_sent(ask(client, account["login"], "+7 916 000-00-00"))
    assert_sent(ask(client, "77-9999999"))
    assert outbox() == []
    assert reset_states(app) == ["void", "void"]
    temporary = passwords.generate_temporary_password()
    with app.app_context():
        for flow in db.session.scalars(select(ResetFlow)):
            assert flow.account_id is None
            flow.state, flow.expires_at = "sent", flow.created_at + 3600
            flow.password_hash = reset.password_digest(settings_of(app).server.secret_key, temporary)
        db.session.commit()
    response = _sign_in(app, account["login"], temporary)
    assert response.status_code == 200 and alert(response) == WRONG_CREDENTIALS
    assert reset_states(app) == ["sent", "sent"]  # not used by anyone
    response = _sign_in(app, account["login"], PASSWORD)
    assert (response.status_code, response.headers["Location"]) == (302, "/")


def _no_sleep(seconds):
    raise AssertionError(f"a request handler called time.sleep({seconds})")


def test_no_answer_waits_for_the_gateway_and_none_sleeps(aero_app, gateway, monkeypatch):
    """Issue 10: every POST slept 1.5 s to look alike, so 8 connections stalled 2 workers. Now nothing
    waits: a miss and a match answer alike at once, the match's SMS leaves from the outbox afterwards."""
    account = _create_account(aero_app)
    with monkeypatch.context() as patch:
        patch.setattr(time, "sleep", _no_sleep)
        for login in ("77-9999999", account["login"]):
            assert_sent(ask(aero_app.test_client(), login))
    assert gateway.received == []  # nothing was sent inside a request
    deliver(aero_app)
    [message] = gateway.received
    assert pending_matches(aero_app, sms_password(message), pending_hash(aero_app, account["login"]))


@pytest.mark.config(limits={"form_rate_limit": "3/minute"})
def test_the_address_limit_runs_before_the_captcha_and_any_write(app, account, monkeypatch):
    """[limits] form_rate_limit: the fourth POST from one address within a minute is refused (429)
    before the captcha is looked at or anything is written."""
    for _ in range(3):
        assert_sent(ask(app.test_client(), "77-9999999"))
    before = counted(app)
    redeemed = []
    monkeypatch.setattr(captcha, "redeem", lambda *args, **kwargs: redeemed.append(args) or True)
    response = ask(app.test_client(), account["login"])
    assert response.status_code == 429
    assert redeemed == [] and counted(app) == before


def _at(app, address: str):
    """A browser at ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


@pytest.mark.config(limits={"form_rate_limit": "3/minute"})
def test_the_address_limit_counts_an_ipv6_customer_by_its_64(app, account):
    """[limits] form_rate_limit counts a client's /64 (services.net.rate_key): fresh addresses of one
    customer's prefix are still one client; the next /64 is someone else."""
    for number in range(3):
        assert_sent(ask(_at(app, f"2001:db8:1:2::{number + 1}"), "77-9999999"))
    assert ask(_at(app, "2001:db8:1:2:ffff::7"), account["login"]).status_code == 429
    assert_sent(ask(_at(app, "2001:db8:1:3::1"), account["login"]))


@pytest.mark.config(limits={"form_rate_limit": "3/minute"})
def test_the_address_limit_counts_an_ipv4_mapped_address_as_its_ipv4_address(app, account):
    for _ in range(3):
        assert_sent(ask(_at(app, "192.0.2.7"), "77-9999999"))
    assert ask(_at(app, "::ffff:192.0.2.7"), account["login"]).status_code == 429
    assert_sent(ask(_at(app, "192.0.2.8"), account["login"]))


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
    clock.now += settings_of(app).passwords.temporary_ttl
    response = _sign_in(app, account["login"], temporary)
    assert response.status_code == 200 and alert(response) == WRONG_CREDENTIALS
    assert (_sign_in(app, account["login"], PASSWORD).status_code) == 302


# --- the captcha ----------------------------------------------------------------------------------


def test_wrong_captcha_sends_nothing_and_needs_a_new_image(client, account, outbox):
    data = prepare(client, account["login"], answer="13579")
    response = client.post("/reset/", data=data)
    assert response.status_code == 200 and alert(response) == CAPTCHA_WRONG
    body = response.get_data(as_text=True)
    assert 'value="13579"' not in body
    # The page shows a new challenge; the one already tried is spent, even with the right digits.
    assert captcha_token(body) != data["captcha_token"]
    response = client.post("/reset/", data={**data, "captcha": ANSWER})
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


def test_a_challenge_used_on_one_host_is_refused_on_another(app, account, outbox):
    # Two app instances (two workers or hosts) share only the database and the secret key: the form and
    # the cookie the first one answered, replayed to the second, do not pass.
    first = app.test_client()
    data = prepare(first, account["login"])
    assert_sent(first.post("/reset/", data=data))
    other = create_app(make_config())
    other.config["TESTING"] = True
    second = other.test_client()
    cookie = app.config["SESSION_COOKIE_NAME"]
    second.set_cookie(cookie, first.get_cookie(cookie).value)
    assert alert(second.post("/reset/", data=data)) == CAPTCHA_WRONG
    assert len(outbox()) == 1
    # The second host does take a challenge of the first that nobody answered yet.
    assert_sent(second.post("/reset/", data=prepare(first, account["login"])))
    assert len(outbox()) == 2
    with other.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(
    "age, solved", [(-1, True), (0, False), (1, False)], ids=["just-in-time", "at-ttl", "late"]
)
def test_captcha_expires_after_its_ttl(app, client, account, outbox, clock, age, solved):
    data = prepare(client, account["login"])
    clock.now += settings_of(app).captcha.ttl + age
    response = client.post("/reset/", data=data)
    if solved:
        assert_sent(response)
    else:
        assert alert(response) == CAPTCHA_WRONG
    assert len(outbox()) == int(solved)


def test_captcha_is_checked_before_the_account(app, client, account, outbox, monkeypatch):
    calls = []
    real = reset_view.reset.request

    def spy(*args, **kwargs):
        calls.append(kwargs["login"])
        return real(*args, **kwargs)

    monkeypatch.setattr(reset_view.reset, "request", spy)
    for _ in range(3):
        assert alert(ask(client, account["login"], answer="02468")) == CAPTCHA_WRONG
    assert calls == [] and outbox() == [] and counted(app) == 0
    # Wrong digits used none of the day's three resets.
    for _ in range(3):
        assert_sent(ask(client, account["login"]))
    assert len(outbox()) == 3 and calls == [account["login"]] * 3


@pytest.mark.parametrize(
    "change",
    [
        {"captcha": None},
        {"captcha": ""},
        {"captcha": "0" * 16},
        {"captcha_token": None},
        {"captcha_token": ""},
        {"captcha_token": "garbage"},
        {"captcha_token": "x" * 500},
    ],
    ids=[
        "no-answer",
        "empty-answer",
        "long-answer",
        "no-challenge",
        "empty-challenge",
        "garbage-challenge",
        "huge-challenge",
    ],
)
def test_no_challenge_or_no_answer_no_reset(app, client, account, outbox, change):
    data = {**prepare(client, account["login"]), **change}
    data = {key: value for key, value in data.items() if value is not None}
    response = client.post("/reset/", data=data)
    assert response.status_code == 200 and alert(response) == CAPTCHA_WRONG
    assert outbox() == [] and counted(app) == 0


def test_a_forged_challenge_is_refused(client, account, outbox):
    # A challenge signed with another secret (another deployment, or a guess) carries digits the
    # attacker could know; only our own signature counts.
    data = prepare(client, account["login"])
    elsewhere = captcha.make_keys("another secret key of 32 characters!")
    forged = captcha.issue(elsewhere, now=int(time.time()), ttl=300)
    response = client.post("/reset/", data={**data, "captcha_token": forged})
    assert alert(response) == CAPTCHA_WRONG and outbox() == []


@pytest.mark.config(captcha={"enabled": False})
def test_without_captcha_no_image_is_needed(client, account, outbox):
    body = client.get("/reset/").get_data(as_text=True)
    assert "/captcha/" not in body and 'name="captcha' not in body and "captcha.js" not in body
    assert_sent(ask(client, account["login"], answer=None, with_captcha=False))
    assert len(outbox()) == 1


# --- daily limits ---------------------------------------------------------------------------------


def test_fourth_reset_of_the_day_is_refused(client, account, outbox):
    for _ in range(3):
        assert_sent(ask(client, account["login"]))
    response = ask(client, account["login"])
    assert response.status_code == 200 and alert(response) == LIMIT
    assert len(outbox()) == 3
    # The form is shown disabled, without a captcha, and the page says what to do instead.
    body = response.get_data(as_text=True)
    assert '<fieldset class="plain" disabled aria-describedby="form-error next-step">' in body
    assert "captcha_token" not in body
    assert "Попробуйте завтра или обратитесь в Миграционный центр:" in body
    assert '<a class="button" href="/login">вернуться на страницу входа</a>' in body


@pytest.mark.config(contacts={"address": ADDRESS, "phone": "", "hours": HOURS})
def test_fourth_reset_gives_the_centres_address_and_hours(client, account, outbox):
    for _ in range(3):
        assert_sent(ask(client, account["login"]))
    body = html.unescape(ask(client, account["login"]).get_data(as_text=True))
    step = body[body.index('id="next-step"') :]
    assert f"<li>{ADDRESS}</li><li>{HOURS}</li>" in step


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
    assert len(outbox()) == 3  # sent on the 10th: the phone's three SMS of that day
    clock.now = moscow(2026, 3, 10, 23, 59, 30)
    assert alert(ask(client, account["login"])) == LIMIT
    # 00:00:30 in Moscow is still 21:00:30 of the 10th in UTC: a UTC day would refuse this one.
    clock.now = moscow(2026, 3, 11, 0, 0, 30)
    assert_sent(ask(client, account["login"]))
    assert len(outbox()) == 4


@pytest.mark.config(limits={"phone_daily_limit": 1})
def test_phone_limit_counts_sms_to_one_number(client, make_account, outbox):
    first = make_account(login="77-0000001")
    second = make_account(login="77-0000002")
    other = make_account(login="77-0000003", phone="+79031112233")
    assert_sent(ask(client, first["login"]))
    # The second account on the same phone gets the same answer, but no SMS.
    assert_sent(ask(client, second["login"]))
    assert_sent(ask(client, other["login"], "+79031112233"))
    assert sorted(m["to"] for m in outbox()) == sorted([PHONE, "+79031112233"])


@pytest.mark.config(limits={"phone_daily_limit": 2})
def test_the_phones_daily_limit_holds_at_sending(client, make_account, outbox):
    """The allowance is taken when the outbox sends: three resets queued for one phone within the
    day's limits of requests all answer alike, two SMS leave, and the third flow becomes void."""
    for number in range(1, 4):
        assert_sent(ask(client, make_account(login=f"77-000000{number}")["login"]))
    assert reset_states(client.application) == ["queued"] * 3
    assert [m["to"] for m in outbox()] == [PHONE, PHONE]
    assert sorted(reset_states(client.application)) == ["sent", "sent", "void"]
    with client.application.app_context():
        counts = dict(db.session.execute(select(DailyCounter.key, DailyCounter.count)).all())
    assert counts[f"sms-phone:{PHONE}"] == 2


@pytest.mark.config(limits={"ip_daily_limit": 2})
def test_ip_limit_counts_every_login_from_one_address(app, client, account, outbox):
    assert_sent(ask(client, "77-9999998"))
    assert_sent(ask(client, "77-9999999"))
    assert alert(ask(client, account["login"])) == LIMIT
    assert outbox() == []
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.20.30.40"
    assert_sent(ask(elsewhere, account["login"]))
    assert len(outbox()) == 1


@pytest.mark.config(limits={"ip_daily_limit": 2})
def test_ip_limit_counts_an_ipv6_customer_by_its_64_and_the_audit_keeps_the_address(app, account, outbox):
    assert_sent(ask(_at(app, "2001:db8:1:2::1"), "77-9999998"))
    assert_sent(ask(_at(app, "2001:db8:1:2::2"), "77-9999999"))
    assert alert(ask(_at(app, "2001:db8:1:2::3"), account["login"])) == LIMIT
    assert outbox() == []
    assert_sent(ask(_at(app, "2001:db8:1:3::3"), account["login"]))
    assert len(outbox()) == 1
    # Only the count is by /64: the audit trail names the address the request came from.
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).filter_by(event="account.reset_sent")).one()
        assert event.ip == "2001:db8:1:3::3"


@pytest.mark.config(limits={"sms_daily_budget": 1})
def test_spent_sms_budget_sends_nothing_and_alerts(client, make_account, outbox, caplog):
    first = make_account(login="77-0000001")
    second = make_account(login="77-0000002", phone="+79031112233")
    assert_sent(ask(client, first["login"]))
    assert [m["to"] for m in outbox()] == [PHONE]  # the outbox took the day's budget
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    caplog.set_level(logging.ERROR)
    response = ask(client, second["login"], "+79031112233")
    assert_sent(response)
    assert SENT in client.get("/reset/sent").get_data(as_text=True)
    assert [m["to"] for m in outbox()] == [PHONE]
    assert reset_states(client.application) == ["sent", "void"]  # spent at sending: the flow is void
    alerts = [r for r in caplog.records if r.levelno == logging.ERROR and "ALERT" in r.getMessage()]
    assert len(alerts) == 1, caplog.text
    # Nothing went to the second phone, so its own daily count is not taken either.
    with client.application.app_context():
        counts = dict(db.session.execute(select(DailyCounter.key, DailyCounter.count)).all())
    assert counts.get("sms-phone:+79031112233", 0) == 0 and counts[f"sms-phone:{PHONE}"] == 1


# --- SMS Aero -------------------------------------------------------------------------------------


def test_smsaero_delivers_the_reset_sms(aero_app, gateway):
    account = _create_account(aero_app)
    assert_sent(ask(aero_app.test_client(), account["login"]))
    deliver(aero_app)
    [message] = gateway.received
    assert message["number"] == 79161234567
    assert pending_matches(aero_app, sms_password(message), pending_hash(aero_app, account["login"]))


def test_a_refused_sms_voids_its_password_and_gives_the_allowance_back(aero_app, gateway):
    """Only a definite refusal gives the allowance back (the address's count stays)."""
    account = _create_account(aero_app)
    client = aero_app.test_client()
    gateway.mode = "reject"
    assert_sent(ask(client, account["login"]))  # the same answer: the page says nothing about delivery
    deliver(aero_app)
    assert pending_hash(aero_app, account["login"]) is None
    assert counted(aero_app) == 1  # requests-ip only
    gateway.mode = "ok"
    for _ in range(3):
        assert_sent(ask(client, account["login"]))
        deliver(aero_app)
    assert len(gateway.received) == 3
    assert alert(ask(client, account["login"])) == LIMIT


@pytest.mark.parametrize("mode", ["slow", "garbage"])
def test_unknown_is_not_failed(aero_app, gateway, mode):
    """Issue 10: a gateway answering after the timeout still delivered, while idp gave the allowance
    back and stored nothing — unlimited SMS, each with a password that did not work. Now a timeout (or
    a garbled answer) counts against every limit and the password it carried stays valid."""
    account = _create_account(aero_app)
    client = aero_app.test_client()
    gateway.mode, gateway.delay = mode, 4  # [sms] timeout is 3 s here
    for _ in range(3):
        assert_sent(ask(client, account["login"]))
        deliver(aero_app)
    assert alert(ask(client, account["login"])) == LIMIT  # three SMS "maybe sent": the day's limit
    if mode == "slow":
        deadline = time.monotonic() + 10
        while len(gateway.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        # The last late SMS carries the password that works now (each new one voids the one before).
        last = gateway.received[-1]
        assert pending_matches(aero_app, sms_password(last), pending_hash(aero_app, account["login"]))
        response = _sign_in(aero_app, account["login"], sms_password(last))
        assert (response.status_code, response.headers["Location"]) == (302, "/password/change")
    else:
        assert pending_hash(aero_app, account["login"]) is not None


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "login, phone, message",
    [
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
    ],
    ids=[
        "short-phone",
        "letters-phone",
        "markup-login",
        "nul-login",
        "quote-login",
        "no-login",
        "no-phone",
        "blanks",
        "long-login",
        "long-phone",
    ],
)
def test_bad_input_gets_a_form_error(app, client, account, outbox, login, phone, message):
    response = ask(client, login, phone)
    assert response.status_code == 200 and alert(response) == message
    assert "<script>alert(1)</script>" not in response.get_data(as_text=True)
    assert outbox() == [] and counted(app) == 0


def test_missing_csrf_token_gets_the_400_page(client, account, outbox):
    body = client.get("/reset/").get_data(as_text=True)
    data = {"login": account["login"], "phone": PHONE, **captcha_fields(client, body, ANSWER)}
    response = client.post("/reset/", data=data)
    assert response.status_code == 400
    assert "Страница устарела. Обновите её и повторите попытку." in response.get_data(as_text=True)
    assert outbox() == []


def test_oversized_request_is_refused_not_parsed(client, account, outbox):
    data = prepare(client, "7" * 70000)
    response = client.post("/reset/", data=data)
    assert response.status_code == 413 and outbox() == []
