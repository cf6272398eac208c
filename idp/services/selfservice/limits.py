"""The daily limits of the reset and recovery forms, and the SMS they may send ([limits]).

Every request that passes the captcha counts against its client IP and its identifier, whether or not
it matches an account, so reaching a limit tells nothing about accounts (see README, "Password reset by
SMS"). A patent number counts the same whether it was typed into the reset or the recovery form. An SMS
counts against its phone and the service's daily budget when the outbox sends it; when a message is
refused for certain, the identifier's, the phone's and the budget's counts are given back. Days are
calendar days in [server] timezone.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from ...config import Settings
from ...errors import LimitError
from .. import counters
from ..net import rate_key

log = logging.getLogger(__name__)

SMS_BUDGET_KEY = "sms-budget"


def requests_key(kind: str, value: str) -> str:
    """The counter of requests for one identifier: ``kind`` is login, phone, email or snils."""
    return f"requests-{kind}:{value}"


def day_tally(db: Session, now: int, settings: Settings) -> counters.Tally:
    """The counts one request takes today."""
    return counters.Tally(db, counters.local_day(now, settings.server.timezone))


def take_request(tally: counters.Tally, *, ip: str, kind: str, value: str, settings: Settings) -> None:
    """Count a request from ``ip`` (the client's address, counted by its ``rate_key``: an IPv6 one by its
    network) for the identifier; raise LimitError when either limit is reached (the counts taken stay
    taken: the caller commits them with the refusal)."""
    limits = settings.limits
    if not tally.take(f"requests-ip:{rate_key(ip, limits.ipv6_prefix)}", limits.ip_daily_limit):
        raise LimitError()
    if not tally.take(requests_key(kind, value), limits.daily_limit):
        raise LimitError()


def take_sms(db: Session, phone: str, *, now: int, settings: Settings) -> bool:
    """Count one SMS to ``phone`` against its daily limit and the day's budget for all reset and recovery
    SMS, on the day of ``now``; False (and an alert once the budget is spent) when either is used up.
    Taken by the outbox's handlers when they send, never by a request: what a request writes must not
    depend on whether it matched an account (issue 10)."""
    limits = settings.limits
    tally = day_tally(db, now, settings)
    if not tally.take(f"sms-phone:{phone}", limits.phone_daily_limit):
        return False
    if not tally.take(SMS_BUDGET_KEY, limits.sms_daily_budget):
        tally.give_back()  # nothing is sent: the phone's count taken above goes back
        log.error(
            "ALERT: the daily SMS budget ([limits] sms_daily_budget) is spent; "
            "no reset or recovery SMS until tomorrow"
        )
        return False
    return True


def give_back_sms(db: Session, phone: str, *, taken_at: int, settings: Settings) -> None:
    """An SMS was refused for certain: give back the phone's count and the budget's, on the day
    ``take_sms`` took them."""
    day = counters.local_day(taken_at, settings.server.timezone)
    for key in (f"sms-phone:{phone}", SMS_BUDGET_KEY):
        counters.give_back(db, key, day)


def give_back_request(db: Session, kind: str, value: str, *, asked_at: int, settings: Settings) -> None:
    """A message was refused for certain: give back the identifier's request, on the day it was asked.
    The address's request stays counted."""
    counters.give_back(db, requests_key(kind, value), counters.local_day(asked_at, settings.server.timezone))


def requests_today(db: Session, kind: str, value: str, *, now: int, settings: Settings) -> int:
    """How many requests the identifier has made today (the staff console shows it for a login)."""
    return counters.current(db, requests_key(kind, value), counters.local_day(now, settings.server.timezone))
