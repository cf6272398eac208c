"""Server-side SSO sessions: start at sign-in, look up per request, end on logout.

The browser cookie carries a random token; only its digest is stored. Ending a session also revokes
the tokens issued within it (see README, "Sessions and tokens") and emits ``events.SessionEnded`` in
the ending transaction, whoever ended it — logout, a timeout, a password change, an operator — so the
relying parties that took part are told (back-channel logout, ``idp.oauth.logout``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..config import SessionSettings
from ..crypto import new_secret
from ..events import EventBus
from ..events import SessionEnded
from ..models import Account
from ..models import AuthorizationCode
from ..models import Consent
from ..models import OAuth2Client
from ..models import SsoSession
from ..models import Token
from . import credentials


def start_session(
    db: Session,
    account: Account,
    *,
    now: int,
    settings: SessionSettings,
    amr: list[str],
    ip: str | None = None,
    user_agent: str | None = None,
) -> tuple[SsoSession, str]:
    """Open a session for an account that has just authenticated; return it and the cookie token."""
    sso = SsoSession(sid=new_secret(24), account_id=account.id, auth_time=now, amr=" ".join(amr))
    token = credentials.open_session(sso, now=now, timeouts=settings, ip=ip, user_agent=user_agent)
    db.add(sso)
    db.flush()
    return sso, token


def reauthenticate(
    db: Session, sso: SsoSession, *, now: int, settings: SessionSettings, amr: list[str]
) -> str:
    """The same user proved the password again (prompt=login, max_age): keep the session and its sid,
    so tokens issued in it stay valid, but record the new auth_time and hand out a new cookie token."""
    sso.auth_time = now
    sso.amr = " ".join(amr)
    return credentials.renew_token(sso, now=now, timeouts=settings)


def find_session(
    db: Session,
    token: object,
    *,
    now: int,
    settings: SessionSettings,
    events: EventBus,
    ip: str | None = None,
) -> SsoSession | None:
    """The live session for a cookie token, or None if it is unknown, ended, expired or idle too long.
    ``ip``, the request's address, is kept as the session's last address (the account page's "place")."""
    sso = credentials.find_by_token(db, SsoSession, token)
    if sso is None:
        return None
    if credentials.is_over(sso, now=now, timeouts=settings) or not sso.account.is_active:
        end_session(db, sso, now=now, events=events)
        return None
    credentials.touch(sso, now)
    address = (ip or "")[:45] or None
    if address and address != (sso.last_ip or sso.ip):
        sso.last_ip = address
    return sso


def end_session(db: Session, sso: SsoSession, *, now: int, events: EventBus) -> None:
    if credentials.end(sso, now):
        events.emit(db, SessionEnded(sid=sso.sid, account_id=sso.account_id, at=now))
    revoke_session_tokens(db, sso.sid, now=now)


def end_timed_out(
    db: Session, *, now: int, settings: SessionSettings, events: EventBus, limit: int = 200
) -> list[str]:
    """End up to ``limit`` live sessions that are past their absolute or idle timeout, whether or not
    their browser comes back: their tokens are revoked and their relying parties told, as when the
    browser returns late (``find_session``). Return the sids ended; the caller commits.

    Rows another process is sweeping right now are skipped (``SKIP LOCKED`` on PostgreSQL), so two
    hosts never end, and announce, one session twice."""
    over = (
        select(SsoSession.id)
        .where(SsoSession.ended_at.is_(None), credentials.is_over(SsoSession, now=now, timeouts=settings))
        .order_by(SsoSession.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ended = []
    for session_id in db.scalars(over).all():
        sso = db.get(SsoSession, session_id)
        if sso is not None and sso.ended_at is None:
            end_session(db, sso, now=now, events=events)
            ended.append(sso.sid)
    return ended


def session_clients(db: Session, sid: str) -> list[OAuth2Client]:
    """The enabled relying parties that took part in a session: a code or a token was issued to them
    under its ``sid`` (what Back-Channel Logout §2.7 and Front-Channel Logout §3 notify), by name."""
    taking_part = (
        select(AuthorizationCode.client_id)
        .where(AuthorizationCode.sid == sid)
        .union(select(Token.client_id).where(Token.sid == sid))
    )
    query = select(OAuth2Client).where(OAuth2Client.client_id.in_(taking_part), OAuth2Client.enabled)
    found = db.scalars(query)
    return sorted(found, key=lambda client: (client.client_name, client.client_id))


def account_clients(db: Session, account_id: int) -> list[OAuth2Client]:
    """The enabled relying parties a person uses: one they allowed (a consent) or one that was issued a
    code or token for them (trusted sites ask no consent), by name. The landing page links to their
    ``client_uri``."""
    used = (
        select(Consent.client_id)
        .where(Consent.account_id == account_id)
        .union(
            select(AuthorizationCode.client_id).where(AuthorizationCode.account_id == account_id),
            select(Token.client_id).where(Token.account_id == account_id),
        )
    )
    query = select(OAuth2Client).where(OAuth2Client.client_id.in_(used), OAuth2Client.enabled)
    return sorted(db.scalars(query), key=lambda client: (client.client_name, client.client_id))


def end_account_sessions(
    db: Session, account_id: int, *, now: int, events: EventBus, keep_sid: str | None = None
) -> list[str]:
    """End every live session of an account (password change, block), optionally sparing one; return
    the sids ended."""
    live = db.scalars(select(SsoSession).filter_by(account_id=account_id, ended_at=None))
    ended = [sso for sso in live if sso.sid != keep_sid]
    for sso in ended:
        end_session(db, sso, now=now, events=events)
    return [sso.sid for sso in ended]


def revoke_session_tokens(db: Session, sid: str, *, now: int) -> None:
    revoke_tokens(db, Token.sid == sid, now=now)


def revoke_tokens(db: Session, *conditions, now: int, access: bool = True) -> None:
    """Revoke the refresh tokens (and, with ``access``, the access tokens) of the rows matching
    ``conditions``; rows already revoked keep their original time."""
    db.execute(
        update(Token)
        .where(*conditions, Token.refresh_token_revoked_at == 0)
        .values(refresh_token_revoked_at=now)
    )
    if access:
        db.execute(
            update(Token)
            .where(*conditions, Token.access_token_revoked_at == 0)
            .values(access_token_revoked_at=now)
        )
