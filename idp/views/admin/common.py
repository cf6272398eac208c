"""What every page of the staff console shares: the blueprint, the staff session, the role check, audit
context, confirmation forms and date formatting.

The staff session is its own cookie ([staff] cookie_name), limited to ``Path=/admin`` and
``SameSite=Strict``, holding a random token whose digest is a ``staff_sessions`` row. It never touches
the migrants' Flask session, so neither kind of session can stand in for the other.
"""

from __future__ import annotations

import datetime
import functools

from flask import Blueprint
from flask import abort
from flask import g
from flask import redirect
from flask import request
from flask import url_for
from flask_babel import format_datetime
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms import StringField
from wtforms.validators import Length

from ...config import Settings
from ...extensions import db
from ...models import StaffSession
from ...models.staff import ROLE_ADMIN
from ...models.staff import ROLE_OPERATOR
from ...runtime import current
from ...services import audit
from ...services.staff import sessions as staff_sessions

bp = Blueprint("admin", __name__, url_prefix="/admin")

OPERATOR_ROLES = (ROLE_OPERATOR, ROLE_ADMIN)
ADMIN_ROLES = (ROLE_ADMIN,)
COOKIE_PATH = "/admin"


def settings() -> Settings:
    return current().settings


def current_time() -> int:
    return current().clock()


def current_staff() -> StaffSession | None:
    """The live staff session of this request, from the staff cookie only."""
    if "idp_staff" not in g:
        token = request.cookies.get(settings().staff.cookie_name)
        g.idp_staff = staff_sessions.find_session(
            db.session, token, now=current_time(), settings=settings().staff
        )
        db.session.commit()
    return g.idp_staff


def staff_required(*roles: str):
    """Every staff page goes through this: no staff session, a redirect to the sign-in page; a role not
    in ``roles``, 403. The roles are kept on the view, so a test can list every route and what it allows."""

    def decorate(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            session = current_staff()
            if session is None:
                # Back to the page after signing in; a form's POST cannot be replayed that way.
                wanted = _safe_next(request.full_path) if request.method in ("GET", "HEAD") else None
                return redirect(url_for("admin.login", next=wanted))
            if session.staff.must_change_password and request.endpoint != "admin.password":
                return redirect(url_for("admin.password"))
            if session.staff.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        guarded.allowed_roles = frozenset(roles)
        return guarded

    return decorate


def _safe_next(path: str | None) -> str | None:
    """Only a path inside the console (below the script root): anything else would make the sign-in page an
    open redirect."""
    path = (path or "").rstrip("?")
    if path.startswith(COOKIE_PATH + "/") and not path.startswith("//") and "\\" not in path:
        return path
    return None


def next_page() -> str:
    wanted = _safe_next(request.args.get("next"))
    return request.script_root + wanted if wanted else url_for("admin.index")


def cookie_path() -> str:
    # Under an issuer with a path (idp/urls.py) the console is at /idp/admin.
    return request.script_root + COOKIE_PATH


def me():
    return current_staff().staff


def ctx() -> audit.Context:
    """The audit context of the signed-in staff member's request."""
    return audit.Context(audit.Actor.staff(me()), request.remote_addr, current_time())


def set_staff_cookie(response, token: str):
    response.set_cookie(
        settings().staff.cookie_name,
        token,
        path=cookie_path(),
        httponly=True,
        samesite="Strict",
        secure=settings().server.is_https,
        # No max_age: closing the browser of a shared counter computer forgets the session too.
    )
    return response


def clear_staff_cookie(response):
    response.delete_cookie(settings().staff.cookie_name, path=cookie_path(), httponly=True, samesite="Strict")
    return response


class ConfirmForm(FlaskForm):
    """A destructive action: a reason for the log and a confirmation box, checked on the server."""

    reason = StringField(_l("Причина"), validators=[Length(max=500)])
    confirm = BooleanField(_l("Подтверждаю"))


class ActionForm(FlaskForm):
    """A harmless action: CSRF and an optional reason."""

    reason = StringField(_l("Причина"), validators=[Length(max=500)])


def confirmed(form: ConfirmForm) -> bool:
    return form.validate_on_submit() and bool(form.confirm.data)


def when(timestamp: int | None) -> str:
    """A Unix time as the Migration Center's local date and time, e.g. 22.11.2026 14:05."""
    if not timestamp:
        return ""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return format_datetime(moment, "dd.MM.yyyy HH:mm")


def day(timestamp: int | None) -> str:
    if not timestamp:
        return ""
    return format_datetime(datetime.datetime.fromtimestamp(timestamp, datetime.UTC), "dd.MM.yyyy")
