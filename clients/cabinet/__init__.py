"""The foreign citizen's personal cabinet as a relying party of the provider.

Signed in, it shows the person's name, patent application number and masked phone, read from UserInfo
on every visit with an access token that is refreshed (and its refresh token rotated) before it
expires. When the provider no longer honours the tokens, the person signs in again.

Configuration, from the environment or ``create_app(config)``:

* ``CABINET_REGISTRATION`` — the JSON file written by ``idp clients create --json`` (required);
* ``CABINET_SECRET_KEY`` — signs the session cookie (default: random, so a restart signs everyone out).
"""

from __future__ import annotations

import os
import secrets

from flask import Flask
from flask import redirect
from flask import render_template
from flask import url_for

from .. import oidc

# offline_access brings a refresh token (OIDC Core §11); phone and patent are this cabinet's data.
SCOPE = "openid profile phone patent offline_access"


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        REGISTRATION=os.environ.get("CABINET_REGISTRATION"),
        SECRET_KEY=os.environ.get("CABINET_SECRET_KEY") or secrets.token_urlsafe(32),
        # Every app on 127.0.0.1 shares its cookies, whatever the port: each needs a name of its own.
        SESSION_COOKIE_NAME="cabinet_session",
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.config.update(config or {})
    oidc.init_app(app, scope=SCOPE)
    app.add_url_rule("/", "index", index)
    return app


def index():
    rp = oidc.relying_party()
    local = rp.current()
    if local is None:
        return render_template("index.html", person=None)
    try:
        claims = rp.userinfo(local)
    except oidc.SignInAgainError:
        rp.forget()
        return redirect(url_for("oidc.login"))
    person = {
        "name": claims.get("name", ""),
        "patent": claims.get("patent_application_number", ""),
        "phone": mask_phone(claims.get("phone_number", "")),
    }
    return render_template("index.html", person=person, csrf=local.csrf)


def mask_phone(e164: str) -> str:
    """+79161234567 -> +7 (916) ***-**-67: enough to recognise one's number, not to learn it."""
    digits = e164.lstrip("+")
    if e164.startswith("+7") and len(digits) == 11 and digits.isdigit():
        return f"+7 ({digits[1:4]}) ***-**-{digits[-2:]}"
    if len(digits) < 4:
        return "*" * len(e164)
    return "+" + digits[:2] + "*" * (len(digits) - 4) + digits[-2:]
