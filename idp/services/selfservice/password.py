"""Password change: forced after a temporary password, or at will (seed step 3: «сменить пароль»).

A temporary password — an operator's at the counter, ``idp accounts create``, an SMS reset that signed
in, a new staff member's — opens a flow that the holder's own password closes:

    (temporary password issued) ──require──▶ required ──complete──▶ done
                                                └──require (another temporary password)──▶ superseded

While a flow is ``required`` the holder is sent to the change page after every sign-in (and an
authorization request waits for it, ``oauth.interaction``). Past ``expires_at`` the temporary password
no longer signs in (``temporary_expired``); an operator issues another. ``attempts`` counts wrong current
passwords typed into the change form. A change at will (no flow open) runs ``check``/``complete`` too.
The functions flush; the caller commits.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...config import PasswordsSettings
from ...errors import PasswordPolicyError
from ...events import EventBus
from ...models import Account
from ...models import PasswordChangeFlow
from ...models import StaffUser
from ...models import Token
from ...models.password import DONE
from ...models.password import REQUIRED
from ...models.password import SUPERSEDED
from .. import audit
from .. import credentials
from .. import notices
from .. import password_policy
from .. import passwords
from ..sessions import end_account_sessions
from ..sessions import revoke_tokens
from . import reset

Holder = Account | StaffUser


def _column(holder: Holder):
    return PasswordChangeFlow.staff_id if isinstance(holder, StaffUser) else PasswordChangeFlow.account_id


def require(
    db: Session, holder: Holder, *, reason: str, now: int, expires_at: int | None
) -> PasswordChangeFlow:
    """The holder was given a temporary password: open a flow (superseding an open one)."""
    for old in db.scalars(
        select(PasswordChangeFlow).where(_column(holder) == holder.id, PasswordChangeFlow.state == REQUIRED)
    ):
        old.state, old.done_at = SUPERSEDED, now
    flow = PasswordChangeFlow(
        reason=reason, state=REQUIRED, created_at=now, expires_at=expires_at, attempts=0
    )
    if isinstance(holder, StaffUser):
        flow.staff_id = holder.id
    else:
        flow.account_id = holder.id
    db.add(flow)
    db.flush()
    # why: the holder's view of its open flow is a relationship already loaded; read it again.
    db.expire(holder, ["password_change"])
    return flow


def temporary_expired(holder: Holder, now: int) -> bool:
    """Whether the holder signs in with a temporary password past its lifetime."""
    flow = holder.password_change
    return flow is not None and flow.expires_at is not None and flow.expires_at <= now


def _done(holder: Holder, now: int) -> None:
    flow = holder.password_change
    if flow is not None and flow.state == REQUIRED:
        flow.state, flow.done_at = DONE, now


def check(account: Account, old: str, new: str, repeat: str, settings: PasswordsSettings) -> None:
    """Refuse a change unless ``old`` is the current password and ``new`` passes the policy; a wrong
    ``old`` counts against an open flow."""
    try:
        credentials.check_new_password(
            new,
            repeat,
            min_length=settings.min_length,
            current_hash=account.password_hash,
            old=old,
            context=password_policy.account_context(account),
        )
    except PasswordPolicyError as error:
        if error.reason == "wrong_old" and account.password_change is not None:
            account.password_change.attempts += 1
        raise


def check_without_old(account: Account, new: str, repeat: str, settings: PasswordsSettings) -> None:
    """The policy for a new password chosen without the old one (access recovery): the new password
    must still differ from the current one."""
    credentials.check_new_password(
        new,
        repeat,
        min_length=settings.min_length,
        current_hash=account.password_hash,
        context=password_policy.account_context(account),
    )


def complete(
    db: Session,
    account: Account,
    new: str,
    *,
    ip: str | None,
    now: int,
    settings: PasswordsSettings,
    keep_sid: str | None,
    events: EventBus,
    event: str = "account.password_changed",
) -> None:
    """required → done (or a change at will): set the migrant's own password. A pending SMS-reset
    password dies with the old one; the account's other sessions end and its refresh tokens are revoked;
    ``event`` goes into the account's history."""
    account.password_hash = passwords.hash_password(new, settings.bcrypt_rounds)
    account.password_changed_at = now
    account.updated_at = now
    _done(account, now)
    reset.void(db, account, now=now)
    end_account_sessions(db, account.id, now=now, events=events, keep_sid=keep_sid)
    revoke_tokens(db, Token.account_id == account.id, now=now, access=False)
    audit.record(db, audit.Context(audit.Actor.account(account), ip, now), event, account_id=account.id)
    # A takeover warning to the phone (and e-mail) on file, through the outbox (services.notices).
    notice = notices.PASSWORD_RECOVERED if event == "account.recovered" else notices.PASSWORD_CHANGED
    notices.notify(db, account, notice, now=now)
    db.flush()


def check_staff(user: StaffUser, old: str, new: str, repeat: str, *, min_length: int) -> None:
    """The staff policy: ``old`` is right, ``new`` is at least ``min_length`` long, uncommon and not
    the username; a wrong ``old`` counts against an open flow."""
    try:
        credentials.check_new_password(
            new,
            repeat,
            min_length=min_length,
            current_hash=user.password_hash,
            old=old or "",
            context=password_policy.staff_context(user),
        )
    except PasswordPolicyError as error:
        if error.reason == "wrong_old" and user.password_change is not None:
            user.password_change.attempts += 1
        raise


def complete_staff(user: StaffUser, new: str, *, now: int, settings: PasswordsSettings) -> None:
    """required → done (or a change at will) for a staff member. Ending their other sessions is the
    caller's (``staff.members.change_password``)."""
    user.password_hash = passwords.hash_password(new, settings.bcrypt_rounds)
    user.updated_at = now
    _done(user, now)
