"""Shared extension objects, bound to an app in ``create_app``.

The authorization server is not here: authlib registers grants on the server object, so a
module-level one would collect a second copy of every grant each time the factory runs. It is
built per app by ``idp.oauth.init_oauth`` and reached through ``authorization``.
"""

from flask import current_app
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase
from werkzeug.local import LocalProxy


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
babel = Babel()
# Decorators on blueprint views bind at import time, once; init_app gives each app its storage.
limiter = Limiter(key_func=get_remote_address)

authorization = LocalProxy(lambda: current_app.extensions["idp.authorization"])
require_oauth = LocalProxy(lambda: current_app.extensions["idp.require_oauth"])
