"""The staff console in headless Chromium, as staff use it at the counter, by keyboard where they would:

1. the first admin (made with `idp staff create`) signs in with a TOTP code, registers a relying party
   and copies its secret;
2. that relying party signs a migrant in with a real OIDC client library (authlib);
3. an operator creates an account and prints the slip (Chromium's PDF of the print view: one A5 page
   with the login and the temporary password);
4. the operator issues a new temporary password, and the old one stops working;
5. the operator blocks the account, and sign-in fails.

Screenshots (and the slip's PDF) go to artifacts/screenshots/admin-*."""

from __future__ import annotations

import io
import json
import re

import pyotp
import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.sync_api import expect
from pypdf import PdfReader

from ..helpers import query
from ..live import http_session
from ..live import sign_in
from ..staff import STAFF_PASSWORD
from ..staff import create_member
from .pages import REDIRECT_URI
from .pages import SCREENSHOTS
from .pages import WRONG_CREDENTIALS
from .pages import screenshot
from .pages import sign_in as fill_sign_in

pytestmark = pytest.mark.browser

A5_POINTS = (419.5, 595.3)
NEW_PASSWORD = "очень длинный пароль сотрудника"


def _staff_sign_in(page, url: str, username: str, password: str, secret: str) -> None:
    """Keyboard only: the username field has the focus, Tab moves on, Enter submits."""
    page.goto(url + "/admin")
    expect(page).to_have_url(re.compile(re.escape(url) + r"/admin/login"))
    expect(page.get_by_label("Имя пользователя")).to_be_focused()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Пароль", exact=True)).to_be_focused()
    page.keyboard.type(password)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Код из приложения-аутентификатора")).to_be_focused()
    page.keyboard.type(pyotp.TOTP(secret).now())
    page.keyboard.press("Enter")


def _change_first_password(page, old: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text("Смена пароля сотрудника")
    expect(page.get_by_label("Текущий пароль")).to_be_focused()
    page.keyboard.type(old)
    page.keyboard.press("Tab")
    page.keyboard.type(NEW_PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type(NEW_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Пароль изменён.")


def _migrant_sign_in(page, url: str, login: str, password: str) -> None:
    page.goto(url + "/login")
    fill_sign_in(page, login, password)


def test_admin_registers_a_client_that_signs_a_migrant_in(live_server, new_page, account):
    # The runbook's first step: the first admin from the command line, with the TOTP secret printed.
    result = live_server.app.test_cli_runner().invoke(
        args=[
            "staff",
            "create",
            "--username",
            "ivanova",
            "--name",
            "Иванова Мария",
            "--role",
            "admin",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    secret = pyotp.parse_uri(printed["provisioning_uri"]).secret
    assert secret == printed["totp_secret"]

    page = new_page(1280, 900)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    _staff_sign_in(page, live_server.url, "ivanova", printed["password"], secret)
    _change_first_password(page, printed["password"])
    expect(page).to_have_url(live_server.url + "/admin/clients")
    screenshot(page, "admin-clients-1280.png")

    page.get_by_role("link", name="Зарегистрировать клиента").click()
    expect(page.get_by_label("Название")).to_be_focused()
    page.keyboard.type("Портал партнёра")
    page.get_by_label("Адреса возврата (redirect_uri), по одному в строке").fill(REDIRECT_URI)
    page.get_by_label("Адреса после выхода (post_logout_redirect_uri), по одному в строке").fill(
        "https://rp.example/bye"
    )
    page.get_by_label("offline_access").check()
    page.get_by_label("Доверенный (без экрана согласия)").check()
    page.get_by_role("button", name="Зарегистрировать").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Клиент зарегистрирован")
    client_id = page.locator("#client-id").input_value()
    page.get_by_role("button", name="Копировать").nth(1).click()
    expect(page.locator("#copied")).to_be_visible()
    client_secret = page.evaluate("navigator.clipboard.readText()")
    assert client_secret == page.locator("#client-secret").input_value() and len(client_secret) > 40
    screenshot(page, "admin-client-secret-1280.png")
    page.get_by_role("link", name="Готово").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Портал партнёра")

    # (2) The relying party, configured with what the admin copied, signs a migrant in with authlib.
    http = http_session()
    meta = http.get(live_server.url + "/.well-known/openid-configuration", timeout=10).json()
    rp = OAuth2Session(
        client_id=client_id,
        client_secret=client_secret,
        scope="openid profile offline_access",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    rp.trust_env = False
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    callback = sign_in(http_session(), live_server.url, url, account["login"], account["password"])
    assert callback.status_code == 302, callback.text
    location = callback.headers["Location"]
    assert query(location)["state"] == state and query(location)["iss"] == live_server.url
    token = rp.fetch_token(meta["token_endpoint"], authorization_response=location, code_verifier=verifier)
    keys = KeySet.import_key_set(http.get(meta["jwks_uri"], timeout=10).json())
    claims = jwt.decode(token["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["sub"] == account["sub"] and claims["aud"] == client_id and claims["nonce"] == nonce
    assert rp.get(meta["userinfo_endpoint"], timeout=10).json()["family_name"] == "Рахимов"
    assert token["refresh_token"]
    rp.close()
    http.close()


def test_operator_creates_prints_reissues_and_blocks(live_server, new_page):
    admin = create_member(live_server.app, "admin", "admin1")
    page = new_page(1280, 900)
    _staff_sign_in(page, live_server.url, admin["username"], STAFF_PASSWORD, admin["totp_secret"])
    # The admin adds the operator: a password and a TOTP QR code, shown once.
    page.get_by_role("link", name="Сотрудники").click()
    page.get_by_role("link", name="Добавить сотрудника").click()
    page.get_by_label("Имя пользователя").fill("petrova")
    page.get_by_label("Фамилия и имя").fill("Петрова Ольга")
    page.get_by_role("button", name="Добавить").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Сотрудник добавлен")
    expect(page.get_by_role("img", name="QR-код для приложения-аутентификатора")).to_be_visible()
    operator_password = page.locator("#enrolled-password").inner_text()
    operator_secret = page.locator("#enrolled-totp-secret").inner_text()

    page = new_page(1280, 900)
    _staff_sign_in(page, live_server.url, "petrova", operator_password, operator_secret)
    _change_first_password(page, operator_password)
    expect(page).to_have_url(live_server.url + "/admin/accounts/")
    expect(page.get_by_role("link", name="Клиенты OAuth")).to_have_count(0)

    # (3) A new account from an application, then the slip.
    page.get_by_role("link", name="Новая учётная запись").click()
    expect(page.get_by_label("Логин (№ заявления на патент)")).to_be_focused()
    page.keyboard.type("77-5555 001")
    for value in ("Каримов", "Рустам", "", "+7 916 555-00-11", "", ""):
        page.keyboard.press("Tab")
        page.keyboard.type(value)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Учётная запись создана")
    login = page.locator("#issued-login").inner_text()
    first_password = page.locator("#temporary-password").inner_text()
    assert login == "775555001" and len(first_password) == 10
    screenshot(page, "admin-account-issued-1280.png")

    page.emulate_media(media="print")
    expect(page.get_by_role("heading", name="Учётная запись создана")).to_be_hidden()
    expect(page.locator(".slip")).to_be_visible()
    screenshot(page, "admin-slip-print.png")
    printed = page.pdf(prefer_css_page_size=True, print_background=False)
    (SCREENSHOTS / "admin-slip.pdf").write_bytes(printed)
    pdf = PdfReader(io.BytesIO(printed))
    assert len(pdf.pages) == 1
    width, height = float(pdf.pages[0].mediabox.width), float(pdf.pages[0].mediabox.height)
    assert abs(width - A5_POINTS[0]) < 2 and abs(height - A5_POINTS[1]) < 2, (width, height)
    text = pdf.pages[0].extract_text()
    for expected in (login, first_password, "https://lkmmc.mos.ru"):
        assert expected in text, expected
    page.emulate_media(media="screen")

    migrant = new_page(1280, 800)
    _migrant_sign_in(migrant, live_server.url, login, first_password)
    expect(migrant).to_have_url(live_server.url + "/password/change")

    # (4) A new temporary password: the first one stops working.
    page.get_by_role("link", name="К учётной записи").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Каримов Рустам")
    issue = page.locator("form", has=page.get_by_role("button", name="Выдать временный пароль"))
    issue.get_by_label("Причина").fill("потерял телефон")
    issue.get_by_label("Подтверждаю").check()
    issue.get_by_role("button", name="Выдать временный пароль").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Выдан новый временный пароль")
    second_password = page.locator("#temporary-password").inner_text()
    assert second_password != first_password

    migrant = new_page(1280, 800)
    _migrant_sign_in(migrant, live_server.url, login, first_password)
    expect(migrant.get_by_role("alert")).to_have_text(WRONG_CREDENTIALS)
    _migrant_sign_in(migrant, live_server.url, login, second_password)
    expect(migrant).to_have_url(live_server.url + "/password/change")

    # (5) Blocked: the right password no longer signs in, and the open session is over.
    page.get_by_role("link", name="К учётной записи").click()
    block = page.locator("form", has=page.get_by_role("button", name="Заблокировать"))
    block.get_by_label("Причина").fill("по заявлению владельца")
    block.get_by_label("Подтверждаю").check()
    block.get_by_role("button", name="Заблокировать").click()
    expect(page.get_by_role("status")).to_have_text("Учётная запись заблокирована.")
    history = page.locator("table").last
    expect(history).to_contain_text("Учётная запись заблокирована")
    expect(history).to_contain_text("по заявлению владельца")
    screenshot(page, "admin-account-blocked-1280.png")
    migrant.goto(live_server.url + "/password/change")
    expect(migrant).to_have_url(re.compile(re.escape(live_server.url) + r"/login"))
    _migrant_sign_in(migrant, live_server.url, login, second_password)
    expect(migrant.get_by_role("alert")).to_have_text(WRONG_CREDENTIALS)
