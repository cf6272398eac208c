"""The demo portal (clients/portal): single sign-on after the cabinet, its narrower scopes, and single
logout in both directions between it and the cabinet."""

from __future__ import annotations

import re
import time

from ..helpers import sign_in_action
from ..live import http_session
from ..relying_parties import sign_in_at

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _wait_until_signed_out(running, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while running.sessions() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.sessions() == 0, "no back-channel logout reached the relying party"


def test_signed_in_at_the_cabinet_the_portal_asks_no_password(live_server, account, demo_rps):
    browser = http_session()
    sign_in_at(demo_rps.cabinet, browser, live_server.url, account)
    # No account given: sign_in_at fails if the provider shows anything but a redirect back.
    page = sign_in_at(demo_rps.portal, browser, live_server.url)
    assert "Здравствуйте, Рахимов Алишер Бахтиёрович!" in page.text
    (portal_session,) = demo_rps.portal.rp.store._sessions.values()
    (cabinet_session,) = demo_rps.cabinet.rp.store._sessions.values()
    # One provider session behind both; the portal got only what it registered for.
    assert portal_session.sid == cabinet_session.sid
    assert portal_session.token["scope"] == "openid profile" and "refresh_token" not in portal_session.token
    assert not {"phone_number", "patent_application_number"} & set(portal_session.profile)
    # The provider's signed-in page names both sites.
    landing = browser.get(live_server.url + "/", timeout=10).text
    assert "Личный кабинет" in landing and "Портал услуг" in landing
    browser.close()


def test_sign_out_at_the_cabinet_signs_out_the_portal(live_server, account, demo_rps):
    browser = http_session()
    page = sign_in_at(demo_rps.cabinet, browser, live_server.url, account)
    sign_in_at(demo_rps.portal, browser, live_server.url)
    form = {"csrf": _CSRF.search(page.text).group(1)}
    signed_out = browser.post(demo_rps.cabinet.url + "/logout", data=form, timeout=10)
    assert "Вы вышли." in signed_out.text
    _wait_until_signed_out(demo_rps.portal)
    assert "Войти" in browser.get(demo_rps.portal.url + "/", timeout=10).text
    browser.close()


def test_the_portal_without_a_provider_session_sends_to_the_sign_in_page(live_server, demo_rps):
    browser = http_session()
    start = browser.get(demo_rps.portal.url + "/login", allow_redirects=False, timeout=10)
    page = browser.get(start.headers["Location"], timeout=10)
    # The provider's sign-in form, /authorize's own answer (idp.views.oauth.proceed).
    assert page.url.startswith(live_server.url + "/authorize?") and 'type="password"' in page.text
    assert sign_in_action(page.text).startswith("/login?authz=")
    browser.close()
