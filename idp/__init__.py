"""idp: the OpenID Connect provider behind the foreign citizen's personal cabinet.

``create_app`` is the one composition root: it loads the settings, builds the adapters once (clock,
SMS sender, mailer, signing-key cache, event bus and its subscribers) and hands them to the rest of the
app through ``idp.runtime``.
"""

from __future__ import annotations

import os

from flask import Flask
from flask_babel import get_locale
from werkzeug.middleware.proxy_fix import ProxyFix

from . import config as config_module
from . import logs
from . import notifications
from .admission import Admission
from .background import Background
from .cli import register as register_commands
from .events import EventBus
from .events import SessionEnded
from .extensions import babel
from .extensions import csrf
from .extensions import db
from .extensions import limiter
from .extensions import migrate
from .headers import add_security_headers
from .headers import refuse_long_query
from .lean import CookieSessionInterface
from .lean import retry_after_on_refusal
from .lean import skip_limiter_where_unlimited
from .metrics import Counted
from .metrics import Metrics
from .oauth import init_oauth
from .oauth import logout
from .oauth import read_front
from .oauth.client_cache import ClientCache
from .oauth.documents import Documents
from .oauth.keys import KeyCache
from .oauth.read_front import ReadFront
from .observability import init_request_observation
from .runtime import EXTENSION
from .runtime import Clock
from .runtime import Runtime
from .runtime import system_clock
from .services import notices
from .services.mail import make_mailer
from .services.outbound_http import client_from_settings
from .services.outbox import Kinds
from .services.selfservice import recovery
from .services.selfservice import reset
from .services.sms import make_sender
from .urls import IssuerPath
from .urls import issuer_path
from .views import BLUEPRINTS
from .views import recovery as recovery_view
from .views import reset as reset_view
from .views.errors import register_error_handlers
from .views.locale import PageRequest
from .views.locale import select_locale
from .views.locale import switcher_context

PACKAGE = os.path.dirname(os.path.abspath(__file__))


def create_app(config: dict | None = None, *, clock: Clock | None = None) -> Flask:
    """Build the app. ``config`` is a ``{section: {key: value}}`` mapping applied over the TOML file;
    ``clock`` replaces the wall clock (tests)."""
    # Logging first, so that what the start-up logs is formatted and masked (idp.logs); the warnings of
    # reading the configuration itself wait for it.
    with logs.held() as warnings:
        settings = config_module.load_config(config)
    logs.configure(settings.logging)
    logs.replay(warnings)
    # Templates and static files are inside the package. The instance folder is IDP_INSTANCE_PATH, or
    # Flask's default: instance/ next to a checkout, <venv>/var/idp-instance for an installed wheel.
    app = Flask(__name__, instance_path=os.environ.get("IDP_INSTANCE_PATH") or None)
    app.request_class = PageRequest
    os.makedirs(app.instance_path, exist_ok=True)
    settings = config_module.in_instance(settings, app.instance_path)
    app.config.update(config_module.to_flask(settings))
    # A cap on the page requests one client address has in flight (idp.admission); behind Documents and
    # ReadFront, so discovery, the JWKS and the token, introspection and UserInfo requests answered there
    # never reach it, and behind ProxyFix, so the address is the client's.
    limits = settings.limits
    if limits.pages_in_flight or limits.pages_per_second:
        app.wsgi_app = Admission(  # type: ignore[method-assign]
            app,
            app.wsgi_app,
            cap=limits.pages_in_flight,
            rate=limits.pages_per_second,
            ipv6_prefix=limits.ipv6_prefix,
        )
    # Discovery, the JWKS (idp.oauth.documents), the client_credentials grant, introspection and UserInfo
    # (idp.oauth.read_front) without Flask's per-request machinery, behind ProxyFix like the app itself.
    app.wsgi_app = ReadFront(app, app.wsgi_app, read_front.ROUTES)  # type: ignore[method-assign]
    app.wsgi_app = Documents(app, app.wsgi_app)  # type: ignore[method-assign]
    # An issuer with a path (https://host/idp): the provider is served under it (idp/urls.py); in front of
    # Documents, which then sees the path below it and the script root.
    if issuer_path(settings.server.issuer):
        app.wsgi_app = IssuerPath(app.wsgi_app, issuer_path(settings.server.issuer))  # type: ignore[method-assign]
    if settings.server.proxy_count:
        count = settings.server.proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count)
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(PACKAGE, "migrations"), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories=os.path.join(PACKAGE, "translations"),
    )
    limiter.init_app(app)
    skip_limiter_where_unlimited(app)
    app.after_request(retry_after_on_refusal)
    app.session_interface = CookieSessionInterface()
    clock = clock or system_clock
    # Counters for /metrics; in each granian worker, built after the fork (idp.metrics).
    metrics = Metrics()
    runtime = Runtime(
        settings,
        clock=clock,
        sms=Counted(make_sender(settings.sms), metrics.sms),
        mailer=Counted(make_mailer(settings.mail), metrics.email),
        keys=KeyCache(clock, settings.keys.cache_ttl),
        clients=ClientCache(settings.oauth.client_cache_ttl),
        events=EventBus(),
        # Every request the provider itself makes (back-channel logout, ...) goes through this one client.
        outbound=client_from_settings(settings),
        # The kinds of message the durable outbox delivers, each with its handler (services.outbox).
        outbox=Kinds(settings.outbox),
        metrics=metrics,
    )
    app.extensions[EXTENSION] = runtime
    runtime.outbox.register(
        logout.KIND,
        logout.deliver_backchannel,
        max_attempts=settings.logout.backchannel_retries + 1,
        count=metrics.backchannel_delivery,
    )
    metrics.read_at_scrape(logout.outbox_gauges)
    # Takeover notices by SMS and e-mail (services.notices); informational, so a few attempts suffice.
    runtime.outbox.register(notices.KIND, notifications.deliver, max_attempts=5)
    # The reset SMS: made and sent by the outbox, so the reset page answers at once (issue 10).
    runtime.outbox.register(
        reset.KIND,
        reset.SmsDelivery(runtime.sms, settings, clock, reset_view.sms_text),
        max_attempts=3,
    )
    # The recovery's SMS code or e-mailed link, made and sent by the outbox likewise (issue 10).
    runtime.outbox.register(
        recovery.KIND,
        recovery.Delivery(
            runtime.sms, runtime.mailer, settings, clock, recovery_view.code_text, recovery_view.link_mail
        ),
        max_attempts=3,
        count=metrics.recovery_delivery,
    )
    runtime.events.subscribe(SessionEnded, logout.BackchannelLogout(settings.server.issuer).session_ended)
    # Delivers the outbox and sweeps timed-out sessions; started by the servers only (idp.serving).
    runtime.background = Background(app)
    init_oauth(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    init_request_observation(app)
    app.before_request(refuse_long_query)
    app.after_request(add_security_headers)
    app.context_processor(lambda: {"lang": str(get_locale()), **switcher_context()})
    register_commands(app)
    return app
