"""idp: the OpenID Connect provider behind the foreign citizen's personal cabinet."""

import os

from flask import Flask
from flask_babel import get_locale
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config as config_module
from .errors import register_error_handlers
from .extensions import babel
from .extensions import csrf
from .extensions import db
from .extensions import limiter
from .extensions import migrate
from .headers import add_security_headers
from .headers import refuse_long_query
from .oauth import init_oauth
from .views import BLUEPRINTS
from .views.web import select_locale

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
def create_app(config=None):
    """Build the app. ``config`` is a ``{section: {key: value}}`` mapping applied over the TOML file."""
    settings = config_module.load_config(config)
    app = Flask(
        __name__,
        template_folder=os.path.join(ROOT, "templates"),
        instance_path=os.environ.get("IDP_INSTANCE_PATH") or os.path.join(ROOT, "instance"),
    )
    app.config.update(config_module.to_flask(settings))
    os.makedirs(app.instance_path, exist_ok=True)
    for outbox in ("SMS_FILE_PATH", "MAIL_FILE_PATH"):
        app.config[outbox] = os.path.join(app.instance_path, app.config[outbox])
    if settings["server"]["proxy_count"]:
        count = settings["server"]["proxy_count"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count)
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories=os.path.join(os.path.dirname(__file__), "translations"),
    )
    limiter.init_app(app)
    init_oauth(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    app.before_request(refuse_long_query)
    app.after_request(add_security_headers)
    app.context_processor(lambda: {"lang": str(get_locale())})
    from . import cli

    cli.register(app)
    return app
