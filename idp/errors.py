"""Flow errors raised by services and shown by views, and the app's last-resort error handlers.

Protocol errors are authlib's ``OAuth2Error`` subclasses and never pass through here.
"""

import logging

from flask import jsonify
from flask import render_template
from flask import request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class IdpError(Exception):
    """Base of the errors a service raises for a view to turn into a message."""


class InvalidCredentialsError(IdpError):
    """Unknown login, wrong or expired password, blocked or locked account: one error for all, so the
    answer does not tell which (OWASP ASVS 2.2 / 3.2)."""


class AccountDataError(IdpError):
    """Data given for a new or changed account does not validate; ``field`` names the culprit."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ClientDataError(IdpError):
    """Client registration data does not validate."""


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def register_error_handlers(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        message = _("Страница устарела. Обновите её и повторите попытку.")
        return render_template("error.html", title=_("Ошибка"), message=message), 400

    @app.errorhandler(HTTPException)
    def http_error(error):
        if _wants_json() or request.path.startswith(("/token", "/revoke", "/introspect", "/userinfo", "/register")):
            return jsonify(error="invalid_request", error_description=error.name), error.code
        return render_template("error.html", title=str(error.code), message=_http_message(error.code)), error.code

    @app.errorhandler(Exception)
    def unexpected_error(error):
        # why: the details go to the log only; a traceback in a response helps an attacker, not a user.
        # The route's pattern, not the path: a path can carry a secret (/recovery/link/<token>).
        route = request.url_rule.rule if request.url_rule else "(no route)"
        log.exception("unhandled error on %s %s", request.method, route)
        return render_template("error.html", title="500", message=_("Внутренняя ошибка. Попробуйте позже.")), 500


def _http_message(code: int) -> str:
    messages = {
        400: _("Некорректный запрос."),
        403: _("Доступ запрещён."),
        404: _("Страница не найдена."),
        405: _("Метод не поддерживается."),
        413: _("Слишком большой запрос."),
        429: _("Слишком много попыток. Подождите и повторите."),
    }
    return messages.get(code, _("Некорректный запрос."))
