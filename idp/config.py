"""Configuration: one TOML file, every key declared once, bad input stops start-up.

Sources, later ones win:

1. ``SCHEMA`` defaults below (safe for production: no secret, production mode);
2. the development preset, only when no file is named by ``IDP_CONFIG``;
3. the TOML file named by ``IDP_CONFIG``;
4. environment variables ``IDP_<SECTION>_<KEY>`` (e.g. ``IDP_SERVER_SECRET_KEY``), so secrets
   need not sit in the file;
5. the ``config`` mapping given to ``create_app`` (tests).

As node-oidc-provider does with its ``defaults.js``, each default is documented where it is declared;
``config.example.toml`` repeats them for operators and a test keeps the two in step.
"""

from __future__ import annotations

import logging
import os
import tomllib
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .services.net import is_loopback

log = logging.getLogger(__name__)

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"


class ConfigError(Exception):
    """A configuration key is unknown or has a bad value; the message names the key."""


@dataclass(frozen=True)
class Option:
    default: Any
    doc: str
    secret: bool = False
    check: Callable[[Any], str | None] | None = None


def _one_of(*values: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in values else f"must be one of {', '.join(values)}"

    return check


def _at_least(minimum: int, maximum: int | None = None) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value < minimum or (maximum is not None and value > maximum):
            return f"must be between {minimum} and {maximum}" if maximum else f"must be at least {minimum}"
        return None

    return check


def _http_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http(s) URL"
    # OIDC Discovery 1.0 §3: the issuer has no query or fragment.
    if parts.query or parts.fragment:
        return "must not contain a query or fragment"
    if value.endswith("/"):
        return "must not end with a slash (it is compared character by character)"
    return None


def _timezone(value: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "is not a known IANA time zone"
    return None


def _rate(value: str) -> str | None:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        return 'must be a rate such as "10/minute"'
    return None


def _gate(value: str) -> str | None:
    # smsaero-api builds "https://EMAIL:KEY" + gate + path; anything but "@host[:port]/v2/" is a mistake.
    if not value.startswith("@") or not value.endswith("/v2/") or "/" in value[1:-4]:
        return 'must look like "@gate.smsaero.ru/v2/"'
    return None


def _country_codes(value: list) -> str | None:
    if not value or not all(isinstance(code, str) and code.isdigit() and 1 <= len(code) <= 3 for code in value):
        return 'must be a non-empty list of calling codes such as ["7"]'
    return None


SCHEMA: dict[str, dict[str, Option]] = {
    "server": {
        "environment": Option(
            "production",
            "development or production; production refuses insecure values",
            check=_one_of("development", "production"),
        ),
        "issuer": Option(
            "http://127.0.0.1:5000",
            "issuer identifier and public base URL; https outside loopback",
            check=_http_url,
        ),
        "secret_key": Option("", "signs session cookies and CSRF tokens; at least 32 characters", secret=True),
        "proxy_count": Option(0, "reverse proxies in front that set X-Forwarded-*", check=_at_least(0, 5)),
        "timezone": Option("Europe/Moscow", "time zone for calendar days", check=_timezone),
    },
    "database": {
        "url": Option(
            "sqlite:///idp.sqlite3",
            "SQLAlchemy URL; relative SQLite paths live in instance/",
            secret=True,
        ),
    },
    "oauth": {
        "code_ttl": Option(60, "authorization code lifetime, seconds", check=_at_least(10, 600)),
        "access_token_ttl": Option(600, "access token lifetime, seconds", check=_at_least(60, 86400)),
        "id_token_ttl": Option(3600, "ID token lifetime, seconds", check=_at_least(60, 86400)),
        "refresh_token_ttl": Option(
            2592000, "refresh token lifetime, seconds (a rotation keeps the family's end)", check=_at_least(300)
        ),
        "interaction_ttl": Option(
            1800, "how long a pending authorization waits for the sign-in, seconds", check=_at_least(60, 86400)
        ),
    },
    "keys": {
        "jwks_max_age": Option(300, "Cache-Control max-age of JWKS and discovery, seconds", check=_at_least(0, 86400)),
        "publish_ahead": Option(
            900, "how long a rotated-in key is published before it signs, seconds", check=_at_least(0)
        ),
    },
    "session": {
        "idle_timeout": Option(1800, "SSO session ends after this much inactivity, seconds", check=_at_least(60)),
        "absolute_timeout": Option(43200, "SSO session ends this long after sign-in, seconds", check=_at_least(300)),
        "cookie_name": Option("idp_session", "name of the browser session cookie"),
    },
    "logout": {
        "backchannel_timeout": Option(
            3, "back-channel logout: how long one POST to a relying party may take, seconds", check=_at_least(1, 30)
        ),
        "backchannel_retries": Option(
            2, "back-channel logout: further attempts after a failed POST", check=_at_least(0, 5)
        ),
    },
    "passwords": {
        "bcrypt_rounds": Option(12, "bcrypt cost factor; old hashes are upgraded at sign-in", check=_at_least(4, 31)),
        "temporary_ttl": Option(259200, "temporary password lifetime, seconds", check=_at_least(300)),
        "min_length": Option(8, "shortest accepted new password, characters", check=_at_least(8, 64)),
    },
    "login": {
        "max_failures": Option(10, "failed sign-ins in a row before an account is locked", check=_at_least(3)),
        "lockout": Option(900, "how long such a lock lasts, seconds", check=_at_least(60)),
        "rate_limit": Option("30/minute", "sign-in POSTs allowed per client IP", check=_rate),
    },
    "rate_limits": {
        "storage_uri": Option(
            "memory://",
            "where counters live: memory:// (one process) or redis://host:port/db",
            secret=True,
        ),
    },
    "sms": {
        "backend": Option(
            "file", "how SMS leave: file (JSON lines outbox) or smsaero (SMS Aero gateway)", check=_one_of("file", "smsaero")
        ),
        "file_path": Option("outbox/sms.jsonl", "outbox of the file backend; relative to instance/"),
        "email": Option("", "SMS Aero account e-mail (smsaero backend)"),
        "api_key": Option("", "SMS Aero API key (smsaero backend)", secret=True),
        "signature": Option("SMS Aero", "sender name registered with SMS Aero"),
        "gate": Option(
            "@gate.smsaero.ru/v2/",
            "the single https gateway used; one gate leaves the client no plain-http fallback",
            check=_gate,
        ),
        "timeout": Option(10, "gateway timeout, seconds", check=_at_least(3, 60)),
        "allowed_country_codes": Option(["7"], "country calling codes SMS may go to", check=_country_codes),
    },
    "captcha": {
        "enabled": Option(True, "image captcha on recovery forms; false only for automated tests"),
        "ttl": Option(300, "how long a captcha image can be answered, seconds", check=_at_least(30, 3600)),
    },
    "reset": {
        "daily_limit": Option(3, "password resets per login per calendar day", check=_at_least(1, 100)),
        "ip_daily_limit": Option(30, "reset requests per client IP per calendar day", check=_at_least(1)),
        "phone_daily_limit": Option(3, "reset SMS per phone number per calendar day", check=_at_least(1)),
        "sms_daily_budget": Option(
            2000, "reset SMS for the whole service per calendar day; then sending stops and an alert is logged",
            check=_at_least(1),
        ),
        "response_floor_ms": Option(
            1500, "every reset answer takes at least this long, milliseconds, so timing tells nothing",
            check=_at_least(0, 30000),
        ),
    },
    "mail": {
        "backend": Option("file", "how e-mail leaves: file (JSON lines outbox) or smtp", check=_one_of("file", "smtp")),
        "file_path": Option("outbox/mail.jsonl", "outbox of the file backend; relative to instance/"),
        "from_address": Option("no-reply@localhost", "the From: address of every message"),
        "host": Option("localhost", "SMTP server"),
        "port": Option(587, "SMTP port", check=_at_least(1, 65535)),
        "security": Option(
            "starttls", "starttls, ssl (implicit TLS) or none (loopback relays only)", check=_one_of("starttls", "ssl", "none")
        ),
        "username": Option("", "SMTP user; empty means no authentication"),
        "password": Option("", "SMTP password", secret=True),
        "timeout": Option(10, "SMTP connect and command timeout, seconds", check=_at_least(1, 120)),
    },
    "recovery": {
        "link_ttl": Option(7200, "how long the e-mailed «Установите новый пароль» link works, seconds", check=_at_least(300)),
        "code_ttl": Option(600, "how long an SMS code works, seconds", check=_at_least(60, 3600)),
        "code_attempts": Option(5, "wrong codes allowed per flow, new codes included", check=_at_least(1, 20)),
        "codes_per_flow": Option(3, "SMS codes one flow may send (the first and re-sends)", check=_at_least(1, 10)),
        "verified_ttl": Option(900, "time to choose the new password after the code or link, seconds", check=_at_least(60)),
        "wait_hours": Option(2, "hours after which the page says to contact support", check=_at_least(1, 48)),
        "support_url": Option("https://www.mos.ru/feedback/support/", "feedback form for people who got nothing"),
        "support_phone": Option("+7 (495) 539-55-55", "support phone for people who got nothing"),
        "support_centres": Option("центр «Мои документы»", "where to go in person"),
    },
    "contacts": {
        "name": Option("ГБУ «Миграционный центр»", "who helps people who cannot get in"),
        "url": Option("https://mc.mos.ru", "its web site"),
        "address": Option("", "its address; shown on the reset pages when set"),
        "phone": Option("", "its phone; shown on the reset pages when set"),
        "hours": Option("", "its opening hours; shown on the reset pages when set"),
    },
    "staff": {
        "idle_timeout": Option(1800, "staff console session ends after this much inactivity, seconds", check=_at_least(60, 28800)),
        "absolute_timeout": Option(
            36000, "staff console session ends this long after sign-in, seconds", check=_at_least(600, 86400)
        ),
        "cookie_name": Option("idp_staff", "name of the staff console cookie (sent to /admin only)"),
        "totp_issuer": Option("idp", "issuer name shown in staff authenticator apps"),
        "totp_key": Option(
            "", "key that seals staff TOTP secrets; empty: derived from [server] secret_key", secret=True
        ),
        "cabinet_url": Option("https://lkmmc.mos.ru", "the cabinet's address printed on the sign-in slip", check=_http_url),
    },
}

# Values used when no configuration file is given: `make run` on a fresh machine.
DEVELOPMENT_PRESET: dict[str, dict[str, Any]] = {
    "server": {"environment": "development", "secret_key": DEV_SECRET_KEY},
}


def defaults() -> dict[str, dict[str, Any]]:
    return {section: {key: opt.default for key, opt in keys.items()} for section, keys in SCHEMA.items()}


def _merge(target: dict, source: dict, origin: str) -> None:
    if not isinstance(source, dict):
        raise ConfigError(f"{origin}: expected a table of sections")
    for section, values in source.items():
        if section not in SCHEMA:
            raise ConfigError(f"{origin}: unknown section [{section}]")
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: [{section}] must be a table")
        for key, value in values.items():
            if key not in SCHEMA[section]:
                raise ConfigError(f"{origin}: unknown key [{section}] {key}")
            target[section][key] = value


def _from_environment(environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for section, keys in SCHEMA.items():
        for key, opt in keys.items():
            name = f"IDP_{section}_{key}".upper()
            if name not in environ:
                continue
            raw = environ[name]
            if isinstance(opt.default, str):
                value: Any = raw
            else:
                try:
                    value = tomllib.loads(f"v = {raw}")["v"]
                except tomllib.TOMLDecodeError as exc:
                    raise ConfigError(f"{name}: cannot read {raw!r} as a TOML value") from exc
            found.setdefault(section, {})[key] = value
    return found


def _check_types(values: dict[str, dict[str, Any]]) -> None:
    for section, keys in SCHEMA.items():
        for key, opt in keys.items():
            value = values[section][key]
            expected = type(opt.default)
            # bool is a subclass of int: a TOML `true` must not pass as a number.
            if type(value) is not expected:
                raise ConfigError(f"[{section}] {key}: expected {expected.__name__}, got {type(value).__name__}")
            if opt.check and (problem := opt.check(value)):
                raise ConfigError(f"[{section}] {key}: {problem} (got {value!r})")


def _check_production(values: dict[str, dict[str, Any]]) -> None:
    server = values["server"]
    if server["environment"] != "production":
        return
    secret = server["secret_key"]
    if not secret or secret == DEV_SECRET_KEY or len(secret) < 32:
        raise ConfigError(
            "[server] secret_key: production needs a random secret of at least 32 characters "
            "(set it in the file or IDP_SERVER_SECRET_KEY)"
        )
    issuer = urlsplit(server["issuer"])
    if issuer.scheme != "https" and not is_loopback(issuer.hostname or ""):
        raise ConfigError("[server] issuer: production needs https unless the host is loopback")


def _fill_development_secret(values: dict[str, dict[str, Any]]) -> None:
    # A development config file need not invent a secret; production refuses an empty one below.
    if values["server"]["environment"] == "development" and not values["server"]["secret_key"]:
        values["server"]["secret_key"] = DEV_SECRET_KEY


def _check_sms(values: dict[str, dict[str, Any]]) -> None:
    sms = values["sms"]
    if sms["backend"] != "smsaero":
        return
    if "@" not in sms["email"]:
        raise ConfigError("[sms] email: the smsaero backend needs the SMS Aero account e-mail")
    # smsaero-api itself refuses keys outside 16-32 characters, but only on the first send.
    if not 16 <= len(sms["api_key"]) <= 32:
        raise ConfigError("[sms] api_key: the smsaero backend needs the 16-32 character API key (IDP_SMS_API_KEY)")


def _check_mail(values: dict[str, dict[str, Any]]) -> None:
    mail = values["mail"]
    if mail["backend"] == "smtp" and mail["security"] == "none" and not is_loopback(mail["host"]):
        raise ConfigError("[mail] security: plain SMTP is allowed only to a relay on loopback")


def _warn_insecure(values: dict[str, dict[str, Any]]) -> None:
    if not values["captcha"]["enabled"] and values["server"]["environment"] == "production":
        log.warning(
            "!!! [captcha] enabled = false in production: recovery forms are open to automated abuse. "
            "This setting exists for automated testing only. !!!"
        )


def load_config(overrides: dict | None = None, environ: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Return validated settings as ``{section: {key: value}}``; raise ConfigError naming the bad key."""
    environ = dict(os.environ if environ is None else environ)
    values = defaults()
    path = environ.get("IDP_CONFIG")
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"IDP_CONFIG: cannot read {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        _merge(values, data, path)
    else:
        _merge(values, DEVELOPMENT_PRESET, "development preset")
    _merge(values, _from_environment(environ), "environment")
    if overrides:
        _merge(values, overrides, "create_app(config)")
    _check_types(values)
    _fill_development_secret(values)
    _check_production(values)
    _check_sms(values)
    _check_mail(values)
    _warn_insecure(values)
    return values


def to_flask(values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Flatten to Flask keys: [sms] file_path -> SMS_FILE_PATH, plus the keys extensions read."""
    flat = {f"{section}_{key}".upper(): value for section, keys in values.items() for key, value in keys.items()}
    session = values["session"]
    issuer_is_https = values["server"]["issuer"].startswith("https://")
    flat.update(
        SECRET_KEY=values["server"]["secret_key"],
        SQLALCHEMY_DATABASE_URI=values["database"]["url"],
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        SESSION_COOKIE_NAME=session["cookie_name"],
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=issuer_is_https,
        PERMANENT_SESSION_LIFETIME=session["absolute_timeout"],
        RATELIMIT_STORAGE_URI=values["rate_limits"]["storage_uri"],
        RATELIMIT_HEADERS_ENABLED=True,
        WTF_CSRF_TIME_LIMIT=None,
        BABEL_DEFAULT_LOCALE="ru",
        BABEL_DEFAULT_TIMEZONE=values["server"]["timezone"],
        # Form fields and query strings beyond this are refused with 413, not parsed.
        MAX_CONTENT_LENGTH=64 * 1024,
        MAX_FORM_MEMORY_SIZE=64 * 1024,
        MAX_FORM_PARTS=100,
    )
    return flat
