"""«Портал услуг»: a second relying party, to show single sign-on and single logout.

It asks for less than the cabinet (``openid profile``: no phone, no patent number, no refresh token)
and keeps the name it read from UserInfo at sign-in. A person already signed in to the provider (at
the cabinet, say) comes back from «Войти» signed in, without typing a password.

Configuration, from the environment or ``create_app(config)``:

* ``PORTAL_REGISTRATION`` — the JSON file written by ``idp clients create --json`` (required);
* ``PORTAL_SECRET_KEY`` — signs the session cookie (default: random).
"""

from __future__ import annotations

import os
import secrets

from flask import Flask
from flask import render_template

from .. import oidc

SCOPE = "openid profile"
SERVICES = ["Запись на приём в Миграционный центр", "Оплата патента", "Статус заявления на патент"]


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        REGISTRATION=os.environ.get("PORTAL_REGISTRATION"),
        SECRET_KEY=os.environ.get("PORTAL_SECRET_KEY") or secrets.token_urlsafe(32),
        # Every app on 127.0.0.1 shares its cookies, whatever the port: each needs a name of its own.
        SESSION_COOKIE_NAME="portal_session",
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.config.update(config or {})
    oidc.init_app(app, scope=SCOPE)
    app.add_url_rule("/", "index", index)
    return app


def index():
    local = oidc.relying_party().current()
    if local is None:
        return render_template("index.html", signed_in=False)
    name = local.profile.get("name", "")
    return render_template("index.html", signed_in=True, name=name, services=SERVICES, csrf=local.csrf)
