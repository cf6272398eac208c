"""What an operator at the counter does to a migrant's account. Each action writes an audit event.

Operators never see or set a permanent password: they issue temporary ones, which the person must
replace at the next sign-in, exactly as at account creation.
"""

from __future__ import annotations

import re

from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import PasswordsSettings
from ..config import Settings
from ..errors import AccountDataError
from ..events import EventBus
from ..models import Account
from ..models import Token
from ..models.account import STATUS_ACTIVE
from ..models.account import STATUS_BLOCKED
from ..models.account import fold_name
from . import audit
from . import credentials
from . import notices
from . import passwords
from .accounts import check_sms_reachable
from .accounts import create_account
from .accounts import normalize_login
from .accounts import normalize_phone
from .accounts import set_temporary_password
from .selfservice import limits
from .selfservice import reset
from .sessions import end_account_sessions
from .sessions import revoke_tokens

SEARCH_LIMIT = 50
_LETTERS = re.compile(r"[^\W\d_]")


def search(db: Session, text: str, *, limit: int = SEARCH_LIMIT) -> list[Account]:
    """Accounts whose login or phone is ``text``, or whose surname starts with it (case, ё/е ignored).

    What was typed decides nothing alone: «77 0123 456» may be a login or a phone, and a login may hold
    letters, so every reading that parses is asked for at once."""
    text = (text or "").strip()[:128]
    if not text:
        return []
    conditions = []
    if login := normalize_login(text):
        conditions.append(Account.login == login)
    if phone := normalize_phone(text):
        conditions.append(Account.phone == phone)
    if _LETTERS.search(text):
        conditions.append(Account.surname_folded.startswith(fold_name(text), autoescape=True))
    if not conditions:
        return []
    query = (
        select(Account).where(or_(*conditions)).order_by(Account.surname_folded, Account.login).limit(limit)
    )
    return list(db.scalars(query))


def create(db: Session, ctx: audit.Context, *, settings: PasswordsSettings, **fields) -> tuple[Account, str]:
    """``accounts.create_account`` from an application at the counter; returns the temporary password."""
    account, temporary = create_account(db, now=ctx.now, settings=settings, **fields)
    audit.record(db, ctx, "account.created", account_id=account.id, details={"login": account.login})
    return account, temporary


def _require_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise AccountDataError("reason", "required")
    return reason


def _end_everything(db: Session, account: Account, now: int, events: EventBus) -> None:
    """Sign the person out everywhere: SSO sessions end and every access and refresh token dies."""
    end_account_sessions(db, account.id, now=now, events=events)
    revoke_tokens(db, Token.account_id == account.id, now=now)


def issue_temporary_password(
    db: Session,
    ctx: audit.Context,
    account: Account,
    *,
    settings: PasswordsSettings,
    events: EventBus,
    reason: str | None = None,
) -> str:
    """A new temporary password (for a person without their phone). The old password, any pending SMS
    reset password, every session and every token of the account stop working."""
    temporary = passwords.generate_temporary_password()
    set_temporary_password(db, account, temporary, now=ctx.now, settings=settings)
    reset.void(db, account, now=ctx.now)
    _end_everything(db, account, ctx.now, events)
    audit.record(db, ctx, "account.temporary_password", account_id=account.id, reason=reason)
    notices.notify(db, account, notices.TEMPORARY_PASSWORD, now=ctx.now)
    return temporary


def change_login(db: Session, ctx: audit.Context, account: Account, new_login: str, *, reason: str) -> None:
    """A new patent application number as the login. ``sub`` stays, so relying parties see the same person."""
    reason = _require_reason(reason)
    normal = normalize_login(new_login)
    if not normal:
        raise AccountDataError("login", "is not a patent application number")
    if normal == account.login:
        raise AccountDataError("login", "is unchanged")
    if db.scalar(select(Account.id).filter_by(login=normal)):
        raise AccountDataError("login", "is already taken")
    old, account.login = account.login, normal
    _record_change(db, ctx, account, "account.login_changed", reason, old, normal)
    notices.notify(db, account, notices.LOGIN_CHANGED, now=ctx.now)


def change_phone(
    db: Session,
    ctx: audit.Context,
    account: Account,
    new_phone: str,
    *,
    reason: str,
    sms_countries: tuple[str, ...] | None = None,
) -> None:
    reason = _require_reason(reason)
    normal = normalize_phone(new_phone)
    if not normal:
        raise AccountDataError("phone", "is not a valid phone number")
    check_sms_reachable(normal, sms_countries)
    if normal == account.phone:
        raise AccountDataError("phone", "is unchanged")
    old, account.phone = account.phone, normal
    _record_change(db, ctx, account, "account.phone_changed", reason, old, normal)
    # The old phone is told too: if the change was not the person's wish, that is where they still are.
    notices.notify(db, account, notices.PHONE_CHANGED, now=ctx.now, old_phone=old)


def _record_change(
    db: Session, ctx: audit.Context, account: Account, event: str, reason: str, old: str, new: str
) -> None:
    account.updated_at = ctx.now
    audit.record(db, ctx, event, account_id=account.id, reason=reason, details={"old": old, "new": new})


def block(db: Session, ctx: audit.Context, account: Account, *, reason: str, events: EventBus) -> None:
    """Nobody signs in, and the sessions and tokens the account has die at once."""
    reason = _require_reason(reason)
    account.status = STATUS_BLOCKED
    account.updated_at = ctx.now
    _end_everything(db, account, ctx.now, events)
    audit.record(db, ctx, "account.blocked", account_id=account.id, reason=reason)


def unblock(db: Session, ctx: audit.Context, account: Account, *, reason: str) -> None:
    reason = _require_reason(reason)
    account.status = STATUS_ACTIVE
    account.updated_at = ctx.now
    audit.record(db, ctx, "account.unblocked", account_id=account.id, reason=reason)


def lift_lock(db: Session, ctx: audit.Context, account: Account, *, reason: str | None = None) -> None:
    """End a brute-force lock ([login] max_failures) and forget the failures counted so far."""
    credentials.clear_failures(account)
    account.updated_at = ctx.now
    audit.record(db, ctx, "account.lock_lifted", account_id=account.id, reason=reason)


def resets_today(db: Session, account: Account, *, now: int, settings: Settings) -> int:
    """Resets (and recoveries by patent number) asked for this login today: the count the seed's
    three-a-day limit applies to."""
    return limits.requests_today(db, "login", account.login, now=now, settings=settings)
