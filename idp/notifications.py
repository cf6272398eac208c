"""The words of the takeover notices (``services.notices``) and the outbox handler that sends them.

Each notice says what happened and when (in the Migration Center's time zone), and what to do if it was
not the person: contact the Migration Center (``[contacts]``: in the SMS its site, in the e-mail its
name, site, address, phone and hours as configured). An SMS fits two segments in every language
(``tests/unit/test_catalogues.py``). Nothing secret is ever in a notice: no password, code or link that
signs in.

The handler runs in the server's delivery loop (``idp.background``), in an app context: it reads the
account, ends that transaction, renders the text in the account's language and hands it to the SMS
sender or the mailer; a refusal by either is retried by the outbox (``services.outbox``).
"""

from __future__ import annotations

import datetime
from urllib.parse import urlsplit

from flask import render_template
from flask_babel import force_locale
from flask_babel import format_datetime
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from .errors import DeliveryError
from .errors import OutboxRefusedError
from .errors import OutboxRetryError
from .models import Account
from .runtime import current
from .services import notices
from .services.mail import Mail


def _sms_texts() -> dict[str, str]:
    """Notice -> its SMS, with %(when)s and %(contact)s (the Migration Center's site, e.g. mc.mos.ru)."""
    return {
        notices.PASSWORD_CHANGED: _(
            "%(when)s пароль от кабинета изменён. "
            "Если это не вы, обратитесь в Миграционный центр: %(contact)s"
        ),
        notices.PASSWORD_RESET: _(
            "%(when)s пароль от кабинета сброшен по СМС. "
            "Если это не вы, обратитесь в Миграционный центр: %(contact)s"
        ),
        notices.PASSWORD_RECOVERED: _(
            "%(when)s пароль от кабинета задан через восстановление доступа. "
            "Не вы? Обратитесь в Миграционный центр: %(contact)s"
        ),
        notices.TEMPORARY_PASSWORD: _(
            "%(when)s оператор выдал временный пароль к кабинету. "
            "Если вы не просили, обратитесь в Миграционный центр: %(contact)s"
        ),
        notices.LOGIN_CHANGED: _(
            "%(when)s оператор изменил логин кабинета. "
            "Если вы не просили, обратитесь в Миграционный центр: %(contact)s"
        ),
        notices.PHONE_CHANGED: _(
            "%(when)s оператор изменил телефон кабинета. "
            "Если вы не просили, обратитесь в Миграционный центр: %(contact)s"
        ),
        notices.SIGNED_OUT_EVERYWHERE: _(
            "%(when)s выполнен выход из кабинета на всех устройствах. "
            "Не вы? Обратитесь в Миграционный центр: %(contact)s"
        ),
    }


def _subjects() -> dict[str, str]:
    return {
        notices.PASSWORD_CHANGED: _("Пароль изменён"),
        notices.PASSWORD_RESET: _("Пароль сброшен по СМС"),
        notices.PASSWORD_RECOVERED: _("Пароль задан через восстановление доступа"),
        notices.TEMPORARY_PASSWORD: _("Выдан временный пароль"),
        notices.LOGIN_CHANGED: _("Логин изменён"),
        notices.PHONE_CHANGED: _("Телефон изменён"),
        notices.SIGNED_OUT_EVERYWHERE: _("Выход на всех устройствах"),
    }


def when(at: int) -> str:
    """A Unix time as the Migration Center's local date and time, e.g. 07.12.2026 14:05."""
    return format_datetime(datetime.datetime.fromtimestamp(at, datetime.UTC), "dd.MM.yyyy HH:mm")


def contact_site() -> str:
    """The Migration Center's site as short as it reads: mc.mos.ru for https://mc.mos.ru."""
    url = current().settings.contacts.url
    parts = urlsplit(url)
    return (parts.netloc + parts.path.rstrip("/")) or url


def render(notice: str, at: int, locale: str) -> tuple[str, str]:
    """The SMS text and the e-mail subject of a notice, in ``locale``."""
    with force_locale(locale or "ru"):
        text = _sms_texts()[notice] % {"when": when(at), "contact": contact_site()}
        return text, _subjects()[notice]


def _mail(account: Account, notice: str, at: int) -> Mail:
    contacts = current().settings.contacts
    with force_locale(account.locale or "ru"):
        text, subject = render(notice, at, account.locale)
        context = dict(text=text, contacts=contacts, lines=contacts.lines)
        plain = render_template("notices/mail.txt", **context)
        html = render_template("notices/mail.html", **context)
    return Mail(to=account.email or "", subject=subject, text=plain, html=html)


def deliver(db: Session, payload: dict) -> None:
    """The outbox handler of ``notice``: one SMS or one e-mail."""
    account = db.get(Account, payload["account_id"])
    if account is None:
        raise OutboxRefusedError("the account no longer exists")
    notice, at, channel = payload["notice"], int(payload["at"]), payload["channel"]
    if channel == notices.MAIL:
        if not account.email:
            raise OutboxRefusedError("the account has no e-mail address any more")
        mail = _mail(account, notice, at)
        db.rollback()  # no database connection held while the mail server answers
        try:
            current().mailer.send(mail)
        except DeliveryError as error:
            raise OutboxRetryError(type(error).__name__) from error
        return
    to = payload.get("to") or account.phone
    text, _subject = render(notice, at, account.locale)
    db.rollback()
    try:
        current().sms.send(to, text)
    except DeliveryError as error:
        raise OutboxRetryError(type(error).__name__) from error
