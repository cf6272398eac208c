"""Staff of the console for the tests: created through the service (password already changed), and
signed in at /admin/login with a TOTP code computed by pyotp, as an authenticator app would."""

from __future__ import annotations

import time

import pyotp
import pytest

from idp.extensions import db
from idp.services import audit
from idp.services import passwords
from idp.services.staff import members
from idp.services.staff import totp

from .helpers import csrf_token
from .helpers import settings_of

STAFF_PASSWORD = "counter staff pass phrase"


def totp_code(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).generate_otp(step)


def fresh_code(member: dict, now: float | None = None) -> str:
    """A code the provider has not seen for this member: the current step, or the next one (still
    accepted, RFC 6238 §5.2's window) when the current one is used. Two sign-ins per 30 s at most."""
    current = int(now if now is not None else time.time()) // totp.TOTP_INTERVAL
    step = max(current, member.get("last_step", current - 1) + 1)
    assert step <= current + totp.TOTP_WINDOW, "no unused TOTP step left in the window"
    member["last_step"] = step
    return totp_code(member["totp_secret"], step)


def create_member(
    app, role: str = "operator", username: str | None = None, must_change: bool = False
) -> dict:
    with app.app_context():
        settings = settings_of(app)
        ctx = audit.Context(audit.Actor("cli", None, "tests"), None, int(time.time()))
        enrolment = members.create_staff(
            db.session,
            ctx,
            username=username or f"{role}1",
            full_name=f"Тестовый {role}",
            role=role,
            settings=settings,
        )
        user = enrolment.user
        password = enrolment.password
        if not must_change:
            user.password_hash = passwords.hash_password(STAFF_PASSWORD, settings.passwords.bcrypt_rounds)
            user.password_change.state = "done"
            password = STAFF_PASSWORD
        db.session.commit()
        return {
            "id": user.id,
            "username": user.username,
            "password": password,
            "totp_secret": enrolment.totp_secret,
            "role": role,
        }


def staff_sign_in(client, member: dict, *, code: str | None = None, password: str | None = None):
    """POST the staff sign-in form; return the response (a redirect on success)."""
    page = client.get("/admin/login")
    return client.post(
        "/admin/login",
        data={
            "csrf_token": csrf_token(page.get_data(as_text=True)),
            "username": member["username"],
            "password": member["password"] if password is None else password,
            "code": fresh_code(member) if code is None else code,
        },
    )


@pytest.fixture
def make_staff(app):
    return lambda role="operator", **kw: create_member(app, role, **kw)


@pytest.fixture
def admin_client(app):
    """A Flask test client signed in as an admin; ``.member`` is the admin's record."""
    member = create_member(app, "admin", "admin1")
    client = app.test_client()
    response = staff_sign_in(client, member)
    assert response.status_code == 302, response.get_data(as_text=True)
    client.member = member
    return client


@pytest.fixture
def operator_client(app):
    member = create_member(app, "operator", "operator1")
    client = app.test_client()
    response = staff_sign_in(client, member)
    assert response.status_code == 302, response.get_data(as_text=True)
    client.member = member
    return client


def post_form(client, path: str, data: dict, page_path: str | None = None):
    """POST a console form with the CSRF token of the page at ``page_path`` (or ``path``)."""
    page = client.get(page_path or path)
    return client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)), **data})
