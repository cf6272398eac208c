"""What the self-service pages (``password``, ``reset``, ``recovery``) share: the delivery of a message
between two transactions, the uniform answer time, the password rules, the Migration Center's contacts,
and the way back to the sign-in page (and to the relying party that sent the user there)."""

from __future__ import annotations

from collections.abc import Callable

from flask import request
from flask import session
from flask import url_for

from .. import messages
from ..errors import DeliveryError
from ..extensions import db
from ..runtime import current
from ..urls import public_url


def contacts() -> dict:
    """The Migration Center's contacts from [contacts], only the lines that are set."""
    settings = current().settings.contacts
    return {"name": settings.name, "url": settings.url, "lines": settings.lines}


def deliver(send: Callable[[], None], *, sent: Callable[[], None], not_sent: Callable[[], None]) -> None:
    """Send a message between two transactions (the transaction rule of ``services.selfservice``):
    commit what the flow counted, so no row stays locked during the slow gateway call; send; then record
    ``sent`` or, when the gateway refused (DeliveryError, raised again), ``not_sent``.

    Unknown is not failed (issue 10): when no definite answer came (a timeout; ``DeliveryError.unknown``)
    the message may still arrive, so it is recorded as ``sent`` — what it carries stays valid and its
    counts stay taken. Otherwise a gateway answering after its timeout would deliver unlimited messages,
    each carrying something that no longer works."""
    db.session.commit()
    try:
        send()
    except DeliveryError as error:
        if not error.unknown:
            not_sent()
            db.session.commit()
            raise
    sent()
    db.session.commit()


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


def issuer_url(endpoint: str, **values) -> str:
    """An absolute URL for a message (SMS, e-mail), built from the configured issuer, never from the
    request's Host header."""
    return public_url(endpoint, **values)
