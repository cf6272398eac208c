"""Housekeeping: rows that can no longer be used are deleted after a retention period; expired
captcha challenges and past days' counters go at once. The audit log is never purged here: an
account's history outlives its sessions and flows.

Used codes are kept until their replay window is useless (a day), so a second redemption is still
recognised as a replay; ended sessions and dead tokens are kept ``retention`` seconds for auditing.
"""

from __future__ import annotations

import datetime

from sqlalchemy import and_
from sqlalchemy import delete
from sqlalchemy import or_
from sqlalchemy.orm import Session

from ..models import AuthorizationCode
from ..models import CaptchaChallenge
from ..models import DailyCounter
from ..models import InitialAccessToken
from ..models import RecoveryFlow
from ..models import SsoSession
from ..models import StaffSession
from ..models import Token

CODE_RETENTION = 86400


def purge_expired(db: Session, *, now: int, retention: int) -> dict[str, int]:
    """Delete expired codes, sessions and tokens; return how many rows of each went."""
    cutoff = now - retention
    codes = db.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at < now - CODE_RETENTION))
    sessions = db.execute(
        delete(SsoSession).where(
            or_(SsoSession.expires_at < cutoff, and_(SsoSession.ended_at.isnot(None), SsoSession.ended_at < cutoff))
        )
    )
    refresh_dead = or_(
        Token.refresh_token_hash.is_(None), Token.refresh_expires_at < cutoff, Token.refresh_token_revoked_at.between(1, cutoff)
    )
    tokens = db.execute(delete(Token).where(Token.issued_at + Token.expires_in < cutoff, refresh_dead))
    staff_sessions = db.execute(
        delete(StaffSession).where(
            or_(StaffSession.expires_at < cutoff, and_(StaffSession.ended_at.isnot(None), StaffSession.ended_at < cutoff))
        )
    )
    # Every flow, finished or not, lapses within minutes or hours of its last step: expiry alone tells.
    flows = db.execute(delete(RecoveryFlow).where(RecoveryFlow.expires_at < cutoff))
    initial_tokens = db.execute(delete(InitialAccessToken).where(InitialAccessToken.expires_at < cutoff))
    captchas = db.execute(delete(CaptchaChallenge).where(CaptchaChallenge.expires_at < now))
    # Counters matter for their own day only; two days back is past any time zone's "today".
    two_days_ago = datetime.datetime.fromtimestamp(now - 2 * 86400, datetime.UTC).date().isoformat()
    day_counts = db.execute(delete(DailyCounter).where(DailyCounter.day < two_days_ago))
    return {
        "codes": codes.rowcount,
        "sessions": sessions.rowcount,
        "tokens": tokens.rowcount,
        "staff_sessions": staff_sessions.rowcount,
        "recovery_flows": flows.rowcount,
        "initial_tokens": initial_tokens.rowcount,
        "captchas": captchas.rowcount,
        "counters": day_counts.rowcount,
    }
