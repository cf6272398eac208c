"""Server-side SSO sessions: start at sign-in, look up per request, end on logout.

The browser cookie carries a random token; only its digest is stored. Ending a session also revokes
the tokens issued within it (see README, "Sessions and tokens"), and notes its ``sid`` on the database
session (``ended_sids``): once that transaction commits, the relying parties that took part are told
(back-channel logout, ``idp.oauth.logout``), whoever ended it — logout, a timeout, a password change,
an operator.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from ..models import Account
from ..models import AuthorizationCode
from ..models import OAuth2Client
from ..models import SsoSession
from ..models import Token
from .tokens import digest
from .tokens import new_secret

# Writing last_seen_at on every request would make each page view a write; a minute of slack in
# the idle timeout is harmless.
TOUCH_INTERVAL = 60
# Key in the SQLAlchemy Session's ``info`` under which end_session lists the sids it ended.
ENDED_SIDS = "idp.ended_sids"


@dataclass(frozen=True)
class SessionSettings:
    idle_timeout: int
    absolute_timeout: int


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
    token = new_secret()
    sso = SsoSession(
        sid=new_secret(24),
        token_hash=digest(token),
        account_id=account.id,
        auth_time=now,
        amr=" ".join(amr),
        created_at=now,
        last_seen_at=now,
        expires_at=now + settings.absolute_timeout,
        ip=(ip or "")[:45] or None,
        user_agent=(user_agent or "")[:200] or None,
    )
    db.add(sso)
    db.flush()
    return sso, token


def reauthenticate(db: Session, sso: SsoSession, *, now: int, settings: SessionSettings, amr: list[str]) -> str:
    """The same user proved the password again (prompt=login, max_age): keep the session and its sid,
    so tokens issued in it stay valid, but record the new auth_time and hand out a new cookie token."""
    token = new_secret()
    sso.token_hash = digest(token)
    sso.auth_time = now
    sso.amr = " ".join(amr)
    sso.last_seen_at = now
    sso.expires_at = now + settings.absolute_timeout
    return token


def find_session(db: Session, token: str | None, *, now: int, settings: SessionSettings) -> SsoSession | None:
    """The live session for a cookie token, or None if it is unknown, ended, expired or idle too long."""
    if not token or not isinstance(token, str) or len(token) > 128:
        return None
    sso = db.scalar(select(SsoSession).filter_by(token_hash=digest(token)))
    if sso is None or sso.ended_at is not None:
        return None
    if sso.expires_at <= now or sso.last_seen_at + settings.idle_timeout <= now or not sso.account.is_active:
        end_session(db, sso, now=now)
        return None
    if now - sso.last_seen_at >= TOUCH_INTERVAL:
        sso.last_seen_at = now
    return sso


def end_session(db: Session, sso: SsoSession, *, now: int) -> None:
    if sso.ended_at is None:
        sso.ended_at = now
        db.info.setdefault(ENDED_SIDS, []).append(sso.sid)
    revoke_session_tokens(db, sso.sid, now=now)


def take_ended_sids(db: Session) -> list[str]:
    """The sids ended in ``db``'s transaction so far, forgotten once taken (after a commit or rollback)."""
    return db.info.pop(ENDED_SIDS, [])


def session_clients(db: Session, sid: str) -> list[OAuth2Client]:
    """The enabled relying parties that took part in a session: a code or a token was issued to them
    under its ``sid`` (what Back-Channel Logout §2.7 and Front-Channel Logout §3 notify), by name."""
    taking_part = select(AuthorizationCode.client_id).where(AuthorizationCode.sid == sid).union(
        select(Token.client_id).where(Token.sid == sid)
    )
    query = select(OAuth2Client).where(OAuth2Client.client_id.in_(taking_part), OAuth2Client.enabled)
    found = db.scalars(query)
    return sorted(found, key=lambda client: (client.client_name, client.client_id))


def end_account_sessions(db: Session, account_id: int, *, now: int, keep_sid: str | None = None) -> list[str]:
    """End every live session of an account (password change, block), optionally sparing one; return
    the sids ended."""
    live = db.scalars(select(SsoSession).filter_by(account_id=account_id, ended_at=None))
    ended = [sso for sso in live if sso.sid != keep_sid]
    for sso in ended:
        end_session(db, sso, now=now)
    return [sso.sid for sso in ended]


def revoke_session_tokens(db: Session, sid: str, *, now: int) -> None:
    revoke_tokens(db, Token.sid == sid, now=now)


def revoke_tokens(db: Session, *conditions, now: int, access: bool = True) -> None:
    """Revoke the refresh tokens (and, with ``access``, the access tokens) of the rows matching
    ``conditions``; rows already revoked keep their original time."""
    db.execute(update(Token).where(*conditions, Token.refresh_token_revoked_at == 0).values(refresh_token_revoked_at=now))
    if access:
        db.execute(update(Token).where(*conditions, Token.access_token_revoked_at == 0).values(access_token_revoked_at=now))
