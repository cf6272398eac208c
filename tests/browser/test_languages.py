"""The migrant's three journeys in each of the five languages on a 360 px phone, walked to the end: the first
sign-in (temporary password, forced change, back at the relying party), the SMS reset (form with captcha, the
SMS from the outbox, sign-in with its password, forced change) and the recovery by SMS code. The language is
chosen by the relying party's ``ui_locales`` for some journeys and by the switcher for the others, so that
every journey is walked in every language and with both ways of choosing. One sign-in with a forced change
is also done with the keyboard only, and so are an SMS reset (Uzbek) and a recovery by SMS code (Russian):
Tab, Shift+Tab, Enter and typing, no clicks, the focus checked where the person must find it. Screenshots
in artifacts/screenshots/lang-<xx>-*.png.

What the pages and the SMS must say comes from the catalogues (Flask-Babel's ``force_locale``), not from
strings copied here: a page in the wrong language, or an untranslated string, fails."""

from __future__ import annotations

import re

import pytest
from flask_babel import force_locale
from flask_babel import gettext
from playwright.sync_api import expect

from idp.languages import NAMES
from idp.languages import duration

from ..conftest import CAPTCHA_ANSWER
from ..helpers import outbox_reader
from ..helpers import query
from ..helpers import settings_of
from .pages import REDIRECT_URI
from .pages import expect_sign_in_form
from .pages import no_horizontal_scroll
from .pages import redeem
from .pages import screenshot
from .pages import sign_in_address
from .pages import start_authorization
from .pages import wait_for_captcha

# The claim is the language of each page and message; the flows' database work is the Russian journeys',
# which both passes run (test_reset_journey, test_recovery_journey). So the SQLite pass runs these.
pytestmark = [pytest.mark.browser, pytest.mark.once, pytest.mark.usefixtures("known_captcha")]

WIDTH = 360

# The catalogue's message ids (the Russian source) of what the journeys read and press.
SIGN_IN_HEADING = "Вход в личный кабинет иностранного гражданина"
LOGIN_LABEL = "Логин (№ заявления на патент)"
PASSWORD_LABEL = "Пароль"
SIGN_IN_BUTTON = "войти"
CANNOT_SIGN_IN = "не могу войти"
CHANGE_HEADING = "Смена пароля"
CHANGE_LABELS = ["Старый пароль", "Новый пароль", "Повторно введите новый пароль"]
CHANGE_BUTTON = "сменить пароль"
RESET_HEADING = "Сброс пароля к личному кабинету иностранного гражданина"
PHONE_LABEL = "Ваш номер телефона"
CAPTCHA_LABEL = "Код на изображении"
RESET_BUTTON = "Прислать новый пароль"
RESET_SENT = "Новый пароль будет выслан на номер телефона, полученный при подаче заявления на патент."
TO_SIGN_IN = "на страницу входа"
RECOVERY_HEADING = "Восстановление доступа"
IDENTIFIER_LABEL = "Телефон, электронная почта или СНИЛС"
SURNAME_LABEL = "Фамилия"
RECOVERY_BUTTON = "Восстановить доступ"
CODE_LABEL = "Код из СМС"
CONTINUE = "Продолжить"
NEW_PASSWORD_HEADING = "Установите новый пароль"
NEW_LABELS = ["Новый пароль", "Повторно введите новый пароль"]
# The SMS (views/reset.py sms_text, views/recovery.py code_text).
RESET_SMS = (
    "Новый пароль личного кабинета: %(password)s. Действует %(duration)s, при входе смените его: %(url)s"
)
CODE_SMS = (
    "Код восстановления: %(code)s. Действует %(duration)s. Никому его не сообщайте. Ваш логин: %(login)s"
)

SURNAME = "Рахимов"
OWN_PASSWORD = "Самарканд весной 2024 и абрикосы"
RECOVERED_PASSWORD = "плов по пятницам у Курского"

# The relying party chooses (ui_locales) the first sign-in in these languages and the person (switcher) the
# reset and the recovery; in the others, the other way round.
RP_CHOOSES_FIRST_SIGN_IN = {"ru", "tg", "en"}


def _t(app, language: str, msgid: str, **values) -> str:
    """The catalogue's text for ``msgid`` in ``language``."""
    with app.test_request_context(), force_locale(language):
        return gettext(msgid, **values)


def _sms_pattern(app, language: str, msgid: str, marker: str, group: str, **values) -> re.Pattern:
    """The SMS ``msgid`` in ``language``, with ``marker`` (a placeholder's value) matched by ``group``."""
    text = _t(app, language, msgid, **values)
    assert marker in text
    return re.compile(re.escape(text).replace(marker, group))


def _reset_sms_password(live_server, sms, language: str, phone: str) -> str:
    """The temporary password of the reset SMS sent to ``phone``, whose whole text must be the catalogue's
    in ``language``."""
    settings = settings_of(live_server.app)
    [message] = [m for m in sms() if m["to"] == phone]
    pattern = _sms_pattern(
        live_server.app,
        language,
        RESET_SMS,
        "PASSWORDMARK",
        r"(\S{10})",
        password="PASSWORDMARK",
        url=settings.server.issuer + "/login",
        duration=duration(settings.passwords.temporary_ttl, language),
    )
    match = pattern.fullmatch(message["text"])
    assert match, (message["text"], pattern.pattern)
    return match.group(1)


def _recovery_sms_code(live_server, sms, language: str, phone: str, login: str) -> str:
    """The code of the recovery SMS sent to ``phone``, whose whole text must be the catalogue's in
    ``language``."""
    [message] = [m for m in sms() if m["to"] == phone]
    pattern = _sms_pattern(
        live_server.app,
        language,
        CODE_SMS,
        "CODEMARK",
        r"(\d{6})",
        code="CODEMARK",
        login=login,
        duration=duration(settings_of(live_server.app).recovery.code_ttl, language),
    )
    match = pattern.fullmatch(message["text"])
    assert match, (message["text"], pattern.pattern)
    return match.group(1)


class Journey:
    """One journey in one browser context: a 360 px page in ``language``, chosen by ``ui_locales`` or by the
    switcher, started at the relying party and expected to end there."""

    def __init__(self, live_server, rp, new_page, language: str, by: str, name: str):
        self.app, self.live_server, self.rp = live_server.app, live_server, rp
        self.language, self.by, self.name = language, by, name
        # The switcher is tried from a page in another language: the browser's Russian, or for Russian
        # itself a relying party's English (a choice made during the flow beats its ui_locales).
        other = "en" if language == "ru" else "ru"
        self.page = new_page(WIDTH, 740)
        ui_locales = language if by == "ui_locales" else ("en" if language == "ru" else None)
        self.state, self.verifier = start_authorization(self.page, live_server, rp, ui_locales=ui_locales)
        expect_sign_in_form(self.page)
        if by == "switcher":
            expect(self.page.locator("html")).to_have_attribute("lang", other)
            self.page.get_by_role("button", name=NAMES[language], exact=True).click()
            expect(self.page).to_have_url(re.compile(re.escape(live_server.url) + r"/login\?authz=[\w-]+$"))
            chosen = self.page.get_by_role("button", name=NAMES[language], exact=True)
            expect(chosen).to_have_attribute("aria-current", "true")
        self.shows(SIGN_IN_HEADING, "sign-in")

    def t(self, msgid: str, **values) -> str:
        return _t(self.app, self.language, msgid, **values)

    def shows(self, heading: str, shot: str) -> None:
        """The page is in the journey's language: ``<html lang>`` and its heading from the catalogue."""
        expect(self.page.locator("html")).to_have_attribute("lang", self.language)
        expect(self.page.get_by_role("heading", level=1)).to_have_text(self.t(heading))
        no_horizontal_scroll(self.page, WIDTH)
        screenshot(self.page, f"lang-{self.language}-{self.name}-{shot}-{WIDTH}.png")

    def field(self, label: str):
        return self.page.get_by_label(self.t(label), exact=True)

    def press(self, button: str) -> None:
        self.page.get_by_role("button", name=self.t(button), exact=True).click()

    def sign_in(self, login: str, password: str) -> None:
        self.field(LOGIN_LABEL).fill(login)
        self.field(PASSWORD_LABEL).fill(password)
        self.press(SIGN_IN_BUTTON)

    def forced_change(self, old: str, new: str) -> None:
        """The forced change after a sign-in with a temporary password; it ends at the relying party."""
        expect(self.page).to_have_url(re.compile(r"/password/change\?authz=[\w-]+$"))
        expect(self.page.locator("main form label")).to_have_text([self.t(label) for label in CHANGE_LABELS])
        for label, value in zip(CHANGE_LABELS, (old, new, new), strict=True):
            self.field(label).fill(value)
        self.shows(CHANGE_HEADING, "change")
        self.lands_at_rp(CHANGE_BUTTON)

    def lands_at_rp(self, button: str) -> None:
        """``button`` sends the person back to the relying party with a code it can redeem.

        Playwright does not route every redirect, so the browser's request to the (absent) relying party is
        watched, not answered (as in test_reset_journey.py)."""
        with self.page.expect_request(lambda request: request.url.startswith(REDIRECT_URI + "?")) as sent:
            self.page.get_by_role("button", name=self.t(button), exact=True).click(no_wait_after=True)
        params = query(sent.value.url)
        assert params["state"] == self.state and params["iss"] == self.live_server.url
        resp = redeem(self.live_server, self.rp, params["code"], self.verifier)
        assert resp.status_code == 200, resp.text

    def to_reset(self) -> None:
        self.page.get_by_role("link", name=self.t(CANNOT_SIGN_IN), exact=True).click()
        expect(self.page).to_have_url(re.compile(re.escape(self.live_server.url + "/reset/?authz=")))


@pytest.fixture
def sms(live_server):
    """The SMS sent so far (the durable outbox delivered first, as the server's loop would)."""
    with outbox_reader(settings_of(live_server.app).sms.file_path, live_server.app) as read:
        yield read


def _first_sign_in(live_server, rp, new_page, make_account, language: str, by: str) -> None:
    account = make_account(login="77-0000101", phone="+79160000101", temporary=True, locale=language)
    journey = Journey(live_server, rp, new_page, language, by, "first")
    journey.sign_in(account["login"], account["password"])
    journey.forced_change(account["password"], OWN_PASSWORD)


def _reset(live_server, rp, new_page, make_account, sms, language: str, by: str) -> None:
    # The operator set the account's language at the counter: the SMS is written in it.
    account = make_account(login="77-0000102", phone="+79160000102", locale=language)
    journey = Journey(live_server, rp, new_page, language, by, "reset")
    sign_in_url = sign_in_address(journey.page)
    journey.to_reset()
    expect(journey.page.locator("main form label")).to_have_text(
        [journey.t(label) for label in (LOGIN_LABEL, PHONE_LABEL, CAPTCHA_LABEL)]
    )
    journey.field(LOGIN_LABEL).fill(account["login"])
    journey.field(PHONE_LABEL).press_sequentially("9160000102")
    wait_for_captcha(journey.page)
    journey.field(CAPTCHA_LABEL).fill(CAPTCHA_ANSWER)
    journey.shows(RESET_HEADING, "form")
    journey.press(RESET_BUTTON)

    expect(journey.page).to_have_url(live_server.url + "/reset/sent")
    expect(journey.page.get_by_role("status")).to_have_text(journey.t(RESET_SENT))
    journey.shows(RESET_HEADING, "sent")
    journey.page.get_by_role("link", name=journey.t(TO_SIGN_IN), exact=True).click()
    expect(journey.page).to_have_url(sign_in_url)
    journey.shows(SIGN_IN_HEADING, "sign-in-again")

    from_sms = _reset_sms_password(live_server, sms, language, "+79160000102")

    journey.sign_in(account["login"], from_sms)
    journey.forced_change(from_sms, OWN_PASSWORD)


def _recovery(live_server, rp, new_page, make_account, sms, language: str, by: str) -> None:
    account = make_account(login="77-0000103", phone="+79160000103", surname=SURNAME, locale=language)
    journey = Journey(live_server, rp, new_page, language, by, "recovery")
    journey.to_reset()
    journey.page.get_by_role("link", name=journey.t(RECOVERY_HEADING), exact=True).click()
    expect(journey.page).to_have_url(live_server.url + "/recovery/")
    expect(journey.page.locator("main form label")).to_have_text(
        [journey.t(label) for label in (IDENTIFIER_LABEL, SURNAME_LABEL, CAPTCHA_LABEL)]
    )
    journey.field(IDENTIFIER_LABEL).fill("8 (916) 000-01-03")
    journey.field(SURNAME_LABEL).fill(SURNAME.upper())
    wait_for_captcha(journey.page)
    journey.field(CAPTCHA_LABEL).fill(CAPTCHA_ANSWER)
    journey.shows(RECOVERY_HEADING, "form")
    journey.press(RECOVERY_BUTTON)

    expect(journey.page).to_have_url(live_server.url + "/recovery/sent")
    expect(journey.field(CODE_LABEL)).to_be_focused()
    journey.shows(RECOVERY_HEADING, "sent")
    code = _recovery_sms_code(live_server, sms, language, "+79160000103", account["login"])
    journey.field(CODE_LABEL).fill(code)
    journey.press(CONTINUE)

    expect(journey.page).to_have_url(live_server.url + "/recovery/password")
    expect(journey.page.locator("main form label")).to_have_text([journey.t(label) for label in NEW_LABELS])
    for label in NEW_LABELS:
        journey.field(label).fill(RECOVERED_PASSWORD)
    journey.shows(NEW_PASSWORD_HEADING, "password")
    journey.press(CHANGE_BUTTON)

    # Back on the sign-in page of the relying party's authorization, the login filled in.
    expect(journey.page).to_have_url(re.compile(re.escape(live_server.url) + r"/login\?authz=[\w-]+$"))
    expect(journey.field(LOGIN_LABEL)).to_have_value(account["login"])
    journey.shows(SIGN_IN_HEADING, "sign-in-again")
    journey.field(PASSWORD_LABEL).fill(RECOVERED_PASSWORD)
    journey.lands_at_rp(SIGN_IN_BUTTON)


@pytest.mark.parametrize("language", ["uz", "tg", "ky", "ru", "en"])
def test_first_sign_in_reset_and_recovery_in_each_language(
    live_server, rp, new_page, make_account, sms, language
):
    first, other = ("ui_locales", "switcher")
    if language not in RP_CHOOSES_FIRST_SIGN_IN:
        first, other = other, first
    _first_sign_in(live_server, rp, new_page, make_account, language, first)
    _reset(live_server, rp, new_page, make_account, sms, language, other)
    _recovery(live_server, rp, new_page, make_account, sms, language, other)


def _tab_to(page, target, key: str = "Tab", limit: int = 25) -> None:
    """Press ``key`` until ``target`` has the focus (a person moving through the page with the keyboard)."""
    for _ in range(limit):
        if target.evaluate("element => element === document.activeElement"):
            return
        page.keyboard.press(key)
    expect(target).to_be_focused()


def test_first_sign_in_with_the_keyboard_only_in_kyrgyz(live_server, rp, new_page, make_account):
    language = "ky"
    t = lambda msgid: _t(live_server.app, language, msgid)  # noqa: E731
    account = make_account(login="77-0000104", temporary=True)
    page = new_page(WIDTH, 740)
    state, verifier = start_authorization(page, live_server, rp)
    login = page.get_by_label(t(LOGIN_LABEL), exact=True)
    # The Russian page; back from the (autofocused) login field to the switcher, and Enter on «Кыргызча».
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    switch = page.get_by_role("button", name=NAMES[language], exact=True)
    _tab_to(page, switch, key="Shift+Tab")
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.get_by_role("heading", level=1)).to_have_text(t(SIGN_IN_HEADING))
    _tab_to(page, login)
    page.keyboard.type(account["login"])
    _tab_to(page, page.get_by_label(t(PASSWORD_LABEL), exact=True))
    page.keyboard.type(account["password"])
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/password/change\?authz=[\w-]+$"))
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.get_by_role("heading", level=1)).to_have_text(t(CHANGE_HEADING))
    for label, value in zip(CHANGE_LABELS, (account["password"], OWN_PASSWORD, OWN_PASSWORD), strict=True):
        _tab_to(page, page.get_by_label(t(label), exact=True))
        page.keyboard.type(value)
    screenshot(page, f"lang-{language}-keyboard-change-{WIDTH}.png")
    # The redirect to the (absent) relying party is watched, not answered (as in test_reset_journey.py).
    with page.expect_request(lambda request: request.url.startswith(REDIRECT_URI + "?")) as sent:
        page.keyboard.press("Enter")
    params = query(sent.value.url)
    assert params["state"] == state and params["iss"] == live_server.url
    resp = redeem(live_server, rp, params["code"], verifier)
    assert resp.status_code == 200, resp.text


def _enter_on(page, target, key: str = "Tab") -> None:
    """Move the focus to ``target`` with ``key`` and press Enter on it."""
    _tab_to(page, target, key=key)
    page.keyboard.press("Enter")


def _lands_at_rp_by_enter(page, live_server, rp, state: str, verifier: str) -> None:
    """Enter in the focused field sends the form; the browser goes back to the relying party with a code it
    can redeem (the redirect to the absent relying party is watched, not answered)."""
    with page.expect_request(lambda request: request.url.startswith(REDIRECT_URI + "?")) as sent:
        page.keyboard.press("Enter")
    params = query(sent.value.url)
    assert params["state"] == state and params["iss"] == live_server.url
    resp = redeem(live_server, rp, params["code"], verifier)
    assert resp.status_code == 200, resp.text


def test_sms_reset_with_the_keyboard_only_in_uzbek(live_server, rp, new_page, make_account, sms):
    language = "uz"
    t = lambda msgid: _t(live_server.app, language, msgid)  # noqa: E731
    account = make_account(login="77-0000105", phone="+79160000105", locale=language)
    page = new_page(WIDTH, 740)
    state, verifier = start_authorization(page, live_server, rp, ui_locales=language)
    expect(page.locator("html")).to_have_attribute("lang", language)
    login = page.get_by_label(t(LOGIN_LABEL), exact=True)
    expect(login).to_be_focused()
    sign_in_url = sign_in_address(page)
    # From the sign-in form to «не могу войти».
    _enter_on(page, page.get_by_role("link", name=t(CANNOT_SIGN_IN), exact=True))

    expect(page).to_have_url(re.compile(re.escape(live_server.url + "/reset/?authz=")))
    expect(page.get_by_role("heading", level=1)).to_have_text(t(RESET_HEADING))
    expect(page.get_by_label(t(LOGIN_LABEL), exact=True)).to_be_focused()
    page.keyboard.type(account["login"])
    _tab_to(page, page.get_by_label(t(PHONE_LABEL), exact=True))
    page.keyboard.type("9160000105")
    wait_for_captcha(page)
    _tab_to(page, page.get_by_label(t(CAPTCHA_LABEL), exact=True))
    page.keyboard.type(CAPTCHA_ANSWER)
    screenshot(page, f"lang-{language}-keyboard-reset-form-{WIDTH}.png")
    page.keyboard.press("Enter")

    expect(page).to_have_url(live_server.url + "/reset/sent")
    expect(page.get_by_role("status")).to_have_text(t(RESET_SENT))
    _enter_on(page, page.get_by_role("link", name=t(TO_SIGN_IN), exact=True))
    expect(page).to_have_url(sign_in_url)
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.get_by_role("heading", level=1)).to_have_text(t(SIGN_IN_HEADING))
    # The sign-in page again, the focus in the (empty) login field.
    expect(page.get_by_label(t(LOGIN_LABEL), exact=True)).to_be_focused()

    from_sms = _reset_sms_password(live_server, sms, language, "+79160000105")

    _tab_to(page, page.get_by_label(t(LOGIN_LABEL), exact=True))
    page.keyboard.type(account["login"])
    _tab_to(page, page.get_by_label(t(PASSWORD_LABEL), exact=True))
    page.keyboard.type(from_sms)
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/password/change\?authz=[\w-]+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(t(CHANGE_HEADING))
    expect(page.get_by_label(t(CHANGE_LABELS[0]), exact=True)).to_be_focused()
    for label, value in zip(CHANGE_LABELS, (from_sms, OWN_PASSWORD, OWN_PASSWORD), strict=True):
        _tab_to(page, page.get_by_label(t(label), exact=True))
        page.keyboard.type(value)
    _lands_at_rp_by_enter(page, live_server, rp, state, verifier)


def test_recovery_by_sms_code_with_the_keyboard_only_in_russian(live_server, rp, new_page, make_account, sms):
    language = "ru"
    t = lambda msgid: _t(live_server.app, language, msgid)  # noqa: E731
    account = make_account(login="77-0000106", phone="+79160000106", surname=SURNAME, locale=language)
    page = new_page(WIDTH, 740)
    state, verifier = start_authorization(page, live_server, rp)
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.get_by_label(t(LOGIN_LABEL), exact=True)).to_be_focused()
    _enter_on(page, page.get_by_role("link", name=t(CANNOT_SIGN_IN), exact=True))
    expect(page).to_have_url(re.compile(re.escape(live_server.url + "/reset/?authz=")))
    # Past the reset form to the «Восстановление доступа» link below it.
    _enter_on(page, page.get_by_role("link", name=t(RECOVERY_HEADING), exact=True))

    expect(page).to_have_url(live_server.url + "/recovery/")
    expect(page.get_by_role("heading", level=1)).to_have_text(t(RECOVERY_HEADING))
    expect(page.get_by_label(t(IDENTIFIER_LABEL), exact=True)).to_be_focused()
    page.keyboard.type("8 (916) 000-01-06")
    _tab_to(page, page.get_by_label(t(SURNAME_LABEL), exact=True))
    page.keyboard.type(SURNAME)
    wait_for_captcha(page)
    _tab_to(page, page.get_by_label(t(CAPTCHA_LABEL), exact=True))
    page.keyboard.type(CAPTCHA_ANSWER)
    page.keyboard.press("Enter")

    expect(page).to_have_url(live_server.url + "/recovery/sent")
    code = page.get_by_label(t(CODE_LABEL), exact=True)
    expect(code).to_be_focused()
    page.keyboard.type(_recovery_sms_code(live_server, sms, language, "+79160000106", account["login"]))
    page.keyboard.press("Enter")

    expect(page).to_have_url(live_server.url + "/recovery/password")
    expect(page.get_by_label(t(NEW_LABELS[0]), exact=True)).to_be_focused()
    for label in NEW_LABELS:
        _tab_to(page, page.get_by_label(t(label), exact=True))
        page.keyboard.type(RECOVERED_PASSWORD)
    screenshot(page, f"lang-{language}-keyboard-recovery-password-{WIDTH}.png")
    page.keyboard.press("Enter")

    # Back on the sign-in page with the login filled in: the focus waits in the password field.
    expect(page).to_have_url(re.compile(re.escape(live_server.url) + r"/login\?authz=[\w-]+$"))
    expect(page.get_by_label(t(LOGIN_LABEL), exact=True)).to_have_value(account["login"])
    expect(page.get_by_label(t(PASSWORD_LABEL), exact=True)).to_be_focused()
    page.keyboard.type(RECOVERED_PASSWORD)
    _lands_at_rp_by_enter(page, live_server, rp, state, verifier)
