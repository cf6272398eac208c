"""Shared extension objects, bound to an app in ``create_app``.

The authorization server is not here: authlib registers grants on the server object, so a
module-level one would collect a second copy of every grant each time the factory runs. It is
built per app by ``idp.oauth.init_oauth`` and reached through ``authorization``.
"""

from typing import TYPE_CHECKING

from flask import current_app
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from werkzeug.local import LocalProxy

from .csrf import OriginCheckingCSRFProtect


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
# Decorators on blueprint views bind at import time, once; init_app gives each app its storage.
limiter = Limiter(key_func=get_remote_address)

authorization = LocalProxy(lambda: current_app.extensions["idp.authorization"])
