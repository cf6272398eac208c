from sqlalchemy import func
from sqlalchemy import select

from idp.config import SessionSettings
from idp.extensions import db
from idp.models import Account
from idp.models import AuthorizationCode
from idp.models import CaptchaUse
from idp.models import DailyCounter
from idp.models import DeviceCode
from idp.models import InitialAccessToken
from idp.models import PasswordChangeFlow
from idp.models import PushedRequest
from idp.models import RecoveryFlow
from idp.models import ResetFlow
from idp.models import SsoSession
from idp.models import StaffSession
from idp.models import StaffUser
from idp.models import Token
from idp.models import UsedJti
from idp.services import sessions
from idp.services.maintenance import CAPTCHA_RETENTION
from idp.services.maintenance import purge_expired

NOW = 2_000_000_000
DAY = 86400
SETTINGS = SessionSettings(idle_timeout=1800, absolute_timeout=43200)


def _count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def _token(account_id, **fields):
    values = dict(
        client_id="c",
        account_id=account_id,
        access_token_hash=f"a{len(fields)}{fields}"[:64],
        scope="openid",
        issued_at=NOW - 40 * DAY,
        expires_in=600,
        family_id="f",
    )
    values.update(fields)
    db.session.add(Token(**values))


def test_purge_deletes_only_what_can_no_longer_be_used(app, account):
    with app.app_context():
        owner = db.session.get(Account, account["id"])
        sessions.start_session(db.session, owner, now=NOW - 40 * DAY, settings=SETTINGS, amr=["pwd"])
        live, _ = sessions.start_session(db.session, owner, now=NOW, settings=SETTINGS, amr=["pwd"])
        for name, expires in (("old", NOW - 2 * DAY), ("fresh", NOW + 60)):
            db.session.add(
                AuthorizationCode(
                    code_hash=name,
                    client_id="c",
                    account_id=owner.id,
                    redirect_uri="x",
                    auth_time=NOW,
                    created_at=NOW,
                    expires_at=expires,
                )
            )
        _token(owner.id, access_token_hash="dead")
        _token(owner.id, access_token_hash="offline", refresh_token_hash="r", refresh_expires_at=NOW + DAY)
        # A used challenge's row outlives the challenge by CAPTCHA_RETENTION (hosts' clocks differ a little).
        for name, expires in (("old", NOW - CAPTCHA_RETENTION - 1), ("skewed", NOW - 1), ("live", NOW + 60)):
            db.session.add(CaptchaUse(id=name, expires_at=expires))
        for day in ("2033-05-15", "2033-05-17", "2033-05-18"):
            db.session.add(DailyCounter(key="requests-login:1", day=day, count=1))
        live_sid = live.sid
        clerk = StaffUser(
            username="clerk",
            full_name="К. Л.",
            role="operator",
            password_hash="x",
            totp_secret_encrypted="x",
            enabled=True,
            created_at=NOW,
            updated_at=NOW,
        )
        db.session.add(clerk)
        db.session.flush()
        for name, expires, ended in (
            ("expired", NOW - 31 * DAY, None),
            ("ended", NOW + DAY, NOW - 31 * DAY),
            ("recent", NOW - DAY, NOW - DAY),
            ("live", NOW + 60, None),
        ):
            db.session.add(
                StaffSession(
                    staff_id=clerk.id,
                    token_hash=name,
                    created_at=NOW - 40 * DAY,
                    last_seen_at=NOW - 40 * DAY,
                    expires_at=expires,
                    ended_at=ended,
                )
            )
        for name, expires in (("old", NOW - 31 * DAY), ("recent", NOW - DAY)):
            db.session.add(RecoveryFlow(id=name, state="done", created_at=NOW - 40 * DAY, expires_at=expires))
            db.session.add(
                ResetFlow(
                    account_id=owner.id,
                    state="used",
                    password_hash=name,
                    created_at=NOW - 40 * DAY,
                    expires_at=expires,
                )
            )
            db.session.add(
                InitialAccessToken(token_hash=name, label=name, created_at=NOW - 40 * DAY, expires_at=expires)
            )
        # Closed forced changes go after the retention; one still owed stays however old it is. The
        # account fixture's own closed one (at today's wall-clock time) is long past it too.
        for state, done_at in (("done", NOW - 31 * DAY), ("superseded", NOW - DAY), ("required", None)):
            db.session.add(
                PasswordChangeFlow(
                    staff_id=clerk.id,
                    reason="enrolled",
                    state=state,
                    created_at=NOW - 40 * DAY,
                    done_at=done_at,
                )
            )
        # One-time JWT ids and pushed requests go once they could no longer be accepted anyway.
        db.session.add_all(
            [UsedJti(key_hash="old", expires_at=NOW - 1), UsedJti(key_hash="live", expires_at=NOW + 60)]
        )
        db.session.add_all(
            [
                PushedRequest(
                    request_uri_hash=name, client_id="c", params=[], created_at=NOW - 90, expires_at=expires
                )
                for name, expires in (("old", NOW - 30), ("live", NOW + 30))
            ]
        )
        # Device codes (RFC 8628) go an hour after they expired.
        db.session.add_all(
            [
                DeviceCode(
                    device_code_hash=name,
                    user_code_hash=name,
                    client_id="c",
                    scope="openid",
                    created_at=NOW - 7200,
                    expires_at=expires,
                    interval=5,
                    status="pending",
                )
                for name, expires in (("old", NOW - 3601), ("recent", NOW - 60))
            ]
        )
        db.session.commit()

        counts = purge_expired(db.session, now=NOW, retention=30 * DAY)
        db.session.commit()

        assert counts == {
            "codes": 1,
            "sessions": 1,
            "tokens": 1,
            "staff_sessions": 2,
            "recovery_flows": 1,
            "reset_flows": 1,
            "password_change_flows": 2,
            "initial_tokens": 1,
            "captchas": 1,
            "counters": 1,
            "used_jtis": 1,
            "pushed_requests": 1,
            "device_codes": 1,
        }
        assert db.session.scalars(select(DeviceCode.device_code_hash)).all() == ["recent"]
        assert db.session.scalars(select(UsedJti.key_hash)).all() == ["live"]
        assert db.session.scalars(select(PushedRequest.request_uri_hash)).all() == ["live"]
        assert sorted(db.session.scalars(select(StaffSession.token_hash))) == ["live", "recent"]
        assert db.session.scalars(select(RecoveryFlow.id)).all() == ["recent"]
        assert db.session.scalars(select(ResetFlow.password_hash)).all() == ["recent"]
        assert sorted(db.session.scalars(select(PasswordChangeFlow.state))) == ["required", "superseded"]
        assert db.session.scalars(select(InitialAccessToken.label)).all() == ["recent"]
        assert sorted(db.session.scalars(select(CaptchaUse.id))) == ["live", "skewed"]
        assert sorted(db.session.scalars(select(DailyCounter.day))) == ["2033-05-17", "2033-05-18"]
        assert db.session.scalar(select(AuthorizationCode.code_hash)) == "fresh"
        assert db.session.scalars(select(SsoSession.sid)).all() == [live_sid]
        assert db.session.scalar(select(Token.access_token_hash)) == "offline"
