"""The audit log misses nothing (issue 14): failed sign-ins and locks of migrants and staff (with the
address and the browser, never the password), logouts, consents given, refused and taken back, every
command of the server console (as «консоль сервера» and the OS user); the console pages through it and
exports a date range as CSV and JSON Lines (parsed here); `idp purge` drops what is older than the
retention, and nothing else in the application updates or deletes an event."""

from __future__ import annotations

import csv
import datetime
import getpass
import io
import json
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent
from idp.models import SigningKey
from idp.runtime import of
from idp.services import audit

from ..conftest import PASSWORD
from ..helpers import Browser
from ..oauth._flow import authorize
from ..oauth._flow import is_consent_page
from ..staff import STAFF_PASSWORD
from ..staff import create_member
from ..staff import post_form
from ..staff import staff_sign_in

AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
# Few failures lock; the captcha and the waits of the escalation stay out of the way.
LOCK_AFTER_3 = pytest.mark.config(
    login={"max_failures": 3, "captcha_after": 50, "ip_captcha_after": 1000, "delay_after": 1000}
)
ROOT = Path(__file__).resolve().parents[2]


def _events(app, *names: str) -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).order_by(AuditEvent.id)
        if names:
            query = query.where(AuditEvent.event.in_(names))
        rows = list(db.session.scalars(query))
        db.session.expunge_all()
        return rows


def _everything(app) -> str:
    """Every column of every event, as text: what a secret must never be found in."""
    return json.dumps(
        [[e.event, e.actor_type, e.actor_name, e.ip, e.reason, e.details, e.client_id] for e in _events(app)],
        ensure_ascii=False,
    )


def _client(app) -> Browser:
    client = app.test_client()
    client.environ_base.update({"HTTP_USER_AGENT": AGENT, "REMOTE_ADDR": "203.0.113.7"})
    return Browser(client)


def _sign_in(browser, login: str, password: str):
    return browser.submit("/login", {"login": login, "password": password})


# --- sign-in failures and locks -------------------------------------------------------------------------


@LOCK_AFTER_3
def test_failed_sign_ins_and_the_lock_are_recorded_without_the_password(app, account):
    browser = _client(app)
    assert _sign_in(browser, "77-0000099", "пароль-неизвестного").status_code == 200
    # A password typed into the login field is not a login: it is not written down.
    assert _sign_in(browser, "пароль в поле логина", "x").status_code == 200
    for attempt in range(3):
        _sign_in(browser, account["login"], f"неверный пароль {attempt}")
    _sign_in(browser, account["login"], PASSWORD)  # locked now: refused, and recorded as such

    failed = _events(app, "account.sign_in_failed")
    assert [(e.account_id, e.details["result"]) for e in failed] == [
        (None, "unknown"),
        (None, "unknown"),
        (account["id"], "wrong_password"),
        (account["id"], "wrong_password"),
        (account["id"], "wrong_password"),
        (account["id"], "locked"),
    ]
    # An unknown login is not written down (it may be a password typed into the wrong field).
    assert "login" not in failed[0].details and "login" not in failed[1].details
    assert failed[2].details["login"] == account["login"]
    assert all(e.ip == "203.0.113.7" and e.details["user_agent"] == AGENT for e in failed)
    assert all(e.actor_type == "anonymous" for e in failed)
    [locked] = _events(app, "account.locked")
    assert (locked.account_id, locked.details["result"]) == (account["id"], "wrong_password")
    everything = _everything(app)
    for secret in ("пароль-неизвестного", "пароль в поле логина", "неверный пароль", PASSWORD):
        assert secret not in everything


@LOCK_AFTER_3
def test_failed_staff_sign_ins_and_the_staff_lock_are_recorded(app):
    member = create_member(app, "operator", "petrova")
    client = app.test_client()
    client.environ_base.update({"HTTP_USER_AGENT": AGENT})
    staff_sign_in(client, {**member, "username": "nobody"})
    staff_sign_in(client, member, code="000000")
    staff_sign_in(client, member, password="неверный пароль сотрудника")
    staff_sign_in(client, member, password="ещё один неверный пароль")

    failed = _events(app, "staff.sign_in_failed")
    results = [(e.details.get("username"), e.details.get("staff_id"), e.details["result"]) for e in failed]
    assert results == [
        (None, None, "unknown"),
        ("petrova", member["id"], "wrong_code"),
        ("petrova", member["id"], "wrong_password"),
        ("petrova", member["id"], "wrong_password"),
    ]
    assert all(e.details["user_agent"] == AGENT and e.ip for e in failed)
    [locked] = _events(app, "staff.locked")
    assert locked.details["username"] == "petrova"
    everything = _everything(app)
    assert "неверный пароль сотрудника" not in everything and STAFF_PASSWORD not in everything


# --- logout and consent ----------------------------------------------------------------------------------


def test_logout_by_the_person_is_recorded(app, account):
    browser = _client(app)
    _sign_in(browser, account["login"], PASSWORD)
    done = browser.submit("/logout/confirm", {}, page=browser.get("/"))
    assert done.status_code == 200
    [event] = _events(app, "account.logged_out")
    assert (event.account_id, event.actor_type, event.ip) == (account["id"], "account", "203.0.113.7")


def test_consent_given_and_refused_is_recorded(app, account, make_rp):
    shop = make_rp(name="Магазин", trusted=False)
    browser = Browser(app.test_client())
    for choice, label in (("deny", "Отказать"), ("allow", "Разрешить")):
        page = authorize(browser, shop, account, scope="openid profile").response
        assert is_consent_page(page)
        path = page.request.path + "?" + page.request.query_string.decode()
        browser.submit(path, {choice: label}, page=page)
    denied, granted = _events(app, "consent.denied", "consent.granted")
    assert denied.event == "consent.denied"
    assert (denied.client_id, denied.account_id) == (shop["client_id"], account["id"])
    assert granted.event == "consent.granted" and granted.details == {"scope": "openid profile"}


# --- the server console ----------------------------------------------------------------------------------


def _cli(app, *args: str):
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result


def test_every_console_command_that_acts_is_recorded_with_the_os_user(app, account, tmp_path):
    with app.app_context():
        db.session.execute(delete(SigningKey))
        db.session.commit()
    _cli(app, "keys", "ensure")
    _cli(app, "keys", "ensure")  # nothing to do: nothing recorded
    _cli(app, "accounts", "show", account["login"])
    _cli(app, "outbox", "deliver")
    _cli(app, "outbox", "purge")
    _cli(app, "purge")
    _cli(app, "demo", "--registrations", str(tmp_path))

    names = [e.event for e in _events(app) if e.actor_type == "cli"]
    for expected in (
        "keys.created",
        "account.viewed",
        "outbox.delivered",
        "outbox.purged",
        "maintenance.purged",
        "demo.prepared",
    ):
        assert expected in names, (expected, names)
    assert names.count("keys.created") == 1
    assert {e.actor_name for e in _events(app) if e.actor_type == "cli"} == {getpass.getuser()}
    [viewed] = _events(app, "account.viewed")
    assert viewed.account_id == account["id"]


# --- retention -------------------------------------------------------------------------------------------


def _old_and_new(app) -> int:
    """One event four years old and one of today; return now."""
    now = of(app).clock()
    with app.app_context():
        for at in (now - 4 * 365 * 86400, now - 60):
            audit.record(db.session, audit.Context(audit.ANONYMOUS, None, at), "account.signed_in")
        db.session.commit()
    return now


def test_purge_drops_events_older_than_the_retention(app, clock):
    now = _old_and_new(app)
    result = _cli(app, "purge", "--json")
    assert json.loads(result.output)["audit_events"] == 1
    kept = _events(app, "account.signed_in")
    assert [e.at for e in kept] == [now - 60]
    [purged] = _events(app, "maintenance.purged")
    assert purged.details["audit_events"] == 1


@pytest.mark.config(audit={"retention_days": 0})
def test_a_retention_of_zero_keeps_every_event(app, clock):
    _old_and_new(app)
    assert json.loads(_cli(app, "purge", "--json").output)["audit_events"] == 0
    assert len(_events(app, "account.signed_in")) == 2


def test_nothing_but_the_purge_updates_or_deletes_an_event():
    """Append-only for the application: no UPDATE or DELETE of audit_events anywhere in idp/ but
    ``services.audit.purge``."""
    found = []
    for path in sorted((ROOT / "idp").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        pattern = r"(update|delete)\(\s*AuditEvent\b|(?i:update\s+audit_events|delete\s+from\s+audit_events)"
        for match in re.finditer(pattern, text):
            found.append((path.relative_to(ROOT).as_posix(), match.group(0)))
    outside_migrations = [item for item in found if "migrations" not in item[0]]
    assert outside_migrations == [("idp/services/audit.py", "delete(AuditEvent")]


# --- the console: pages and export -----------------------------------------------------------------------


def _fill(app, count: int, *, at: int, event: str = "account.signed_in", reason: str | None = None) -> None:
    with app.app_context():
        for index in range(count):
            audit.record(
                db.session,
                audit.Context(audit.Actor("staff", 1, "ivanova"), "10.0.0.1", at + index),
                event,
                reason=reason,
                details={"n": index},
            )
        db.session.commit()


def _rows(page) -> list[str]:
    text = page.get_data(as_text=True)
    body = text[text.index("<tbody>") :] if "<tbody>" in text else ""
    return re.findall(r"<tr>(.*?)</tr>", body, re.S)


def test_the_console_pages_through_the_log(app, admin_client, clock):
    _fill(app, 120, at=clock.now - 1000, event="account.unblocked")
    seen: list[str] = []
    url = "/admin/audit?event=account.unblocked"
    pages = 0
    while url:
        page = admin_client.get(url)
        assert page.status_code == 200
        rows = _rows(page)
        seen.extend(rows)
        pages += 1
        older = re.search(r'<a href="([^"]+)">Более ранние события', page.get_data(as_text=True))
        url = older.group(1).replace("&amp;", "&") if older else ""
        if pages > 1:
            assert "К новым событиям" in page.get_data(as_text=True)
    assert pages == 3 and len(seen) == 120 and len(set(seen)) == 120


def _export(admin_client, **query):
    return admin_client.get("/admin/audit/export", query_string=query)


def test_export_as_csv_and_json_lines_for_a_date_range(app, admin_client, clock):
    # The provider's calendar day ([server] timezone, Moscow): from 21:00 UTC on, a day ahead of UTC's.
    zone = ZoneInfo(of(app).settings.server.timezone)
    today = datetime.datetime.fromtimestamp(clock.now, zone).date()
    _fill(app, 30, at=clock.now - 3600, event="account.unblocked", reason='=HYPERLINK("http://x")')
    _fill(app, 5, at=clock.now - 40 * 86400, event="account.unblocked")  # outside the range below
    since, until = (today - datetime.timedelta(days=2)).isoformat(), today.isoformat()

    got = _export(admin_client, format="csv", since=since, until=until, event="account.unblocked")
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("text/csv")
    assert f'filename="audit-{since}-{until}.csv"' in got.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(got.get_data(as_text=True))))
    assert len(table) == 30
    assert table[0]["event"] == "account.unblocked" and table[0]["actor_name"] == "ivanova"
    assert json.loads(table[0]["details"]) == {"n": 0}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", table[0]["at"])
    # A cell a spreadsheet would run as a formula is written as text.
    assert table[0]["reason"] == '\'=HYPERLINK("http://x")'

    got = _export(admin_client, format="jsonl", since=since, until=until, event="account.unblocked")
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in got.get_data(as_text=True).splitlines()]
    assert len(lines) == 30 and [line["details"]["n"] for line in lines] == list(range(30))
    assert lines[0]["reason"] == '=HYPERLINK("http://x")'

    long_ago = (today - datetime.timedelta(days=45)).isoformat()
    wide = _export(admin_client, format="jsonl", since=long_ago, until=until)
    kinds = {json.loads(line)["event"] for line in wide.get_data(as_text=True).splitlines()}
    assert "account.unblocked" in kinds and "audit.exported" in kinds

    exported = _events(app, "audit.exported")
    assert len(exported) == 3 and exported[0].actor_name == admin_client.member["username"]
    assert exported[0].details == {"format": "csv", "since": since, "until": until}


def test_export_needs_a_range_of_at_most_a_year(app, admin_client):
    for query in (
        {},
        {"since": "2026-01-01"},
        {"since": "2026-02-01", "until": "2026-01-01"},
        {"since": "2024-01-01", "until": "2026-01-01"},
    ):
        refused = _export(admin_client, format="csv", **query)
        assert refused.status_code == 302 and refused.headers["Location"].startswith("/admin/audit")
    assert _export(admin_client, format="xml", since="2026-01-01", until="2026-01-02").status_code == 400
    assert _events(app, "audit.exported") == []


def test_an_operator_cannot_export(operator_client):
    refused = operator_client.get("/admin/audit/export?format=csv&since=2026-01-01&until=2026-01-02")
    assert refused.status_code == 403


def test_the_log_page_reads_failed_sign_ins_in_russian(app, admin_client, account):
    _sign_in(_client(app), account["login"], "неверный пароль")
    page = admin_client.get("/admin/audit?event=account.sign_in_failed").get_data(as_text=True)
    assert "Неудачная попытка входа" in page and "что не так: неверный пароль" in page


def test_a_wrong_current_password_on_the_change_pages_is_a_recorded_failure(app, account):
    browser = _client(app)
    _sign_in(browser, account["login"], PASSWORD)
    new = "новый пароль для кабинета"
    refused = browser.submit("/password/change", {"old": "не тот пароль", "new": new, "repeat": new})
    assert refused.status_code == 200
    [failed] = _events(app, "account.sign_in_failed")
    assert (failed.account_id, failed.actor_type) == (account["id"], "account")
    assert failed.details["during"] == "password_change" and failed.details["result"] == "wrong_password"
    assert "не тот пароль" not in _everything(app)


def test_a_wrong_current_staff_password_is_a_recorded_failure(app):
    member = create_member(app, "operator", "petrova")
    client = app.test_client()
    assert staff_sign_in(client, member).status_code == 302
    new = "очень длинный новый пароль сотрудника"
    form = {"old": "не тот пароль сотрудника", "new": new, "repeat": new}
    post_form(client, "/admin/password", form)
    [failed] = _events(app, "staff.sign_in_failed")
    assert (failed.details["username"], failed.details["during"]) == ("petrova", "password_change")
    assert "не тот пароль сотрудника" not in _everything(app)
