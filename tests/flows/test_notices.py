"""Takeover notices (services.notices, idp.notifications): one per change a person may not have made, by
SMS to the phone on file (and the old phone after an operator changed it) and by e-mail when one is on
file, in the account's language, through the durable outbox; never a secret; a failed send changes
nothing else."""

from __future__ import annotations

import datetime
import json
import zoneinfo

import pytest
from sqlalchemy import select

from idp.errors import SmsDeliveryError
from idp.extensions import db
from idp.models import Account
from idp.models import OutboxMessage
from idp.runtime import of
from idp.services import account_admin
from idp.services import audit
from idp.services import notices
from idp.services import passwords

from ..conftest import PASSWORD
from ..helpers import Browser
from ..helpers import outbox_reader
from ..helpers import settings_of

NEW = "новый пароль для кабинета"
PHONE = "+79161234567"
EMAIL = "alisher@example.com"
MOSCOW = zoneinfo.ZoneInfo("Europe/Moscow")
CONTACT = "Если это не вы, обратитесь в Миграционный центр: mc.mos.ru"


@pytest.fixture
def sms(app):
    with outbox_reader(settings_of(app).sms.file_path) as read:
        yield read


@pytest.fixture
def mail(app):
    with outbox_reader(settings_of(app).mail.file_path) as read:
        yield read


def _deliver(app) -> int:
    return of(app).background.deliver_due().delivered


def _payloads(app) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(select(OutboxMessage).filter_by(kind="notice").order_by(OutboxMessage.id))
        return [json.loads(row.payload) for row in rows]


def _local(at: int) -> str:
    return datetime.datetime.fromtimestamp(at, MOSCOW).strftime("%d.%m.%Y %H:%M")


def _staff(app) -> audit.Context:
    return audit.Context(audit.Actor("staff", 1, "ivanova"), "10.0.0.5", of(app).clock())


def test_a_password_changed_by_the_person_is_told_by_sms_and_mail(app, make_account, sms, mail, clock):
    account = make_account(email=EMAIL)
    browser = Browser(app.test_client())
    browser.sign_in(account["login"], account["password"])
    changed = browser.submit("/password/change", {"old": account["password"], "new": NEW, "repeat": NEW})
    assert changed.status_code == 302
    # Written with the change, sent afterwards by the delivery loop (here: one pass).
    assert sms() == [] and mail() == []
    assert _deliver(app) == 2
    [text] = sms()
    assert text["to"] == PHONE
    assert text["text"] == f"{_local(clock.now)} пароль от кабинета изменён. {CONTACT}"
    [letter] = mail()
    assert (letter["to"], letter["subject"]) == (EMAIL, "Пароль изменён")
    assert text["text"] in letter["text"] and "ГБУ «Миграционный центр»" in letter["text"]
    assert "https://mc.mos.ru" in letter["html"]
    assert NEW not in json.dumps([text, letter, _payloads(app)], ensure_ascii=False)


def test_a_password_set_through_the_sms_reset_is_told(app, account, sms):
    with app.app_context():
        row = db.session.get(Account, account["id"])
        from idp.models import ResetFlow

        now = of(app).clock()
        flow = ResetFlow(
            account_id=row.id,
            password_hash=passwords.hash_password("Sms7Reset9", 4),
            state="sent",
            created_at=now,
            expires_at=now + 3600,
            attempts=0,
        )
        db.session.add(flow)
        db.session.commit()
    signed_in = Browser(app.test_client()).submit(
        "/login", {"login": account["login"], "password": "Sms7Reset9"}
    )
    assert signed_in.headers["Location"] == "/password/change"
    assert [p["notice"] for p in _payloads(app)] == ["password_reset"]
    assert _deliver(app) == 1
    [text] = sms()
    assert "пароль от кабинета сброшен по СМС" in text["text"] and "Sms7Reset9" not in text["text"]


def test_a_temporary_password_from_an_operator_is_told(app, account, sms):
    with app.app_context():
        row = db.session.get(Account, account["id"])
        temporary = account_admin.issue_temporary_password(
            db.session,
            _staff(app),
            row,
            settings=settings_of(app).passwords,
            events=of(app).events,
            reason="потерял пароль",
        )
        db.session.commit()
    assert _deliver(app) == 1
    [text] = sms()
    assert "оператор выдал временный пароль" in text["text"] and temporary not in text["text"]
    assert "Если вы не просили, обратитесь в Миграционный центр: mc.mos.ru" in text["text"]


def test_a_login_changed_by_an_operator_is_told(app, account, sms):
    with app.app_context():
        row = db.session.get(Account, account["id"])
        account_admin.change_login(db.session, _staff(app), row, "77-0000099", reason="новое заявление")
        db.session.commit()
    assert _deliver(app) == 1
    [text] = sms()
    assert text["to"] == PHONE and "оператор изменил логин кабинета" in text["text"]


def test_a_phone_changed_by_an_operator_is_told_to_both_phones(app, make_account, sms, mail):
    account = make_account(email=EMAIL)
    with app.app_context():
        row = db.session.get(Account, account["id"])
        account_admin.change_phone(db.session, _staff(app), row, "+79035550011", reason="новая сим-карта")
        db.session.commit()
    assert sorted((p["channel"], p.get("to", "")) for p in _payloads(app)) == [
        ("mail", ""),
        ("sms", ""),
        ("sms", PHONE),
    ]
    assert _deliver(app) == 3
    assert sorted(m["to"] for m in sms()) == ["+79035550011", PHONE]
    assert all("оператор изменил телефон кабинета" in m["text"] for m in sms())
    assert [m["subject"] for m in mail()] == ["Телефон изменён"]


def test_signing_out_everywhere_is_told(app, account, sms):
    browser = Browser(app.test_client())
    browser.sign_in(account["login"], account["password"])
    done = browser.submit("/account/sessions/end-all", {}, page=browser.get("/account"))
    assert done.status_code == 200
    assert _deliver(app) == 1
    [text] = sms()
    assert "выполнен выход из кабинета на всех устройствах" in text["text"]


def test_the_notice_speaks_the_accounts_language(app, make_account, sms):
    account = make_account(locale="uz")
    browser = Browser(app.test_client())
    browser.sign_in(account["login"], account["password"])
    browser.submit("/password/change", {"old": PASSWORD, "new": NEW, "repeat": NEW})
    assert _deliver(app) == 1
    [text] = sms()
    assert "parol" in text["text"] and "пароль" not in text["text"] and text["text"].isascii()


def test_a_failed_send_changes_nothing_else(app, account, sms, monkeypatch):
    def refuse(to, text):
        raise SmsDeliveryError("gateway down")

    monkeypatch.setattr(of(app).sms, "send", refuse)
    browser = Browser(app.test_client())
    browser.sign_in(account["login"], account["password"])
    changed = browser.submit("/password/change", {"old": PASSWORD, "new": NEW, "repeat": NEW})
    assert changed.status_code == 302
    result = of(app).background.deliver_due()
    assert (result.delivered, result.retried) == (0, 1)
    # The password is changed all the same, and the message waits for its next attempt.
    assert (
        Browser(app.test_client())
        .submit("/login", {"login": account["login"], "password": NEW})
        .headers["Location"]
        == "/"
    )
    with app.app_context():
        (row,) = db.session.scalars(select(OutboxMessage).filter_by(kind="notice"))
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "SmsDeliveryError")


def test_the_payload_holds_no_secret(app, account):
    with app.app_context():
        row = db.session.get(Account, account["id"])
        notices.notify(db.session, row, notices.TEMPORARY_PASSWORD, now=1_800_000_000, old_phone="+7999")
        db.session.commit()
    for payload in _payloads(app):
        assert set(payload) <= {"notice", "account_id", "at", "channel", "to"}


def test_an_unknown_notice_is_a_programming_error(app, account):
    with app.app_context(), pytest.raises(ValueError):
        notices.notify(db.session, db.session.get(Account, account["id"]), "nothing", now=0)
