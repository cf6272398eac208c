"""Shared extension objects, bound to an app in ``create_app``.

The authorization server is not here: authlib registers grants on the server object, so a
module-level one would collect a second copy of every grant each time the factory runs. It is
built per app by ``idp.oauth.init_oauth`` and reached through ``authorization``.
"""

from typing import TYPE_CHECKING

from flask import current_app
from flask import request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from werkzeug.local import LocalProxy

from .csrf import OriginCheckingCSRFProtect
from .runtime import settings
from .services.net import rate_key


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
# The base of every model: Flask-SQLAlchemy's db.Model, which type checkers know as the Base it extends.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
csrf = OriginCheckingCSRFProtect()
babel = Babel()


def client_key() -> str:
    """The key of this request's client in every per-address limit: its address (ProxyFix has put the
    client's there) as ``services.net.rate_key`` counts it, an IPv6 one by its ``[limits] ipv6_prefix``
    network. Only for counting: logs and the audit trail keep ``request.remote_addr`` itself."""
    return rate_key(request.remote_addr or "", settings().limits.ipv6_prefix)


# Decorators on blueprint views bind at import time, once; init_app gives each app its storage.
limiter = Limiter(key_func=client_key)

authorization = LocalProxy(lambda: current_app.extensions["idp.authorization"])
