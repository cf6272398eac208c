"""The provider's log lines: one handler on the root logger, text or JSON (``[logging]``), each line with
the id of the request that caused it, and nothing secret in any of them.

``configure`` is called by ``create_app`` (so by every server process, granian worker and ``idp``
command); it replaces the handler of an earlier call, so the last app built in a process decides (tests
build many). The production access log (``idp.access``, on standard output) keeps its own handler and
gets the same formatting and masking through ``adopt`` (``idp.serving``); granian's own lines reach the
root handler.

* **Format.** ``text``: ``time level logger [request id] message``, for a person at a terminal.
  ``json`` (python-json-logger): one object per line, ``{"time", "level", "logger", "message",
  "request_id", ...}`` plus the fields a line carries of its own (the access lines: ``method``,
  ``path``, ``status``, ``duration_ms``, ``remote_addr``). ``request_id`` is the id returned to the client
  as ``X-Request-Id`` (``idp.observability``), ``null`` outside a request (start-up, the background loop).
* **Nothing secret, at any level** (README "Security notes"). Two nets:

  1. Libraries known to put secrets in their own DEBUG or INFO lines are held above them whatever
     ``[logging] level`` says (``HELD``): authlib logs every token it issues at DEBUG ("Issue token
     {access_token, refresh_token, id_token…} to …"); smsaero-api logs the gateway URL with the API key
     and each SMS text (temporary passwords, recovery codes) at DEBUG; SQLAlchemy logs every statement
     with its parameters (SNILS, logins) at INFO. Raising the level is the choice, rather than masking
     those lines: what they say besides the secret is of no use to an operator, and a mask would have
     to guess every shape a library may print a token in.
  2. Every line that is written is masked (``redact``), whoever logged it: query strings (an
     ``id_token_hint`` in werkzeug's or urllib3's request line), the e-mailed recovery token in
     ``/recovery/link/…``, JWTs, ``Bearer``/``Basic`` credentials, credentials in a URL
     (``https://user:key@host``), a SNILS written as ``123-456-789 01``, and ``name=value`` or
     ``"name": value`` for names such as password, code, token, secret, snils, key. The mask is applied
     to the finished line (text) or to every string of the object (JSON), exception tracebacks included.

  The provider's own code never passes a secret to a logger in the first place; the masks are for
  what libraries and exceptions add.

May import: the standard library, python-json-logger, Flask (the request id of the current request).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

# Libraries whose lines at lower levels carry secrets (see above): the lowest level each may log at.
HELD = {
    "authlib": logging.INFO,
    "smsaero": logging.INFO,
    "sqlalchemy": logging.WARNING,
}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(request_id)s"
JSON_NAMES = {"levelname": "level", "name": "logger"}
MASK = "<redacted>"

_SECRET_NAMES = (
    r"password|passwd|pwd|new|old|repeat|secret|client_secret|token|access_token|refresh_token|id_token"
    r"|id_token_hint|registration_access_token|code|code_verifier|otp|totp|snils|api_key|apikey|key"
    r"|authorization|cookie|captcha"
)
# In the order applied: each rule's output contains nothing the next ones would need to see. Each rule
# has a gate: a string that any text the rule can match contains (in the lower-cased text for the rules
# that ignore case), so that a line without it skips the regex. Every line is redacted, the access line
# of every request too, and the gates take that from ~35 µs to a few (issue 12); they never change
# what is masked (tests/unit/test_logs.py compares with the ungated rules).
_RULES: tuple[tuple[re.Pattern[str], str, tuple[str, ...], bool], ...] = (
    # scheme://user:secret@host
    # (up to the last @ before the path: smsaero-api's user is an e-mail address).
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^\s/?#\"']*@", re.I), rf"\1{MASK}@", ("://",), False),
    # The e-mailed recovery link is a secret in the path itself.
    (re.compile(r"/recovery/link/[^\s/?#\"']+"), "/recovery/link/<token>", ("/recovery/link/",), False),
    # A query string after a path or URL: "GET /logout?id_token_hint=… HTTP/1.1", "…/cb?code=…".
    (
        re.compile(r"((?:\b[a-z][a-z0-9+.-]*://[^\s/?#\"']+)?/[^\s?#\"']*)\?[^\s#\"']*", re.I),
        rf"\1?{MASK}",
        ("?",),
        False,
    ),
    # JWS/JWT compact serialisation (ID tokens, logout tokens, assertions).
    (re.compile(r"\beyJ[\w-]*\.[\w-]*\.[\w-]*"), MASK, ("eyJ",), False),
    # HTTP credentials.
    (
        re.compile(r"\b(Bearer|Basic|Digest)\s+[\w\-.~+/=]+", re.I),
        rf"\1 {MASK}",
        ("bearer", "basic", "digest"),
        True,
    ),
    # name=value, name: value, 'name': 'value', "name": "value" for names that hold secrets.
    (
        re.compile(
            rf"""(?P<name>["']?\b(?:{_SECRET_NAMES})\b["']?\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|[^\s&,;)}}\]]+)""",
            re.I,
        ),
        rf"\g<name>{MASK}",
        tuple(_SECRET_NAMES.split("|")),
        True,
    ),
    # A SNILS as people write it (123-456-789 01), wherever it is.
    (re.compile(r"\b\d{3}-\d{3}-\d{3}[ -]\d{2}\b"), MASK, ("-",), False),
)

_SECRET_KEY = re.compile(_SECRET_NAMES, re.I)
_state: dict[str, Any] = {"format": "text"}


def redact(text: str) -> str:
    """``text`` with everything that looks like a secret replaced by ``<redacted>``."""
    for pattern, replacement, gate, ignores_case in _RULES:
        # Outside ASCII, re.I folds letters (the Kelvin sign as k, İ as i) that str.lower() folds
        # otherwise: such text always meets the regex.
        seen = text.lower() if ignores_case and text.isascii() else text
        if (ignores_case and not text.isascii()) or any(needle in seen for needle in gate):
            text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(item) for item in value]
    return value


class RequestIdFilter(logging.Filter):
    """Gives every record a ``request_id``: its own (the access lines set one), that of the request being
    handled, or None."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _current_request_id()
        return True


def _current_request_id() -> str | None:
    from flask import g
    from flask import has_app_context

    # The app context, not the request's: the protocol front (idp.oauth.read_front) handles
    # requests in an app context alone, with the request's id in g.
    return g.get("request_id") if has_app_context() else None


class TextFormatter(logging.Formatter):
    """One readable line, masked; ``-`` where no request caused it."""

    def __init__(self, fmt: str = TEXT_FORMAT, datefmt: str | None = None):
        super().__init__(fmt, datefmt)

    def format(self, record: logging.LogRecord) -> str:
        shown = record.__dict__.get("request_id")
        record.request_id = shown if shown is not None else "-"
        try:
            return redact(super().format(record))
        finally:
            record.request_id = shown


class JsonFormatter(_JsonFormatter):
    """One JSON object per line, every string in it masked."""

    def __init__(self) -> None:
        super().__init__(JSON_FIELDS, rename_fields=JSON_NAMES, timestamp="time", json_ensure_ascii=False)

    def process_log_record(self, log_data):
        return {
            key: MASK if _SECRET_KEY.fullmatch(key) else _redact_value(value)
            for key, value in log_data.items()
        }


class _StandardError(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when the line is written (a test may replace it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def is_json() -> bool:
    """Whether ``configure`` last chose JSON lines."""
    return _state["format"] == "json"


def formatter() -> logging.Formatter:
    return JsonFormatter() if is_json() else TextFormatter()


def configure(settings) -> None:
    """Apply ``[logging]`` (``settings``: ``config.LoggingSettings``) to this process."""
    _state["format"] = settings.format
    level = logging.getLevelName(settings.level)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_idp", False)]:
        root.removeHandler(handler)
    handler = _StandardError()
    handler._idp = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(formatter())
    root.addHandler(handler)
    root.setLevel(level)
    for name, floor in HELD.items():
        logging.getLogger(name).setLevel(max(floor, level))


@contextmanager
def held(name: str = "idp.config") -> Iterator[list[logging.LogRecord]]:
    """Keep what logger ``name`` logs inside the block (reading the configuration, before ``[logging]``
    is known) for ``replay`` once ``configure`` has run, so those lines too come out formatted (JSON)."""
    logger = logging.getLogger(name)
    records: list[logging.LogRecord] = []
    collector = _Collector(records)
    propagate = logger.propagate
    logger.addHandler(collector)
    logger.propagate = False
    try:
        yield records
    finally:
        logger.removeHandler(collector)
        logger.propagate = propagate


def replay(records: list[logging.LogRecord]) -> None:
    for record in records:
        logging.getLogger(record.name).handle(record)


class _Collector(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def adopt(logger: logging.Logger) -> None:
    """Give the handlers of a logger that does not propagate (the access log) our request ids, format (JSON)
    and masks (both formats; in text, its own layout is kept)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
        if is_json():
            handler.setFormatter(JsonFormatter())
        else:
            given = handler.formatter
            handler.setFormatter(
                TextFormatter(given._fmt or "%(message)s", given.datefmt) if given else TextFormatter()
            )
