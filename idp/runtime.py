"""The settings and adapters of one app, built once by ``create_app`` and reached through ``current()``.

An adapter is how the provider reaches something outside its own code: the clock, the SMS gateway,
the mail server, the cached signing keys, the subscribers of its events. ``create_app`` builds each
one once from the settings and passes it here by name; views and CLI commands take what they need
from ``current()`` and hand it to services as arguments. Adding an adapter is one keyword argument in
``create_app`` (and, for type checkers and readers, one annotation below).

May import: ``idp.config``, the standard library, Flask (``current_app`` in ``current``).
Must not import: services, models, oauth, views.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

from flask import Flask
from flask import current_app

from .config import Settings

if TYPE_CHECKING:
    from .background import Background
    from .events import EventBus
    from .metrics import Metrics
    from .oauth.client_cache import ClientCache
    from .oauth.keys import KeyCache
    from .services.mail import MailSender
    from .services.outbound_http import OutboundClient
    from .services.outbox import Kinds
    from .services.sms import SmsSender

# What every part of the provider asks the time of: integer Unix seconds.
Clock = Callable[[], int]
EXTENSION = "idp"


def system_clock() -> int:
    return int(time.time())


class Runtime:
    """Settings and adapters. Attributes are the adapters ``create_app`` passed in."""

    settings: Settings
    clock: Clock
    sms: SmsSender
    mailer: MailSender
    keys: KeyCache
    clients: ClientCache
    events: EventBus
    outbound: OutboundClient
    outbox: Kinds
    background: Background
    metrics: Metrics

    def __init__(self, settings: Settings, **adapters: Any) -> None:
        self.settings = settings
        for name, adapter in adapters.items():
            setattr(self, name, adapter)

    def now(self) -> int:
        return self.clock()


def of(app: Flask) -> Runtime:
    return app.extensions[EXTENSION]


def current() -> Runtime:
    """The runtime of the app handling this request or command."""
    return of(current_app)


def settings() -> Settings:
    return current().settings
