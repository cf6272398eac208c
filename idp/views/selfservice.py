"""What the self-service pages (``password``, ``reset``, ``recovery``) share: the per-address limit of
their forms, the password rules, the Migration Center's contacts, and the way back to the sign-in page
(and to the relying party that sent the user there). Their messages leave from the durable outbox
(``services.selfservice.sending``), never inside a request."""

from __future__ import annotations

from flask import request
from flask import session
from flask import url_for

from .. import messages
from ..runtime import current


def contacts() -> dict:
    """The Migration Center's contacts from [contacts], only the lines that are set."""
    settings = current().settings.contacts
    return {"name": settings.name, "url": settings.url, "lines": settings.lines}


def form_rate_limit() -> str:
    """[limits] form_rate_limit: POSTs of the anonymous self-service forms per client IP, checked before
    the captcha, any database write or any sending."""
    return current().settings.limits.form_rate_limit


def password_rules() -> str:
    """The policy in one line, shown under a new-password field (NIST SP 800-63B §5.1.1.2: guide users)."""
    return messages.PASSWORD_RULES % {"n": current().settings.passwords.min_length}


def remember_authz() -> None:
    """Keep the pending authorization a help page was opened from, so that after a reset or a
    recovery the sign-in page continues it (the RP still receives its code)."""
    if request.args.get("authz"):
        session["return_authz"] = request.args["authz"][:64]


def login_url() -> str:
    return url_for("login.login", authz=session.get("return_authz"))
