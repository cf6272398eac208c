"""The staff console's door: sign-in with password and TOTP, the role of every route, separate sessions,
replayed codes, the idle timeout. Routes are listed from ``app.url_map``, so a new one is covered at once."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select
from sqlalchemy import update

from idp.extensions import db
from idp.models import AuditEvent
from idp.models import StaffSession
from idp.models import StaffUser
from idp.services.staff import totp

from ..helpers import csrf_token
from ..helpers import settings_of
from ..staff import STAFF_PASSWORD
from ..staff import create_member
from ..staff import fresh_code
from ..staff import post_form
from ..staff import staff_sign_in
from ..staff import totp_code

GENERIC = "Неверное имя пользователя, пароль или код."
# The only console routes open without a staff session: signing in, and signing out (which ends nothing
# without one).
PUBLIC = {"admin.login", "admin.logout"}


def _console_routes(app):
    """(endpoint, a URL for it, methods) of every route under /admin, with placeholder arguments."""
    adapter = app.url_map.bind("localhost")
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        values = {
            name: (1 if "int" in repr(rule._converters[name]).lower() else "x") for name in rule.arguments
        }
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        routes.append((rule.endpoint, adapter.build(rule.endpoint, values), methods))
    assert len(routes) > 20
    return routes


def _call(client, method: str, url: str, token: str):
    if method == "GET":
        return client.get(url)
    # With a valid CSRF token, so that what answers is the role check and not CSRF protection.
    return client.open(url, method=method, data={"csrf_token": token})


def _audit_count(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(AuditEvent.id)).all())


def test_every_console_route_but_sign_in_checks_a_role(app):
    for endpoint, url, _methods in _console_routes(app):
        view = app.view_functions[endpoint]
        if endpoint in PUBLIC:
            continue
        roles = getattr(view, "allowed_roles", None)
        assert roles, f"{endpoint} ({url}) is not behind staff_required"
        assert roles <= {"operator", "admin"}


def test_every_admin_route_refuses_an_operator(app, operator_client, account, rp):
    token = csrf_token(operator_client.get("/admin/accounts/").get_data(as_text=True))
    checked = 0
    before = _audit_count(app)
    for endpoint, url, methods in _console_routes(app):
        roles = getattr(app.view_functions[endpoint], "allowed_roles", None)
        if roles != frozenset({"admin"}):
            continue
        for method in methods:
            response = _call(operator_client, method, url, token)
            assert response.status_code == 403, (endpoint, method, response.status_code)
            checked += 1
    assert checked >= 15
    assert _audit_count(app) == before


@pytest.mark.parametrize("who", ["anonymous", "migrant"])
def test_every_staff_route_refuses_anonymous_and_migrant_sessions(app, account, who):
    client = app.test_client()
    if who == "migrant":
        page = client.get("/login")
        signed_in = client.post(
            "/login",
            data={
                "csrf_token": csrf_token(page.get_data(as_text=True)),
                "login": account["login"],
                "password": account["password"],
            },
        )
        assert signed_in.status_code == 302 and client.get("/").status_code == 200
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    before = _audit_count(app)
    for endpoint, url, methods in _console_routes(app):
        if endpoint in PUBLIC:
            continue
        for method in methods:
            response = _call(client, method, url, token)
            assert response.status_code == 302, (endpoint, method, response.status_code)
            assert response.headers["Location"].startswith("/admin/login"), (
                endpoint,
                response.headers["Location"],
            )
    assert _audit_count(app) == before


def test_a_migrant_session_token_is_no_staff_cookie(app, account):
    client = app.test_client()
    page = client.get("/login")
    client.post(
        "/login",
        data={
            "csrf_token": csrf_token(page.get_data(as_text=True)),
            "login": account["login"],
            "password": account["password"],
        },
    )
    with client.session_transaction() as session:
        sso_token = session["sso"]
    client.set_cookie("idp_staff", sso_token, path="/admin")
    assert client.get("/admin/accounts/").headers["Location"].startswith("/admin/login")


def test_a_staff_session_signs_nobody_into_the_cabinet(admin_client):
    assert admin_client.get("/").headers["Location"] == "/login"
    assert admin_client.get("/password/change").status_code == 302
    cookie = admin_client.get_cookie("idp_staff", path="/admin")
    assert cookie is not None
    assert cookie.path == "/admin" and cookie.http_only and cookie.same_site == "Strict"
    # The browser does not even send it outside /admin.
    assert admin_client.get_cookie("idp_staff", path="/") is None


def test_sign_in_with_password_and_code_opens_the_console(app, make_staff):
    member = make_staff("operator")
    client = app.test_client()
    response = staff_sign_in(client, member)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    assert client.get("/admin/").headers["Location"] == "/admin/accounts/"
    page = client.get("/admin/accounts/").get_data(as_text=True)
    assert "Учётные записи" in page and "Клиенты OAuth" not in page
    with app.app_context():
        [event] = db.session.scalars(select(AuditEvent).filter_by(event="staff.signed_in")).all()
        assert event.actor_name == member["username"] and event.ip == "127.0.0.1"


@pytest.mark.parametrize(
    "case", ["wrong_code", "wrong_password", "unknown_user", "no_code", "code_from_the_past"]
)
def test_one_generic_error_whatever_was_wrong(app, make_staff, case):
    member = make_staff("admin")
    now = int(time.time())
    kwargs = {
        "wrong_code": {"code": "000000" if fresh_code(dict(member)) != "000000" else "111111"},
        "wrong_password": {"password": "not the password at all"},
        "unknown_user": {},
        "no_code": {"code": " "},
        "code_from_the_past": {"code": totp_code(member["totp_secret"], now // 30 - 3)},
    }[case]
    if case == "unknown_user":
        member = {**member, "username": "nobody"}
    client = app.test_client()
    response = staff_sign_in(client, member, **kwargs)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert GENERIC in html or case == "no_code"
    assert client.get_cookie("idp_staff", path="/admin") is None


def test_a_code_cannot_be_replayed(app, make_staff):
    member = make_staff("operator")
    step = int(time.time()) // totp.TOTP_INTERVAL
    code = totp_code(member["totp_secret"], step)
    first = app.test_client()
    assert staff_sign_in(first, member, code=code).status_code == 302
    # The same code again, even a moment later and from another browser: refused (RFC 6238 §5.2).
    second = app.test_client()
    response = staff_sign_in(second, member, code=code)
    assert response.status_code == 200 and GENERIC in response.get_data(as_text=True)
    # So is a code of an earlier step that is still inside the window.
    response = staff_sign_in(second, member, code=totp_code(member["totp_secret"], step - 1))
    assert GENERIC in response.get_data(as_text=True)
    # The next step's code works once.
    assert staff_sign_in(second, member, code=totp_code(member["totp_secret"], step + 1)).status_code == 302
    with app.app_context():
        assert db.session.get(StaffUser, member["id"]).totp_last_step == step + 1


@pytest.mark.config(login={"max_failures": 3, "lockout": 900, "captcha_after": 10})
def test_repeated_failures_lock_the_member_out(app, make_staff):
    member = make_staff("admin")
    client = app.test_client()
    for _ in range(3):
        staff_sign_in(client, member, password="wrong wrong wrong", code="123456")
    response = staff_sign_in(client, member)
    assert GENERIC in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(StaffUser, member["id"]).locked_until > time.time()


def test_idle_timeout_ends_the_staff_session(app, operator_client):
    idle = settings_of(app).staff.idle_timeout
    assert idle == 1800
    with app.app_context():
        db.session.execute(update(StaffSession).values(last_seen_at=StaffSession.last_seen_at - (idle - 120)))
        db.session.commit()
    # Active within the timeout: still signed in, and the activity counts.
    assert operator_client.get("/admin/accounts/").status_code == 200
    with app.app_context():
        [row] = db.session.scalars(select(StaffSession)).all()
        assert row.last_seen_at >= time.time() - 5
        db.session.execute(update(StaffSession).values(last_seen_at=StaffSession.last_seen_at - idle))
        db.session.commit()
    response = operator_client.get("/admin/accounts/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/admin/login")
    with app.app_context():
        assert db.session.scalars(select(StaffSession)).one().ended_at is not None


@pytest.mark.config(staff={"idle_timeout": 300})
def test_idle_timeout_is_configurable(app, operator_client):
    with app.app_context():
        db.session.execute(update(StaffSession).values(last_seen_at=StaffSession.last_seen_at - 301))
        db.session.commit()
    assert operator_client.get("/admin/accounts/").status_code == 302


def test_sign_out_ends_the_session_on_the_server(app, operator_client):
    cookie = operator_client.get_cookie("idp_staff", path="/admin").value
    response = post_form(operator_client, "/admin/logout", {}, page_path="/admin/accounts/")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login"
    stolen = app.test_client()
    stolen.set_cookie("idp_staff", cookie, path="/admin")
    assert stolen.get("/admin/accounts/").status_code == 302


def test_a_new_member_changes_the_password_first(app, make_staff):
    member = make_staff("operator", must_change=True)
    client = app.test_client()
    response = staff_sign_in(client, member)
    assert response.headers["Location"] == "/admin/password"
    assert client.get("/admin/accounts/").headers["Location"] == "/admin/password"
    refused = post_form(
        client, "/admin/password", {"old": member["password"], "new": "short", "repeat": "short"}
    )
    assert "не короче 12 символов" in refused.get_data(as_text=True)
    common = post_form(
        client,
        "/admin/password",
        {"old": member["password"], "new": "password1234", "repeat": "password1234"},
    )
    assert "слишком распространён" in common.get_data(as_text=True)
    personal = post_form(
        client,
        "/admin/password",
        {"old": member["password"], "new": "Тестовый-2024-смена", "repeat": "Тестовый-2024-смена"},
    )
    assert "Пароль содержит ваше имя пользователя или имя." in personal.get_data(as_text=True)
    done = post_form(
        client,
        "/admin/password",
        {"old": member["password"], "new": STAFF_PASSWORD, "repeat": STAFF_PASSWORD},
    )
    assert done.status_code == 302
    assert client.get("/admin/accounts/").status_code == 200
    with app.app_context():
        assert not db.session.get(StaffUser, member["id"]).must_change_password


def test_sign_in_returns_to_the_page_asked_for_but_never_elsewhere(app, make_staff):
    member = make_staff("admin")
    client = app.test_client()
    assert client.get("/admin/keys").headers["Location"] == "/admin/login?next=/admin/keys"
    page = client.get("/admin/login?next=/admin/keys")
    response = client.post(
        "/admin/login?next=/admin/keys",
        data={
            "csrf_token": csrf_token(page.get_data(as_text=True)),
            "username": member["username"],
            "password": member["password"],
            "code": fresh_code(member),
        },
    )
    assert response.headers["Location"] == "/admin/keys"
    other = app.test_client()
    page = other.get("/admin/login?next=//evil.example/admin/")
    response = other.post(
        "/admin/login?next=//evil.example/admin/",
        data={
            "csrf_token": csrf_token(page.get_data(as_text=True)),
            "username": member["username"],
            "password": member["password"],
            "code": fresh_code(member),
        },
    )
    assert response.headers["Location"] == "/admin/"


def test_a_disabled_member_is_signed_out(app, admin_client, make_staff):
    member = make_staff("operator")
    client = app.test_client()
    staff_sign_in(client, member)
    assert client.get("/admin/accounts/").status_code == 200
    path = f"/admin/staff/{member['id']}/disable"
    response = post_form(admin_client, path, {"state-confirm": "y"}, page_path=f"/admin/staff/{member['id']}")
    assert response.status_code == 302
    assert client.get("/admin/accounts/").status_code == 302
    assert GENERIC in staff_sign_in(app.test_client(), member).get_data(as_text=True)


def test_the_totp_secret_is_sealed_at_rest(app, make_staff):
    member = make_staff("operator")
    with app.app_context():
        row = db.session.get(StaffUser, member["id"])
        assert member["totp_secret"] not in row.totp_secret_encrypted
        assert totp.unseal(row.totp_secret_encrypted, totp.sealing_key("", "another key")) is None


def test_the_cli_prints_the_provisioning_uri_and_a_qr_code(app, tmp_path):
    png = tmp_path / "qr.png"
    result = app.test_cli_runner().invoke(
        args=[
            "staff",
            "create",
            "--username",
            "Ivanova",
            "--name",
            "Иванова Мария",
            "--role",
            "admin",
            "--qr-png",
            str(png),
        ]
    )
    assert result.exit_code == 0, result.output
    assert "otpauth://totp/idp:ivanova?secret=" in result.output
    assert "█" in result.output  # the QR code, in block characters
    assert png.read_bytes().startswith(b"\x89PNG")
    duplicate = app.test_cli_runner().invoke(
        args=["staff", "create", "--username", "ivanova", "--name", "x", "--role", "admin"]
    )
    assert duplicate.exit_code != 0 and "taken" in duplicate.output
    member = create_member(app, "operator", "petrov")
    reset = app.test_cli_runner().invoke(
        args=["staff", "reset-credentials", "--username", "petrov", "--json"]
    )
    assert reset.exit_code == 0 and member["totp_secret"] not in reset.output
