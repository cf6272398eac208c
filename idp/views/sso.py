"""The browser's SSO session: the signed Flask session cookie (HttpOnly, SameSite=Lax) holds only a
random token, and the session itself is a row (``services.sessions``), so it can be ended on the server.
"""

from __future__ import annotations

from flask import g
from flask import request
from flask import session

from ..extensions import db
from ..models import Account
from ..models import SsoSession
from ..models.base import keeping_loaded
from ..runtime import current
from ..services import audit
from ..services import sessions


def current_sso(*, caller_commits: bool = False) -> SsoSession | None:
    """The live SSO session of this browser, looked up once per request.

    ``caller_commits``: the caller ends the transaction itself soon, with no password hash or other long
    work in between (the authorization endpoint: the code's INSERT commits). A lookup that found a live
    session and changed nothing then leaves its read to that transaction instead of one of its own."""
    if "idp_sso" not in g:
        runtime = current()
        token = session.get("sso")
        found = g.idp_sso = sessions.find_session(
            db.session,
            token,
            now=runtime.clock(),
            settings=runtime.settings.session,
            events=runtime.events,
            ip=request.remote_addr,
        )
        # Nothing written: an ended session (found None) has written its end, and a live one is dirty
        # when its last-seen time or address moved.
        unchanged = found is not None and not (db.session.dirty or db.session.new or db.session.deleted)
        if token is not None and not (caller_commits and unchanged):
            # What the lookup changed (last seen, an ended session) is kept at once. The session (and its
            # account) found here is what the rest of the request reads: not re-read.
            with keeping_loaded(db.session):
                db.session.commit()
        # why: without a cookie nothing was looked up or changed here, and a commit would only end the
        # caller's transaction early (a sign-in's audit event, apart from the session it starts).
    return g.idp_sso


def begin_sso(
    account: Account, amr: list[str], *, remember: bool = False, caller_commits: bool = False
) -> SsoSession:
    """Sign the browser in. The cookie token is always new (session fixation, ASVS 3.2.1); the same
    user signing in again keeps the session; another user's session is ended. Waiting authorization
    requests (and a device code waiting to be confirmed) are carried over. The cookie is a
    browser-session cookie (gone when the browser closes, as on a shared computer at a counter) unless
    ``remember`` («Запомнить меня на этом устройстве»): then it lasts the session's absolute timeout.
    The server-side timeouts apply either way.

    ``caller_commits``: the caller commits the session with what it writes next (a sign-in's code, issued
    in the same response), one transaction instead of two; it commits it even when it writes nothing."""
    runtime = current()
    now, settings = runtime.clock(), runtime.settings.session
    previous = current_sso()
    pending = session.get("pending", {})
    # A device code entered at /device before signing in (views/device.py) waits for the sign-in too.
    device = session.get("device")
    session.clear()
    if previous is not None and previous.account_id == account.id:
        sso = previous
        token = sessions.reauthenticate(db.session, sso, now=now, settings=settings, amr=amr)
    else:
        if previous is not None:
            sessions.end_session(db.session, previous, now=now, events=runtime.events)
        sso, token = sessions.start_session(
            db.session,
            account,
            now=now,
            settings=settings,
            amr=amr,
            ip=request.remote_addr,
            user_agent=request.user_agent.string,
        )
    if not caller_commits:
        with keeping_loaded(db.session):
            db.session.commit()
    session["sso"] = token
    session["pending"] = pending
    if device is not None:
        session["device"] = device
    session.permanent = remember
    g.idp_sso = sso
    return sso


def end_sso() -> str | None:
    """Sign the browser out; return the sid of the session that ended, if one was live."""
    sso = current_sso()
    sid = None
    if sso is not None:
        sid = sso.sid
        runtime = current()
        now = runtime.clock()
        sessions.end_session(db.session, sso, now=now, events=runtime.events)
        ctx = audit.Context(audit.Actor.account(sso.account), request.remote_addr, now)
        audit.record(db.session, ctx, "account.logged_out", account_id=sso.account_id)
        db.session.commit()
    session.clear()
    g.idp_sso = None
    return sid
