"""The language of a page, and the switcher that changes it.

Russian is the source language; the others are the catalogues installed in idp/translations. A page's
language is, first match wins:

1. ``ui_locales`` of the authorization request (OIDC Core §3.1.2.1) — or of the logout request (RP-Initiated
   Logout 1.0 §2) — for the pages of that flow: the relying party knows what its user reads. A choice made
   with the switcher after the flow began wins over it: the person has just said what they read;
2. the switcher's choice, kept in the ``idp_lang`` cookie (and on the account once signed in, so SMS and
   e-mail follow it; at sign-in an account without a choice in this browser brings its own language);
3. the browser's ``Accept-Language``;
4. Russian.

The cookie holds ``<language>:<time of the choice>``: the time tells a choice made before an authorization
request (the request's ``ui_locales`` wins) from one made during it (the choice wins).
"""

from __future__ import annotations

import functools

from babel import support
from flask import Blueprint
from flask import Request
from flask import after_this_request
from flask import current_app
from flask import has_request_context
from flask import redirect
from flask import request
from flask import session
from flask import url_for
from flask_babel import get_locale
from werkzeug.exceptions import HTTPException
from wtforms.i18n import messages_path

from ..extensions import db
from ..languages import SOURCE
from ..languages import available
from ..languages import best_of
from ..languages import name_of
from ..oauth.pending import load_pending
from ..runtime import current
from .sso import current_sso

bp = Blueprint("locale", __name__)

COOKIE = "idp_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600


def read_choice() -> tuple[str | None, int]:
    """The switcher's choice in this browser and when it was made (0: brought by the account)."""
    value = request.cookies.get(COOKIE, "")
    language, _, at = value.partition(":")
    if language not in available():
        return None, 0
    return language, int(at) if at.isdigit() else 0


def _flow_choice() -> tuple[str | None, int]:
    """The ``ui_locales`` of the flow this request belongs to, and when that flow began."""
    endpoint = request.endpoint or ""
    now = current().clock()
    if endpoint == "oauth.authorize" or endpoint.startswith("logout."):
        try:
            values = request.values
        except HTTPException:  # a body over the limit: this is its error page
            values = request.args
        language = best_of(values.get("ui_locales"))
        if language:
            return language, now
    pending_id = request.view_args.get("pending_id") if request.view_args else None
    pending_id = pending_id or request.args.get("authz") or session.get("return_authz")
    pending = load_pending(pending_id) if pending_id else None
    if pending is not None:
        return best_of(dict(pending.params).get("ui_locales")), pending.started_at
    return None, 0


def select_locale() -> str:
    choice, chosen_at = read_choice()
    flow, began_at = _flow_choice()
    # Times are whole seconds: a choice made in the second the flow began counts as made during it (a
    # person who switches as soon as the page appears; a choice just before a redirect is the rarer case).
    if flow and (choice is None or began_at > chosen_at):
        return flow
    if choice:
        return choice
    return request.accept_languages.best_match(available(), default=SOURCE)


@functools.cache
def _wtforms_catalogue(language: str) -> support.Translations:
    return support.Translations.load(messages_path(), [language], domain="wtforms")


class PageRequest(Request):
    """Flask's request, whose WTForms catalogue (the fields' own messages, in the page's language) is
    loaded once per language and process. Flask-WTF reads it from ``request.wtforms_translations`` and,
    when the request has none, parses the .mo file again for every request that builds a form (twice a
    sign-in, issue 12); the catalogue of one language is the same for every request."""

    _wtforms_translations: support.NullTranslations | None = None

    @property
    def wtforms_translations(self) -> support.NullTranslations:
        if self._wtforms_translations is None:
            self._wtforms_translations = _wtforms_catalogue(str(get_locale()))
        return self._wtforms_translations

    @wtforms_translations.setter
    def wtforms_translations(self, value: support.NullTranslations) -> None:
        self._wtforms_translations = value


def remember(language: str, at: int) -> None:
    """Set the language cookie on the response to this request."""

    @after_this_request
    def set_cookie(response):
        response.set_cookie(
            COOKIE,
            f"{language}:{at}",
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
        )
        return response


def at_sign_in(account) -> None:
    """Called when a person signs in: a choice made in this browser becomes the account's language (SMS
    and e-mail follow it); without one, the account's language becomes the browser's. Russian, every
    account's default, is not imposed over the browser's Accept-Language."""
    choice, _at = read_choice()
    if choice and choice != account.locale:
        account.locale = choice
    elif choice is None and account.locale != SOURCE and account.locale in available():
        remember(account.locale, 0)


def safe_next(target: str | None) -> str:
    """A path on this site to go back to after a choice; anything else (another host, ``//x``, ``/\\x``)
    goes to the sign-in page."""
    if not target or not target.startswith("/") or target.startswith("//") or target.startswith("/\\"):
        return url_for("login.login")
    if any(ord(c) < 32 for c in target):
        return url_for("login.login")
    return target


@bp.route("/language", methods=["POST"])
def choose():
    """The switcher (a form on every page, base.html): remember the choice and show the same page again."""
    language = request.form.get("lang", "")
    target = safe_next(request.form.get("next"))
    if language not in available():
        return redirect(target)
    now = current().clock()
    remember(language, now)
    sso = current_sso()
    if sso is not None and sso.account.locale != language:
        sso.account.locale = language
        db.session.commit()
    return redirect(target, code=303)


def switcher_context() -> dict:
    """What base.html needs to draw the switcher (nothing for a template rendered outside a request: an
    e-mail the outbox sends)."""
    if not has_request_context():
        return {}
    # Back to the same page, with the pending authorization it belongs to, but no other parameter: a
    # query may carry what must not be copied into the page (id_token_hint, a code in a mistyped URL).
    target = request.path
    if request.args.get("authz"):
        target = url_for(request.endpoint, **(request.view_args or {}), authz=request.args["authz"][:64])
    return {
        "languages": [(code, name_of(code)) for code in available()],
        "switcher_next": target,
    }
