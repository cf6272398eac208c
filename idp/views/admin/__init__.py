"""The staff console at /admin: operators serve migrants at the counter, admins manage relying parties,
signing keys, staff, registration tokens, and read the audit log.

One module per area, each adding its routes to ``common.bp``; every route but the sign-in page goes
through ``common.staff_required``. The modules import ``common`` and never this package, so there is
no import cycle. The same imports as the other views.
"""

from flask import request
from flask import url_for
from flask_babel import lazy_gettext as _l

# Each module adds its routes to the blueprint of .common when imported.
from . import accounts  # noqa: F401
from . import auth  # noqa: F401
from . import clients  # noqa: F401
from . import keys  # noqa: F401
from . import log  # noqa: F401
from . import staff  # noqa: F401
from . import tokens  # noqa: F401
from .common import ActionForm
from .common import bp
from .common import current_staff

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
    return {
        "staff_menu": menu,
        "staff_user": f"{user.full_name} ({user.username})",
        "signout_form": ActionForm(),
    }
