"""The device authorization grant (RFC 8628) in headless Chromium: a television (authlib's requests client,
on the device's side of the protocol) asks for a code, the person opens «Введите код с экрана» on their
phone, types the code or follows verification_uri_complete, signs in and allows or refuses; the television's
polling gets the tokens, or access_denied. A mistyped code is explained in the page's language.

authlib has the server side of RFC 8628 only: the device authorization request (§3.1) is a plain POST
from the same requests session, and the polling (§3.4) is authlib's ``fetch_token`` with the device grant.
"""

from __future__ import annotations

import re
import time

import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.requests_client import OAuthError
from flask_babel import force_locale
from flask_babel import gettext
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.sync_api import expect

from idp.languages import NAMES
from idp.services.clients import DEVICE_CODE

from ..live import http_session
from .pages import screenshot
from .pages import sign_in

# The shortest interval the configuration allows, so the journey does not wait 5 s per poll.
pytestmark = [pytest.mark.browser, pytest.mark.config(device={"interval": 1})]

HEADING = "Введите код с экрана"
CODE_LABEL = "Код с экрана"
CONFIRM_HEADING = "Разрешить вход на устройстве?"
CODE_NOT_FOUND = "Код не найден или устарел. Проверьте код на экране устройства и введите его ещё раз."


class Television:
    """The device's side: asks for a code, then polls the token endpoint as RFC 8628 §3.5 says (waiting
    the interval, and 5 s more after slow_down)."""

    def __init__(self, live_server, client_id: str):
        self.url = live_server.url
        self.session = OAuth2Session(client_id=client_id, token_endpoint_auth_method="none")
        # Loopback only: no proxy from the environment.
        self.session.trust_env = False

    def start(self, scope: str = "openid profile") -> dict:
        response = self.session.post(
            self.url + "/device/authorize",
            data={"client_id": self.session.client_id, "scope": scope},
            timeout=10,
            # No token yet: the device authorization request is not a protected resource request.
            withhold_token=True,
        )
        assert response.status_code == 200, response.text
        self.grant = response.json()
        self.interval = self.grant["interval"]
        return self.grant

    def poll_once(self) -> dict:
        return self.session.fetch_token(
            self.url + "/token", grant_type=DEVICE_CODE, device_code=self.grant["device_code"], timeout=10
        )

    def poll(self, deadline: float = 30.0) -> dict:
        """Poll until the person has decided: the tokens, or the OAuthError of a refusal."""
        until = time.monotonic() + deadline
        while time.monotonic() < until:
            time.sleep(self.interval)
            try:
                return self.poll_once()
            except OAuthError as error:
                if error.error == "slow_down":
                    self.interval += 5
                elif error.error != "authorization_pending":
                    raise
        raise AssertionError("the person's decision never reached the device")


@pytest.fixture
def television(live_server, make_rp):
    rp = make_rp(
        name="Терминал миграционного центра",
        public=True,
        trusted=True,
        grant_types=[DEVICE_CODE, "refresh_token"],
        redirect_uris=[],
    )
    return Television(live_server, rp["client_id"])


def _t(app, language: str, msgid: str) -> str:
    with app.test_request_context(), force_locale(language):
        return gettext(msgid)


def _verified_claims(live_server, id_token: str) -> dict:
    keys = KeySet.import_key_set(http_session().get(live_server.url + "/jwks.json", timeout=10).json())
    return jwt.decode(id_token, keys).claims


def test_the_code_typed_on_a_phone_signs_the_television_in(live_server, account, television, new_page):
    grant = television.start("openid profile offline_access")
    assert grant["verification_uri"] == live_server.url + "/device"
    # Nobody has typed the code yet.
    with pytest.raises(OAuthError) as pending:
        television.poll_once()
    assert pending.value.error == "authorization_pending"

    page = new_page(360, 740)
    page.goto(grant["verification_uri"])
    expect(page.get_by_role("heading", level=1)).to_have_text(HEADING)
    screenshot(page, "device-1-code.png")
    # As people type it: lower case, a space instead of the dash.
    page.get_by_label(CODE_LABEL, exact=True).fill(grant["user_code"].lower().replace("-", " "))
    page.get_by_role("button", name="Продолжить", exact=True).click()
    # Not signed in: the sign-in page, and back to the confirmation after it.
    expect(page).to_have_url(re.compile(re.escape(live_server.url) + r"/login"))
    sign_in(page, account["login"], account["password"])
    expect(page).to_have_url(live_server.url + "/device/confirm")
    expect(page.get_by_role("heading", level=1)).to_have_text(CONFIRM_HEADING)
    expect(page.get_by_text("Устройство сайта «Терминал миграционного центра» просит:")).to_be_visible()
    screenshot(page, "device-2-confirm.png")
    page.get_by_role("button", name="Разрешить", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Готово")
    expect(
        page.get_by_text("Вход разрешён. Вернитесь к устройству: оно продолжит работу само.")
    ).to_be_visible()

    tokens = television.poll()
    assert tokens["token_type"].lower() == "bearer" and tokens["refresh_token"]
    claims = _verified_claims(live_server, tokens["id_token"])
    assert claims["sub"] == account["sub"] and claims["aud"] == television.session.client_id
    assert claims["iss"] == live_server.url
    info = television.session.get(live_server.url + "/userinfo", timeout=10)
    assert info.status_code == 200 and info.json()["given_name"] == "Алишер"
    # The code worked once: polling again is invalid_grant.
    time.sleep(television.interval)
    with pytest.raises(OAuthError) as spent:
        television.poll_once()
    assert spent.value.error == "invalid_grant"


def test_verification_uri_complete_then_refusal_gives_access_denied(
    live_server, account, television, new_page
):
    grant = television.start()
    assert grant["verification_uri_complete"].startswith(live_server.url + "/device?user_code=")
    page = new_page(360, 740)
    # The QR code's address: the code is filled in; the person only checks it and continues.
    page.goto(grant["verification_uri_complete"])
    expect(page.get_by_label(CODE_LABEL, exact=True)).to_have_value(grant["user_code"])
    page.get_by_role("button", name="Продолжить", exact=True).click()
    sign_in(page, account["login"], account["password"])
    expect(page.get_by_role("heading", level=1)).to_have_text(CONFIRM_HEADING)
    page.get_by_role("button", name="Отказать", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Вход не разрешён")

    with pytest.raises(OAuthError) as refused:
        television.poll()
    assert refused.value.error == "access_denied"
    # The code is decided: typing it again finds nothing.
    page.goto(grant["verification_uri"])
    page.get_by_label(CODE_LABEL, exact=True).fill(grant["user_code"])
    page.get_by_role("button", name="Продолжить", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(CODE_NOT_FOUND)


def test_a_wrong_code_is_explained_in_the_page_language(live_server, account, television, new_page):
    app = live_server.app
    grant = television.start()
    page = new_page(360, 740)
    page.goto(live_server.url + "/device")
    page.get_by_role("button", name=NAMES["uz"], exact=True).click()
    expect(page.locator("html")).to_have_attribute("lang", "uz")
    expect(page.get_by_role("heading", level=1)).to_have_text(_t(app, "uz", HEADING))
    code = page.get_by_label(_t(app, "uz", CODE_LABEL), exact=True)
    code.fill("BCDF-GHJK" if grant["user_code"] != "BCDF-GHJK" else "ZXWV-TSRQ")
    page.get_by_role("button", name=_t(app, "uz", "Продолжить"), exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(_t(app, "uz", CODE_NOT_FOUND))
    assert _t(app, "uz", CODE_NOT_FOUND) != CODE_NOT_FOUND
    expect(page.locator("html")).to_have_attribute("lang", "uz")
    screenshot(page, "device-3-wrong-code-uz.png")
    # The right code from the same page goes on to the sign-in, still in Uzbek.
    page.get_by_label(_t(app, "uz", CODE_LABEL), exact=True).fill(grant["user_code"])
    page.get_by_role("button", name=_t(app, "uz", "Продолжить"), exact=True).click()
    expect(page).to_have_url(re.compile(re.escape(live_server.url) + r"/login"))
    expect(page.locator("html")).to_have_attribute("lang", "uz")
