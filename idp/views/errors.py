"""The app's last-resort error handlers: a page in the user's language, never a traceback.

Flow errors (``idp.errors``) are caught by the views that call the services. What reaches here is a
stale form (CSRF), an HTTP-level failure (404, 405, 413, 429), or a bug. Protocol clients get an OAuth
error from ``idp.oauth.errors`` instead of a page.
"""

from __future__ import annotations

import logging

from flask import render_template
from flask import request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from limits.errors import StorageError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from .. import messages
from ..csrf import CrossOriginRequestError
from ..oauth.errors import RETRY_AFTER
from ..oauth.errors import protocol_error_response
from ..oauth.errors import unavailable_response

# The name operators filter on; it predates this module.
log = logging.getLogger("idp.errors")


def register_error_handlers(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_template("error.html", title=_("Ошибка"), message=messages.STALE_FORM), 400

    @app.errorhandler(CrossOriginRequestError)
    def cross_origin_error(error):
        log.warning("form refused: %s", error.description)
        return render_template("error.html", title=_("Ошибка"), message=messages.CROSS_ORIGIN_FORM), 403

    @app.errorhandler(HTTPException)
    def http_error(error):
        response = protocol_error_response(error)
        if response is not None:
            return response
        message = messages.HTTP_ERRORS.get(error.code, messages.HTTP_ERRORS[400])
        return render_template("error.html", title=str(error.code), message=message), error.code

    @app.errorhandler(Exception)
    def unexpected_error(error):
        # why: the details go to the log only; a traceback in a response helps an attacker, not a user.
        # The route's pattern, not the path: a path can carry a secret (/recovery/link/<token>).
        route = request.url_rule.rule if request.url_rule else "(no route)"
        log.exception("unhandled error on %s %s", request.method, route)
        return render_template("error.html", title="500", message=messages.INTERNAL_ERROR), 500

    @app.errorhandler(SQLAlchemyError)
    @app.errorhandler(StorageError)
    def backend_error(error):
        if not is_outage(error):
            return unexpected_error(error)
        # The class is enough to act on; the message can name servers and users.
        route = request.url_rule.rule if request.url_rule else "(no route)"
        log.error("%s %s: service unavailable: %s", request.method, route, describe_outage(error))
        response = unavailable_response()
        if response is None:
            message = messages.HTTP_ERRORS[503]
            response = app.make_response((render_template("error.html", title="503", message=message), 503))
            response.headers["Retry-After"] = str(RETRY_AFTER)
        response.headers["Cache-Control"] = "no-store"
        return response


def is_outage(error: Exception) -> bool:
    """The database or the rate-limit storage (Redis) cannot be reached, as opposed to a bug or a
    constraint: a connection refused, cut or timed out, the pool exhausted, any Redis failure (limits
    wraps them all in StorageError: the limit is not skipped, the request is refused — fail closed)."""
    if isinstance(error, (OperationalError, InterfaceError, PoolTimeoutError, StorageError)):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def describe_outage(error: Exception) -> str:
    if isinstance(error, StorageError):
        return f"rate-limit storage: {type(error.storage_error).__name__}"
    original = getattr(error, "orig", None)
    return f"database: {type(original or error).__name__}"
