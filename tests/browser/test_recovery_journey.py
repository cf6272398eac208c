"""«Восстановление доступа» in headless Chromium against the live server, as a person goes through it:
from «не могу войти» to «Восстановление доступа», the login (an e-mail or a phone) and the surname, the
captcha, the confirmation, then (a) the link from the e-mail or (b) the code from the SMS, the new
password, and the sign-in with it. Journey (b) starts at a relying party and ends back there.

Screenshots go to artifacts/screenshots/ for a human to look at."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from ..conftest import CAPTCHA_ANSWER as ANSWER
from ..helpers import outbox_reader
from ..helpers import query
from ..helpers import settings_of
from .pages import CAPTCHA_LABEL
from .pages import LOGIN_LABEL
from .pages import REDIRECT_URI
from .pages import expect_sign_in_form
from .pages import intercept_rp
from .pages import no_horizontal_scroll
from .pages import redeem
from .pages import screenshot
from .pages import sign_in
from .pages import start_authorization
from .pages import wait_for_captcha

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("known_captcha")]

NOTICE = "пароль от кабинета задан через восстановление доступа"
HEADING = "Восстановление доступа"
IDENTIFIER_LABEL = "Телефон, электронная почта или СНИЛС"
SURNAME_LABEL = "Фамилия"
BUTTON = "Восстановить доступ"
SENT = (
    "Если данные указаны верно, инструкции по восстановлению доступа отправлены на электронную почту или "
    "номер телефона, указанные в профиле."
)
SUPPORT = "+7 (495) 539-55-55"
CODE_LABEL = "Код из СМС"
NEW_LABEL = "Новый пароль"
REPEAT_LABEL = "Повторно введите новый пароль"
CHANGED = "Пароль изменён. Ваш логин (№ заявления на патент)"
SIGNED_IN = "Вход в личный кабинет иностранного гражданина выполнен!"

EMAIL = "dilnoza.yusupova@example.com"
NEW_BY_MAIL = "Ташкент осенью 2025, дыни и виноград"
NEW_BY_SMS = "плов по пятницам у Курского"

_LINK = re.compile(r"https?://[^\s\"<]+/recovery/link/[\w-]+")
_CODE = re.compile(r"восстановления: (\d{6})\. ")


@pytest.fixture
def outboxes(live_server):
    """``(sms, mail)``: what the live server's file backends wrote during this test, once its durable
    outbox has sent what was due (the recovery's code and link leave from it, not from the request)."""
    settings, app = settings_of(live_server.app), live_server.app
    with (
        outbox_reader(settings.sms.file_path, app) as sms,
        outbox_reader(settings.mail.file_path, app) as mail,
    ):
        yield sms, mail


def _to_recovery(page, live_server) -> None:
    """«не могу войти» on the sign-in page, then «Восстановление доступа» on the reset page."""
    page.get_by_role("link", name="не могу войти", exact=True).click()
    expect(page).to_have_url(re.compile(re.escape(live_server.url) + r"/reset/"))
    page.get_by_role("link", name=HEADING, exact=True).click()
    expect(page).to_have_url(live_server.url + "/recovery/")
    expect(page.get_by_role("heading", level=1)).to_have_text(HEADING)
    expect(page.locator("form label")).to_have_text([IDENTIFIER_LABEL, SURNAME_LABEL, CAPTCHA_LABEL])
    expect(page.get_by_label(IDENTIFIER_LABEL, exact=True)).to_be_focused()


def _ask(page, identifier: str, surname: str) -> None:
    page.get_by_label(IDENTIFIER_LABEL, exact=True).fill(identifier)
    page.get_by_label(SURNAME_LABEL, exact=True).fill(surname)
    wait_for_captcha(page)
    page.get_by_label(CAPTCHA_LABEL, exact=True).fill(ANSWER)


def _expect_confirmation(page, live_server) -> None:
    expect(page).to_have_url(live_server.url + "/recovery/sent")
    expect(page.get_by_role("heading", level=1)).to_have_text(HEADING)
    expect(page.get_by_text(SENT, exact=True)).to_be_visible()
    expect(page.get_by_text(SUPPORT)).to_be_visible()
    expect(page.get_by_role("link", name="форму обратной связи", exact=True)).to_have_attribute(
        "href", "https://www.mos.ru/feedback/support/"
    )


def _new_password(page, password: str, shot: str | None = None, width: int = 1280) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text("Установите новый пароль")
    expect(page.locator("form label")).to_have_text([NEW_LABEL, REPEAT_LABEL])
    expect(page.get_by_label(NEW_LABEL, exact=True)).to_have_attribute("autocomplete", "new-password")
    page.get_by_label(NEW_LABEL, exact=True).fill(password)
    page.get_by_label(REPEAT_LABEL, exact=True).fill(password)
    if shot:
        no_horizontal_scroll(page, width)
        screenshot(page, shot)
    page.get_by_role("button", name="сменить пароль", exact=True).click()


def test_recovery_by_the_emailed_link(live_server, make_account, new_page, outboxes):
    sms, mail = outboxes
    account = make_account(login="77-2025 0054321", surname="Юсупова", given_name="Дильноза", email=EMAIL)
    page = new_page(1280, 800)
    page.goto(live_server.url + "/login")
    _to_recovery(page, live_server)
    _ask(page, "  Dilnoza.Yusupova@Example.com ", " юсупова ")
    page.get_by_role("button", name=BUTTON, exact=True).click()
    _expect_confirmation(page, live_server)

    [message] = mail()
    assert message["to"] == EMAIL and sms() == []
    [link] = set(_LINK.findall(message["text"]))
    assert link.startswith(live_server.url + "/recovery/link/")
    # The person opens the link from the letter; in this test, in the same browser.
    page.goto(link)
    _new_password(page, NEW_BY_MAIL)

    expect(page).to_have_url(live_server.url + "/login")
    expect(page.get_by_role("status")).to_contain_text(CHANGED)
    # The login it told is filled in.
    expect(page.get_by_label(LOGIN_LABEL, exact=True)).to_have_value(account["login"])
    sign_in(page, account["login"], account["password"])
    expect(page.get_by_role("alert")).to_have_text("Неверный логин или пароль.")
    sign_in(page, account["login"], NEW_BY_MAIL)
    expect(page.get_by_role("heading", level=1)).to_have_text(SIGNED_IN)
    expect(page.get_by_text("Юсупова Дильноза")).to_be_visible()
    # The link was used up.
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Ссылка или код больше не действуют")
    # The takeover notice, delivered by the server's outbox loop (it runs in the live server).
    deadline = time.monotonic() + 10
    subject = "Пароль задан через восстановление доступа"  # the notice's e-mail
    while not [m for m in mail() if m["subject"] == subject] and time.monotonic() < deadline:
        time.sleep(0.05)
    notices = [m for m in mail() if m["subject"] == subject]
    assert [m["to"] for m in notices] == [EMAIL]


def test_recovery_by_sms_code_on_a_phone_back_to_the_relying_party(
    live_server, account, rp, new_page, outboxes
):
    sms, mail = outboxes
    page = new_page(360, 740)
    seen = intercept_rp(page)
    state, verifier = start_authorization(page, live_server, rp)
    expect_sign_in_form(page)

    _to_recovery(page, live_server)
    no_horizontal_scroll(page, 360)
    screenshot(page, "recovery-360.png")
    _ask(page, "8 (916) 123-45-67", "РАХИМОВ")
    page.get_by_role("button", name=BUTTON, exact=True).click()
    _expect_confirmation(page, live_server)
    expect(page.get_by_label(CODE_LABEL, exact=True)).to_be_focused()
    expect(page.get_by_label(CODE_LABEL, exact=True)).to_have_attribute("autocomplete", "one-time-code")
    no_horizontal_scroll(page, 360)
    screenshot(page, "recovery-sent-360.png")

    [message] = sms()
    assert message["to"] == "+79161234567" and mail() == []
    code = _CODE.search(message["text"]).group(1)
    page.get_by_label(CODE_LABEL, exact=True).fill("000000" if code != "000000" else "111111")
    page.get_by_role("button", name="Продолжить", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Неверный код. Осталось попыток: 4.")
    page.get_by_label(CODE_LABEL, exact=True).fill(code)
    page.get_by_role("button", name="Продолжить", exact=True).click()

    expect(page).to_have_url(live_server.url + "/recovery/password")
    _new_password(page, NEW_BY_SMS, "recovery-password-360.png", 360)

    # The sign-in page continues the relying party's authorization.
    expect(page).to_have_url(re.compile(re.escape(live_server.url) + r"/login\?authz=[\w-]+"))
    expect(page.get_by_role("status")).to_contain_text(CHANGED)
    # The login it told is filled in.
    expect(page.get_by_label(LOGIN_LABEL, exact=True)).to_have_value(account["login"])
    assert seen == []
    sign_in(page, account["login"], NEW_BY_SMS)
    page.wait_for_url(REDIRECT_URI + "?**")
    params = query(page.url)
    assert seen == [page.url] and params["state"] == state and params["iss"] == live_server.url
    resp = redeem(live_server, rp, params["code"], verifier)
    assert resp.status_code == 200, resp.text
    # The takeover notice, delivered by the server's outbox loop.
    deadline = time.monotonic() + 10
    while not any(NOTICE in m["text"] for m in sms()[1:]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(NOTICE in m["text"] for m in sms()[1:])
