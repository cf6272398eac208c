"""Password reset by SMS (seed: «Сброс пароля к личному кабинету иностранного гражданина»).

The captcha is checked by the caller before anything here runs. Then, in order:

1. the per-IP and per-login daily limits: every attempt counts, whether or not the login exists, so
   the limit message says nothing about accounts (see README, "Password reset by SMS");
2. the account lookup: login, phone and status must match;
3. the per-phone limit and the service's daily SMS budget;
4. the SMS with a new temporary password, which waits beside the current password until it is used.

The same bcrypt work is done whether or not anything matched. If the gateway fails, nothing is
stored and every count taken is given back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import IdpError
from ..models import Account
from . import audit
from . import counters
from . import passwords
from .sms import SmsDeliveryError
from .sms import SmsSender

log = logging.getLogger(__name__)


class ResetLimitError(IdpError):
    """The day's resets for this login (or from this address) are used up."""


@dataclass(frozen=True)
class ResetSettings:
    daily_limit: int
    ip_daily_limit: int
    phone_daily_limit: int
    sms_daily_budget: int
    timezone: str
    bcrypt_rounds: int
    temporary_ttl: int


SMS_BUDGET_KEY = "reset-sms"


def take_sms_allowance(tally: counters.Tally, phone: str, *, phone_limit: int, budget: int) -> bool:
    """Count one SMS to ``phone`` against its daily limit and the day's budget for all reset and
    recovery SMS; False (and an alert once the budget is spent) when either is used up."""
    if not tally.take(f"reset-phone:{phone}", phone_limit):
        return False
    if not tally.take(SMS_BUDGET_KEY, budget):
        log.error(
            "ALERT: the daily SMS budget ([reset] sms_daily_budget) is spent; "
            "no reset or recovery SMS until tomorrow"
        )
        return False
    return True


def request_reset(
    db: Session,
    *,
    login: str,
    phone: str,
    ip: str,
    now: int,
    settings: ResetSettings,
    sender: SmsSender,
    compose: Callable[[str, Account], str],
) -> None:
    """Send a new temporary password if ``login`` and ``phone`` (both normalised) match an account.

    Raises ResetLimitError when a daily limit is reached and SmsDeliveryError when the gateway fails;
    returns quietly otherwise, matched or not.
    """
    tally = counters.Tally(db, counters.local_day(now, settings.timezone))
    within_limits = tally.take(f"reset-ip:{ip}", settings.ip_daily_limit) and tally.take(
        f"reset-login:{login}", settings.daily_limit
    )
    if not within_limits:
        db.commit()
        raise ResetLimitError()
    account = db.scalar(select(Account).filter_by(login=login))
    temporary = passwords.generate_temporary_password()
    # why: hashed on every path, so a match costs no more time than a miss.
    pending_hash = passwords.hash_password(temporary, settings.bcrypt_rounds)
    if account is None or not account.is_active or account.phone != phone:
        db.commit()
        return
    allowed = take_sms_allowance(
        tally, phone, phone_limit=settings.phone_daily_limit, budget=settings.sms_daily_budget
    )
    if not allowed:
        db.commit()
        return
    # The counts are committed before the slow gateway call, so no row stays locked during it.
    db.commit()
    try:
        sender.send(account.phone, compose(temporary, account))
    except SmsDeliveryError:
        tally.give_back()
        db.commit()
        raise
    account.reset_password_hash = pending_hash
    account.reset_password_expires_at = now + settings.temporary_ttl
    account.updated_at = now
    # Whoever asked knew the login and phone; the account's history shows that a reset went out.
    audit.record(db, audit.Context(audit.ANONYMOUS, ip, now), "account.reset_sent", account_id=account.id)
    db.commit()
