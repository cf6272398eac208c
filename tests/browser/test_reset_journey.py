"""The seed's whole story in headless Chromium against the live server: the operator creates the account,
the user signs in with the temporary password and changes it (steps 1-3), forgets it, asks for a new one
by SMS from «не могу войти» (reset steps 1-3), signs in with it and changes it again (reset step 4), and
the fourth reset of the day is refused with the seed's message.

Screenshots go to artifacts/screenshots/ for a human to look at."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from idp.services import captcha
from idp.services import passwords

from ..helpers import outbox_reader
from ..helpers import query
from ..helpers import settings_of
from .pages import CAPTCHA_LABEL
from .pages import LOGIN_LABEL
from .pages import REDIRECT_URI
from .pages import expect_sign_in_form
from .pages import no_horizontal_scroll
from .pages import redeem
from .pages import screenshot
from .pages import sign_in
from .pages import sign_in_address
from .pages import start_authorization
from .pages import wait_for_captcha

pytestmark = pytest.mark.browser

PHONE_LABEL = "Ваш номер телефона"
RESET_HEADING = "Сброс пароля к личному кабинету иностранного гражданина"
SENT = "Новый пароль будет выслан на номер телефона, полученный при подаче заявления на патент."
LIMIT = "Функция сброса пароля будет доступна на следующий день"
CAPTCHA_ALT = "Картинка с кодом из 5 цифр. Если не видно, нажмите «Прослушать код» или «Обновить»."
CHANGE_LABELS = ["Старый пароль", "Новый пароль", "Повторно введите новый пароль"]

OPERATOR_LOGIN = "77-2024 0012345"
PHONE_DIGITS = "9167654321"
PHONE_MASKED = "+7 (916) 765-43-21"
FIRST_OWN = "Самарканд весной 2024 и абрикосы"
SECOND_OWN = "чайхана у Патриарших прудов"

_SMS_PASSWORD = re.compile(r": ([" + passwords.TEMPORARY_ALPHABET + r"]{10})\. ")


@pytest.fixture
def answers(monkeypatch):
    """Every captcha challenge gets new digits (its image, its sound and the check the same ones); the
    list holds them in the order the server first drew them."""
    issued: list[str] = []
    by_seed: dict[bytes, str] = {}

    def next_answer(seed: bytes, length: int = captcha.LENGTH) -> str:
        if seed not in by_seed:
            first = len(issued) * 3
            by_seed[seed] = "".join(captcha.DIGITS[(first + i) % len(captcha.DIGITS)] for i in range(length))
            issued.append(by_seed[seed])
        return by_seed[seed]

    monkeypatch.setattr(captcha, "new_answer", next_answer)
    return issued


@pytest.fixture
def outbox(live_server):
    """The reset SMS sent so far (the takeover notices that also go by SMS left out)."""
    with outbox_reader(settings_of(live_server.app).sms.file_path, live_server.app) as read:
        yield lambda: [message for message in read() if _SMS_PASSWORD.search(message["text"])]


def _authorize(page, live_server, rp) -> tuple[str, str]:
    """``start_authorization``, which lands on the sign-in page; return (state, verifier)."""
    state, verifier = start_authorization(page, live_server, rp)
    expect_sign_in_form(page)
    return state, verifier


def _change_password(page, old: str, new: str, shot: str, width: int) -> None:
    """Seed step 3, on the page the sign-in led to; the form is filled, not yet sent."""
    expect(page).to_have_url(re.compile(r"/password/change\?authz=[\w-]+$"))
    expect(page.locator("label")).to_have_text(CHANGE_LABELS)
    no_horizontal_scroll(page, width)
    screenshot(page, shot)
    for label, value in zip(CHANGE_LABELS, (old, new, new), strict=True):
        page.get_by_label(label, exact=True).fill(value)


def _lands_at_rp(page, live_server, rp, state: str, verifier: str) -> None:
    """«сменить пароль» ends in a redirect to the RP with a code, which the RP can redeem.

    Playwright does not route redirects, so the browser's request to the (absent) RP is watched, not
    answered. The page then shows Chromium's error page, which retries on its own: it is not used again."""
    with page.expect_request(lambda request: request.url.startswith(REDIRECT_URI + "?")) as sent:
        page.get_by_role("button", name="сменить пароль", exact=True).click(no_wait_after=True)
    params = query(sent.value.url)
    assert params["state"] == state and params["iss"] == live_server.url
    resp = redeem(live_server, rp, params["code"], verifier)
    assert resp.status_code == 200, resp.text


def _fill_reset(page, login: str, answers: list[str]) -> None:
    # The phone mask (static/reset.js) formats what is typed once the page has loaded; on a busy machine
    # the digits could otherwise arrive before it.
    page.wait_for_load_state("load")
    page.get_by_label(LOGIN_LABEL, exact=True).fill(login)
    phone = page.get_by_label(PHONE_LABEL, exact=True)
    phone.press_sequentially(PHONE_DIGITS)
    expect(phone).to_have_value(PHONE_MASKED)
    wait_for_captcha(page)
    page.get_by_label(CAPTCHA_LABEL, exact=True).fill(answers[-1])


def _wait_for_playing(page) -> None:
    page.wait_for_function(
        "() => { const a = document.getElementById('captcha-audio'); "
        "return !a.hidden && !a.paused && a.duration > 0 && a.currentTime > 0; }"
    )


def _challenges(page) -> set[str]:
    """One name for each distinct challenge the form, the image and the sound link refer to."""
    tokens = page.evaluate("""() => {
        const param = (url) => new URL(url, location.href).searchParams.get('c');
        return [document.getElementById('captcha_token').value,
                param(document.getElementById('captcha-image').src),
                param(document.getElementById('captcha-listen').href)];
    }""")
    return {"one"} if len(set(tokens)) == 1 else set(tokens)


def test_operator_account_sign_in_forgotten_password_and_sms_reset(
    live_server, rp, new_page, answers, outbox
):
    # (1) The operator creates the account when the patent application is taken.
    result = live_server.app.test_cli_runner().invoke(
        args=[
            "accounts",
            "create",
            "--login",
            OPERATOR_LOGIN,
            "--phone",
            "8 916 765-43-21",
            "--surname",
            "Каримов",
            "--given-name",
            "Бахтиёр",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    issued = json.loads(result.output)
    login, temporary = issued["login"], issued["temporary_password"]
    assert login == "7720240012345" and issued["phone"] == "+79167654321"

    # (2) First sign-in through a relying party, with the operator's password, and its forced change.
    page = new_page(1280, 800)
    state, verifier = _authorize(page, live_server, rp)
    sign_in(page, OPERATOR_LOGIN, temporary)
    _change_password(page, temporary, FIRST_OWN, "change-1280.png", 1280)
    _lands_at_rp(page, live_server, rp, state, verifier)

    # (3) Another day, on a phone: the password is forgotten.
    page = new_page(360, 740)
    state, verifier = _authorize(page, live_server, rp)
    sign_in_url = sign_in_address(page)
    page.get_by_role("link", name="не могу войти", exact=True).click()
    # The pending authorization travels along, so the reset can end at the RP.
    expect(page).to_have_url(re.compile(re.escape(live_server.url + "/reset/?authz=") + r"[\w-]+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(RESET_HEADING)
    expect(page.locator("label")).to_have_text([LOGIN_LABEL, PHONE_LABEL, CAPTCHA_LABEL])
    expect(page.get_by_label(PHONE_LABEL, exact=True)).to_have_attribute("placeholder", "+7 (9XX) XXX-XX-XX")
    expect(page.get_by_text("Телефон, указанный в заявлении на патент", exact=True)).to_be_visible()
    _fill_reset(page, OPERATOR_LOGIN, answers)
    assert len(answers) == 1
    no_horizontal_scroll(page, 360)
    screenshot(page, "reset-360.png")

    # What a screen reader announces: the field's label, and an image text that says what to do.
    form = page.locator("main form").aria_snapshot()
    for line in (
        f'textbox "{CAPTCHA_LABEL}"',
        f'img "{CAPTCHA_ALT}"',
        'link "Прослушать код"',
        'link "Обновить"',
    ):
        assert line in form, form
    # «Прослушать код» is reached with Tab from the phone field and played with Enter; the sound is
    # the same challenge's.
    page.get_by_label(PHONE_LABEL, exact=True).focus()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Прослушать код", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    _wait_for_playing(page)
    assert _challenges(page) == {"one"}
    screenshot(page, "reset-audio-360.png")
    assert len(answers) == 1
    page.locator("#captcha-audio").evaluate("audio => audio.pause()")

    image = page.locator("#captcha-image")
    before = image.screenshot()
    with page.expect_response(re.compile(r"/captcha/image\.png\?c=[\w.-]+$")):
        page.get_by_role("link", name="Обновить", exact=True).click()
    wait_for_captcha(page)
    assert image.screenshot() != before
    # Each challenge has its own digits; the new image's are the ones typed, and they must work. The
    # form and the sound moved to the new challenge with the image.
    assert len(answers) == 2 and answers[0] != answers[1]
    assert _challenges(page) == {"one"}
    expect(page.locator("#captcha-audio")).to_be_hidden()
    expect(page.get_by_label(CAPTCHA_LABEL, exact=True)).to_have_value("")
    expect(page.get_by_label(CAPTCHA_LABEL, exact=True)).to_be_focused()
    page.get_by_label(CAPTCHA_LABEL, exact=True).fill(answers[-1])
    page.get_by_role("button", name="Прислать новый пароль", exact=True).click()

    expect(page).to_have_url(live_server.url + "/reset/sent")
    expect(page.get_by_role("status")).to_have_text(SENT)
    no_horizontal_scroll(page, 360)
    screenshot(page, "reset-sent-360.png")
    page.get_by_role("link", name="на страницу входа", exact=True).click()
    # Back on the sign-in page of the authorization the user left, so the RP still gets its answer.
    expect(page).to_have_url(sign_in_url)
    [sms] = outbox()
    assert sms["to"] == "+79167654321" and live_server.url + "/login" in sms["text"]
    from_sms = _SMS_PASSWORD.search(sms["text"]).group(1)

    # (4) Sign-in with the SMS password, where «на страницу входа» led, and its forced change.
    sign_in(page, OPERATOR_LOGIN, from_sms)
    _change_password(page, from_sms, SECOND_OWN, "change-360.png", 360)
    _lands_at_rp(page, live_server, rp, state, verifier)

    # Two more resets the same day, at a desktop width ...
    desk = new_page(1280, 800)
    for count in (2, 3):
        desk.goto(live_server.url + "/reset/")
        _fill_reset(desk, login, answers)
        if count == 2:
            screenshot(desk, "reset-1280.png")
        desk.get_by_role("button", name="Прислать новый пароль", exact=True).click()
        expect(desk).to_have_url(live_server.url + "/reset/sent")
    assert len(outbox()) == 3

    # ... and the fourth, on the phone again, is refused with the seed's words.
    page = new_page(360, 740)
    page.goto(live_server.url + "/reset/")
    _fill_reset(page, OPERATOR_LOGIN, answers)
    page.get_by_role("button", name="Прислать новый пароль", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(LIMIT)
    expect(page).to_have_url(live_server.url + "/reset/")
    no_horizontal_scroll(page, 360)
    screenshot(page, "reset-limit-360.png")
    assert len(outbox()) == 3


def test_phone_mask_formats_what_is_typed_and_gives_way_to_backspace(live_server, new_page):
    page = new_page(360, 740)
    page.goto(live_server.url + "/reset/")
    phone = page.get_by_label(PHONE_LABEL, exact=True)
    for typed in ("9167654321", "89167654321", "+79167654321", "8 (916) 765-43-21", "+7 916 765 43 21"):
        phone.fill("")
        phone.press_sequentially(typed)
        expect(phone).to_have_value(PHONE_MASKED)
    phone.fill("")
    phone.press_sequentially("926")
    seen = []
    for _ in range(6):
        phone.press("Backspace")
        seen.append(phone.input_value())
    assert seen == ["+7 (92", "+7 (9", "+7", "+", "", ""]
    phone.press_sequentially("8" + PHONE_DIGITS)
    expect(phone).to_have_value(PHONE_MASKED)
