"""Browser-side glue shared by the flows: the SSO cookie, pending authorization requests, settings.

The Flask session cookie (signed, HttpOnly, SameSite=Lax) holds only a random SSO token and the
parameters of authorization requests waiting for the user; the session itself lives in the database.
"""

from __future__ import annotations

import time

from flask import current_app
from flask import g
from flask import request
from flask import session
from flask import url_for

from ..extensions import db
from ..models import SsoSession
from ..oauth.interaction import PendingRequest
from ..services import captcha
from ..services import sessions
from ..services.accounts import LockoutSettings
from ..services.accounts import PasswordSettings
from ..services.mail import MailSettings
from ..services.mail import make_mailer
from ..services.sms import SmsSettings
from ..services.sms import make_sender
from ..services.tokens import new_secret

MAX_PENDING = 3


def now() -> int:
    return int(time.time())


def password_settings() -> PasswordSettings:
    cfg = current_app.config
    return PasswordSettings(bcrypt_rounds=cfg["PASSWORDS_BCRYPT_ROUNDS"], temporary_ttl=cfg["PASSWORDS_TEMPORARY_TTL"])


def lockout_settings() -> LockoutSettings:
    cfg = current_app.config
    return LockoutSettings(max_failures=cfg["LOGIN_MAX_FAILURES"], lockout=cfg["LOGIN_LOCKOUT"])


def session_settings() -> sessions.SessionSettings:
    cfg = current_app.config
    return sessions.SessionSettings(
        idle_timeout=cfg["SESSION_IDLE_TIMEOUT"], absolute_timeout=cfg["SESSION_ABSOLUTE_TIMEOUT"]
    )


def current_sso() -> SsoSession | None:
    if "idp_sso" not in g:
        sso = sessions.find_session(db.session, session.get("sso"), now=now(), settings=session_settings())
        db.session.commit()
        g.idp_sso = sso
    return g.idp_sso


def begin_sso(account, amr: list[str]) -> SsoSession:
    """Sign the browser in. The cookie token is always new (session fixation, ASVS 3.2.1); the same
    user signing in again keeps the session; another user's session is ended. Waiting authorization
    requests are carried over."""
    previous = current_sso()
    pending = session.get("pending", {})
    session.clear()
    if previous is not None and previous.account_id == account.id:
        sso = previous
        token = sessions.reauthenticate(db.session, sso, now=now(), settings=session_settings(), amr=amr)
    else:
        if previous is not None:
            sessions.end_session(db.session, previous, now=now())
        sso, token = sessions.start_session(
            db.session,
            account,
            now=now(),
            settings=session_settings(),
            amr=amr,
            ip=request.remote_addr,
            user_agent=request.user_agent.string,
        )
    db.session.commit()
    session["sso"] = token
    session["pending"] = pending
    session.permanent = True
    g.idp_sso = sso
    return sso


def end_sso() -> str | None:
    """Sign the browser out; return the sid of the session that ended, if one was live."""
    sso = current_sso()
    sid = None
    if sso is not None:
        sid = sso.sid
        sessions.end_session(db.session, sso, now=now())
        db.session.commit()
    session.clear()
    g.idp_sso = None
    return sid


def save_pending(pending: PendingRequest) -> None:
    stored = dict(session.get("pending", {}))
    stored[pending.id] = {"params": pending.params, "started_at": pending.started_at}
    # Keep the newest few: every tab that started a sign-in has one.
    newest = sorted(stored.items(), key=lambda item: item[1]["started_at"])[-MAX_PENDING:]
    session["pending"] = dict(newest)


def load_pending(pending_id: str) -> PendingRequest | None:
    item = session.get("pending", {}).get(pending_id)
    if not isinstance(item, dict):
        return None
    if item["started_at"] + current_app.config["OAUTH_INTERACTION_TTL"] < now():
        drop_pending(pending_id)
        return None
    return PendingRequest(id=pending_id, params=[tuple(p) for p in item["params"]], started_at=item["started_at"])


def drop_pending(pending_id: str) -> None:
    stored = dict(session.get("pending", {}))
    if stored.pop(pending_id, None) is not None:
        session["pending"] = stored


def new_pending(params: list[tuple[str, str]]) -> PendingRequest:
    return PendingRequest(id=new_secret(12), params=params, started_at=now())


def select_locale() -> str:
    """Russian is the source language; another language only where a catalogue for it is installed."""
    from ..extensions import babel

    available = ["ru"] + [str(locale) for locale in babel.list_translations() if str(locale) != "ru"]
    return request.accept_languages.best_match(available, default="ru")


def sms_sender():
    """One sender per app, so the SMS Aero client (and its connection pool) is built once."""
    sender = current_app.extensions.get("idp.sms")
    if sender is None:
        cfg = current_app.config
        sender = make_sender(
            SmsSettings(
                backend=cfg["SMS_BACKEND"],
                file_path=cfg["SMS_FILE_PATH"],
                allowed_country_codes=tuple(cfg["SMS_ALLOWED_COUNTRY_CODES"]),
                email=cfg["SMS_EMAIL"],
                api_key=cfg["SMS_API_KEY"],
                signature=cfg["SMS_SIGNATURE"],
                gate=cfg["SMS_GATE"],
                timeout=cfg["SMS_TIMEOUT"],
            )
        )
        current_app.extensions["idp.sms"] = sender
    return sender


def mailer():
    """One mailer per app, built from [mail]."""
    sender = current_app.extensions.get("idp.mail")
    if sender is None:
        cfg = current_app.config
        sender = make_mailer(
            MailSettings(
                backend=cfg["MAIL_BACKEND"],
                file_path=cfg["MAIL_FILE_PATH"],
                from_address=cfg["MAIL_FROM_ADDRESS"],
                host=cfg["MAIL_HOST"],
                port=cfg["MAIL_PORT"],
                security=cfg["MAIL_SECURITY"],
                username=cfg["MAIL_USERNAME"],
                password=cfg["MAIL_PASSWORD"],
                timeout=cfg["MAIL_TIMEOUT"],
            )
        )
        current_app.extensions["idp.mail"] = sender
    return sender


def contacts() -> dict:
    """The Migration Center's contacts from config, only the lines that are set."""
    cfg = current_app.config
    lines = [cfg["CONTACTS_ADDRESS"], cfg["CONTACTS_PHONE"], cfg["CONTACTS_HOURS"]]
    return {"name": cfg["CONTACTS_NAME"], "url": cfg["CONTACTS_URL"], "lines": [line for line in lines if line]}


def pad_response(started: float, floor_ms: int) -> None:
    """Sleep until ``floor_ms`` have passed since ``started`` (time.monotonic()), so that the answer's
    timing does not depend on what was found."""
    remaining = floor_ms / 1000 - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)


def captcha_key() -> bytes:
    return current_app.config["SECRET_KEY"].encode()


def captcha_solved(answer: str | None) -> bool:
    """Use up this browser's captcha challenge and say whether ``answer`` solved it (always true
    when [captcha] enabled = false, which exists for automated tests only)."""
    if not current_app.config["CAPTCHA_ENABLED"]:
        return True
    solved = captcha.redeem_challenge(db.session, session.pop("captcha", None), answer or "", key=captcha_key(), now=now())
    db.session.commit()
    return solved


def remember_authz() -> None:
    """Keep the pending authorization a help page was opened from, so that after a reset or a
    recovery the sign-in page continues it (the RP still receives its code)."""
    if request.args.get("authz"):
        session["return_authz"] = request.args["authz"][:64]


def login_url() -> str:
    return url_for("login.login", authz=session.get("return_authz"))
