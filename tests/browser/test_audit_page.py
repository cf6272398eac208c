"""The staff console's audit log on a 360 px phone: every event a block of labelled lines, the filters
one under another, no sideways scroll; and the page links to the next page of older events."""

from __future__ import annotations

import pyotp
import pytest
from playwright.sync_api import expect

from idp.extensions import db
from idp.services import audit

from ..staff import STAFF_PASSWORD
from ..staff import create_member
from .pages import no_horizontal_scroll
from .pages import screenshot

pytestmark = pytest.mark.browser

LONG_AGENT = "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) " * 2


def test_the_audit_log_fits_a_phone(live_server, app, new_page):
    admin = create_member(app, "admin", "ivanova")
    with app.app_context():
        ctx = audit.Context(audit.ANONYMOUS, "2001:db8:1234:5678:9abc:def0:1234:5678", 1_800_000_000)
        for index in range(60):
            audit.record(
                db.session,
                ctx,
                "account.sign_in_failed",
                reason=None,
                details={"result": "wrong_password", "user_agent": LONG_AGENT, "n": index},
            )
        db.session.commit()
    page = new_page(360, 740)
    page.goto(live_server.url + "/admin/login")
    page.get_by_label("Имя пользователя").fill(admin["username"])
    page.get_by_label("Пароль", exact=True).fill(STAFF_PASSWORD)
    page.get_by_label("Код из приложения-аутентификатора").fill(pyotp.TOTP(admin["totp_secret"]).now())
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="Журнал", exact=True)).to_be_visible()
    page.goto(live_server.url + "/admin/audit")
    expect(page.get_by_role("heading", level=1)).to_have_text("Журнал")
    expect(page.locator("table.log tbody tr")).to_have_count(50)
    no_horizontal_scroll(page, 360)
    screenshot(page, "audit-360.png")
    page.get_by_role("link", name="Более ранние события →").click()
    expect(page.locator("table.log tbody tr")).to_have_count(12)  # 60, the admin added, the admin signed in
    no_horizontal_scroll(page, 360)
