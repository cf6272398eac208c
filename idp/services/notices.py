"""Notices that warn a person of a change to their account they may not have made (a takeover): by SMS
to the phone on file, and by e-mail when one is on file, in the account's language.

Sent for: the password changed by the person, set through the SMS reset or the access recovery, a new
temporary password issued by an operator, the login or the phone changed by an operator (the old phone
is told as well), and a sign-out on all devices. Each says what happened, when, and whom to contact if
it was not them (``[contacts]``); the words are ``idp.notifications``'.

Each notice is one message of the durable outbox (kind ``notice``) per channel and recipient, written in
the transaction of the change: a change that is rolled back sends nothing, one that is committed is sent
even across restarts, and a failed send changes nothing else (the outbox retries, then gives up). The
payload holds the account's id, what happened and when, the channel, and for the old phone that number:
never a password, code or link.

May import: models, other services. Must not import: Flask, views, oauth.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..models import Account
from . import outbox

KIND = "notice"

PASSWORD_CHANGED = "password_changed"
PASSWORD_RESET = "password_reset"
PASSWORD_RECOVERED = "password_recovered"
TEMPORARY_PASSWORD = "temporary_password"
LOGIN_CHANGED = "login_changed"
PHONE_CHANGED = "phone_changed"
SIGNED_OUT_EVERYWHERE = "signed_out_everywhere"
NOTICES = (
    PASSWORD_CHANGED,
    PASSWORD_RESET,
    PASSWORD_RECOVERED,
    TEMPORARY_PASSWORD,
    LOGIN_CHANGED,
    PHONE_CHANGED,
    SIGNED_OUT_EVERYWHERE,
)

SMS = "sms"
MAIL = "mail"


def notify(db: Session, account: Account, notice: str, *, now: int, old_phone: str | None = None) -> int:
    """Queue ``notice`` about ``account`` in ``db``'s transaction; return how many messages were queued.
    ``old_phone``: the number the account had before an operator changed it, told as well."""
    if notice not in NOTICES:
        raise ValueError(f"unknown notice {notice!r}")
    base = {"notice": notice, "account_id": account.id, "at": now}
    queued = 0
    if account.phone:
        outbox.enqueue(db, KIND, base | {"channel": SMS}, now=now)
        queued += 1
    if old_phone and old_phone != account.phone:
        outbox.enqueue(db, KIND, base | {"channel": SMS, "to": old_phone}, now=now)
        queued += 1
    if account.email:
        outbox.enqueue(db, KIND, base | {"channel": MAIL}, now=now)
        queued += 1
    return queued
