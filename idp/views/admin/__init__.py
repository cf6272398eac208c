"""The staff console at /admin: operators serve migrants at the counter, admins manage relying parties,
signing keys, staff, registration tokens, and read the audit log.

One module per area; every route but the sign-in page goes through ``common.staff_required``.
"""

from flask import Blueprint
from flask import request
from flask import url_for
from flask_babel import lazy_gettext as _l

from .common import ActionForm
from .common import current_staff

bp = Blueprint("admin", __name__, url_prefix="/admin")

# (endpoint, label, admin only): the console's menu.
MENU = (
    ("admin.accounts", _l("Учётные записи"), False),
    ("admin.clients", _l("Клиенты OAuth"), True),
    ("admin.keys_list", _l("Ключи подписи"), True),
    ("admin.staff", _l("Сотрудники"), True),
    ("admin.registration_tokens", _l("Токены регистрации"), True),
    ("admin.audit_log", _l("Журнал"), True),
    ("admin.password", _l("Сменить пароль"), False),
)


@bp.context_processor
def console_context() -> dict:
    session = current_staff()
    if session is None or session.staff.must_change_password:
        return {"staff_menu": [], "staff_user": None}
    user = session.staff
    menu = [
        {"url": url_for(endpoint), "label": label, "current": request.path.startswith(url_for(endpoint))}
        for endpoint, label, admin_only in MENU
        if user.is_admin or not admin_only
    ]
    return {"staff_menu": menu, "staff_user": f"{user.full_name} ({user.username})", "signout_form": ActionForm()}


from . import accounts  # noqa: E402,F401  (routes)
from . import auth  # noqa: E402,F401
from . import clients  # noqa: E402,F401
from . import keys  # noqa: E402,F401
from . import log  # noqa: E402,F401
from . import staff  # noqa: E402,F401
from . import tokens  # noqa: E402,F401
