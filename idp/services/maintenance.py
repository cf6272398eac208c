"""Housekeeping: rows that can no longer be used are deleted after a retention period; answered
captchas and past days' counters go soon after they lapse. The audit log is not purged here: an
account's history outlives its sessions and flows, and keeps its own, longer retention
(``audit.purge``, ``[audit] retention_days``).

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
from ..models import CaptchaUse
from ..models import DailyCounter
from ..models import DeviceCode
from ..models import InitialAccessToken
from ..models import PasswordChangeFlow
from ..models import PushedRequest
from ..models import RecoveryFlow
from ..models import ResetFlow
from ..models import SsoSession
from ..models import StaffSession
from ..models import Token
from ..models.base import affected_rows
from ..models.password import REQUIRED
from . import replay

CODE_RETENTION = 86400
# An answered captcha's row is what refuses its replay; it goes ten minutes after the challenge expired, so
# that a host whose clock runs a little behind (and still takes the challenge as live) finds it.
CAPTCHA_RETENTION = 600
# How long an expired device authorization request (RFC 8628) is kept, seconds: a device still polling
# gets expired_token rather than an unknown code.
DEVICE_RETENTION = 3600


def purge_expired(db: Session, *, now: int, retention: int) -> dict[str, int]:
    """Delete expired codes, sessions and tokens; return how many rows of each went."""
    cutoff = now - retention
    codes = affected_rows(
        db, delete(AuthorizationCode).where(AuthorizationCode.expires_at < now - CODE_RETENTION)
    )
    sessions = affected_rows(
        db,
        delete(SsoSession).where(
            or_(
                SsoSession.expires_at < cutoff,
                and_(SsoSession.ended_at.isnot(None), SsoSession.ended_at < cutoff),
            )
        ),
    )
    refresh_dead = or_(
        Token.refresh_token_hash.is_(None),
        Token.refresh_expires_at < cutoff,
        Token.refresh_token_revoked_at.between(1, cutoff),
    )
    tokens = affected_rows(db, delete(Token).where(Token.issued_at + Token.expires_in < cutoff, refresh_dead))
    staff_sessions = affected_rows(
        db,
        delete(StaffSession).where(
            or_(
                StaffSession.expires_at < cutoff,
                and_(StaffSession.ended_at.isnot(None), StaffSession.ended_at < cutoff),
            )
        ),
    )
    # Every flow, finished or not, lapses within minutes or hours of its last step: expiry alone tells.
    flows = affected_rows(db, delete(RecoveryFlow).where(RecoveryFlow.expires_at < cutoff))
    resets = affected_rows(db, delete(ResetFlow).where(ResetFlow.expires_at < cutoff))
    # A forced change stays while it is owed, however old the temporary password: only closed ones go.
    changes = affected_rows(
        db,
        delete(PasswordChangeFlow).where(
            PasswordChangeFlow.state != REQUIRED, PasswordChangeFlow.done_at < cutoff
        ),
    )
    initial_tokens = affected_rows(
        db, delete(InitialAccessToken).where(InitialAccessToken.expires_at < cutoff)
    )
    captchas = affected_rows(db, delete(CaptchaUse).where(CaptchaUse.expires_at < now - CAPTCHA_RETENTION))
    # Counters matter for their own day only; two days back is past any time zone's "today".
    two_days_ago = datetime.datetime.fromtimestamp(now - 2 * 86400, datetime.UTC).date().isoformat()
    day_counts = affected_rows(db, delete(DailyCounter).where(DailyCounter.day < two_days_ago))
    used_jtis = replay.purge(db, now=now)
    pushed = affected_rows(db, delete(PushedRequest).where(PushedRequest.expires_at < now))
    # RFC 8628: a device code past its expiry only ever answers expired_token; kept an hour for that.
    devices = affected_rows(db, delete(DeviceCode).where(DeviceCode.expires_at < now - DEVICE_RETENTION))
    return {
        "codes": codes,
        "sessions": sessions,
        "tokens": tokens,
        "staff_sessions": staff_sessions,
        "recovery_flows": flows,
        "reset_flows": resets,
        "password_change_flows": changes,
        "initial_tokens": initial_tokens,
        "captchas": captchas,
        "counters": day_counts,
        "used_jtis": used_jtis,
        "pushed_requests": pushed,
        "device_codes": devices,
    }
