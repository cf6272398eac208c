"""Configuration: one TOML file, one frozen dataclass per section, every key declared once.

Each key is a field of its section's dataclass, declared with ``option(default, doc, secret=, check=)``:
its default, what it means and in which unit, whether it is secret, and the check its value must pass
(as node-oidc-provider documents each default where it declares it). Everything else is derived from
those declarations: ``SCHEMA`` (section → key → ``Option``), the type and range checks, the reading of
environment variables, and the test that keeps ``config.example.toml`` in step.

Sources, later ones win:

1. the declared defaults (safe for production: no secret, production mode);
2. the development preset, only when no file is named by ``IDP_CONFIG``;
3. the TOML file named by ``IDP_CONFIG``;
4. environment variables ``IDP_<SECTION>_<KEY>`` (e.g. ``IDP_SERVER_SECRET_KEY``), so secrets
   need not sit in the file;
5. the ``config`` mapping given to ``create_app`` (tests).

``load_config`` returns a ``Settings``; bad input raises ``ConfigError`` naming the key. ``create_app``
loads it once and hands its sections to whoever needs them; only the keys Flask and its extensions read
go into ``app.config`` (``to_flask``).

May import: the standard library, ``limits`` (rate syntax), ``idp.services.net`` (a pure host check).
Must not import: Flask, the app, models, views.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import tomllib
import typing
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from typing import Any
from urllib.parse import urlsplit

from .services.net import IPV6_PREFIX
from .services.net import is_loopback
from .services.outbound import parse_allowed_host

log = logging.getLogger(__name__)

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"


class ConfigError(Exception):
    """A configuration key is unknown or has a bad value; the message names the key."""


@dataclass(frozen=True)
class Option:
    """One key as declared: its TOML default, its meaning and unit, its secrecy and its check."""

    default: Any
    doc: str
    secret: bool = False
    check: Callable[[Any], str | None] | None = None


def option(
    default: Any, doc: str, *, secret: bool = False, check: Callable[[Any], str | None] | None = None
) -> Any:
    """A section field. A TOML list default becomes a tuple in the (frozen) settings."""
    metadata = {"option": Option(default, doc, secret, check)}
    if isinstance(default, list):
        frozen = tuple(default)
        return field(default_factory=lambda: frozen, metadata=metadata)
    return field(default=default, metadata=metadata)


# -- checks: each returns what is wrong, or None --------------------------------------------------------


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
    if not value or not all(
        isinstance(code, str) and code.isdigit() and 1 <= len(code) <= 3 for code in value
    ):
        return 'must be a non-empty list of calling codes such as ["7"]'
    return None


def _networks(value: list) -> str | None:
    for entry in value:
        try:
            ipaddress.ip_network(entry, strict=False)
        except (TypeError, ValueError):
            return f'must list addresses or networks such as "127.0.0.1" or "10.0.0.0/8" (got {entry!r})'
    return None


def _token(value: str) -> str | None:
    return None if not value or len(value) >= 32 else "must be empty or at least 32 characters"


def _loopback_hosts(value: list) -> str | None:
    for entry in value:
        try:
            parse_allowed_host(entry)
        except ValueError as error:
            return f'must list loopback hosts such as "127.0.0.1:8080": {error}'
    return None


# -- the sections ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSettings:
    """[server]: what the provider is called and how it runs."""

    environment: str = option(
        "production",
        "development or production; production refuses insecure values",
        check=_one_of("development", "production"),
    )
    issuer: str = option(
        "http://127.0.0.1:5000",
        "issuer identifier and public base URL; https outside loopback",
        check=_http_url,
    )
    secret_key: str = option("", "signs session cookies and CSRF tokens; at least 32 characters", secret=True)
    proxy_count: int = option(0, "reverse proxies in front that set X-Forwarded-*", check=_at_least(0, 5))
    timezone: str = option("Europe/Moscow", "time zone for calendar days", check=_timezone)
    # `idp serve --production` (granian, idp/serving.py).
    workers: int = option(
        0,
        "worker processes; 0 = one per CPU core. A sign-in is ~0.3 s of CPU in bcrypt, so processes "
        "beyond the cores only queue for CPU (the usual 2 x cores + 1 is for workers that mostly wait)",
        check=_at_least(0, 64),
    )
    threads: int = option(
        4,
        "threads per worker: requests one process serves at once, so that waits on the database, "
        "Redis, the SMS gateway or SMTP do not hold up other requests",
        check=_at_least(1, 32),
    )
    graceful_timeout: int = option(
        30,
        "on stop or reload, how long workers may finish the requests in flight, seconds",
        check=_at_least(1, 300),
    )

    @property
    def is_https(self) -> bool:
        return self.issuer.startswith("https://")

    @property
    def key(self) -> bytes:
        """The secret key as bytes, for HMACs that must not be recomputable without it."""
        return self.secret_key.encode()


@dataclass(frozen=True)
class DatabaseSettings:
    """[database]"""

    url: str = option(
        "sqlite:///idp.sqlite3",
        "SQLAlchemy URL; relative SQLite paths live in instance/",
        secret=True,
    )
    connect_timeout: int = option(
        3,
        "PostgreSQL: how long opening a connection may take before the request answers 503, seconds",
        check=_at_least(1, 60),
    )


@dataclass(frozen=True)
class OAuthSettings:
    """[oauth]: token lifetimes. A client's own lifetimes may only be shorter."""

    code_ttl: int = option(60, "authorization code lifetime, seconds", check=_at_least(10, 600))
    access_token_ttl: int = option(600, "access token lifetime, seconds", check=_at_least(60, 86400))
    id_token_ttl: int = option(3600, "ID token lifetime, seconds", check=_at_least(60, 86400))
    refresh_token_ttl: int = option(
        2592000,
        "refresh token lifetime, seconds (a rotation keeps the family's end)",
        check=_at_least(300),
    )
    interaction_ttl: int = option(
        1800,
        "how long a pending authorization waits for the sign-in, seconds",
        check=_at_least(60, 86400),
    )
    refresh_grace: int = option(
        30,
        "after a refresh token is rotated, how long the same client may present it again and get a "
        "fresh pair (its answer was lost), seconds; 0 = never (RFC 9700 §4.14.2)",
        check=_at_least(0, 300),
    )
    client_cache_ttl: int = option(
        5,
        "how long each process keeps a client it read (and the CORS origins), seconds; a change made in "
        "the process (console, CLI, registration) drops it at once, one made elsewhere is seen within "
        "this; 0 = read every time",
        check=_at_least(0, 60),
    )


@dataclass(frozen=True)
class KeysSettings:
    """[keys]: publishing and rotating the signing keys."""

    jwks_max_age: int = option(
        300, "Cache-Control max-age of JWKS and discovery, seconds", check=_at_least(0, 86400)
    )
    publish_ahead: int = option(
        900, "how long a rotated-in key is published before it signs, seconds", check=_at_least(0)
    )
    cache_ttl: int = option(
        30,
        "how long each process keeps the signing keys it loaded before reading them again, seconds; "
        "a rotation on any host is published everywhere within it",
        check=_at_least(1, 300),
    )


def _audience(value: str) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
        return "must be empty or an absolute http(s) URI without a fragment"
    return None


@dataclass(frozen=True)
class AccessTokensSettings:
    """[access_tokens]: JWT access tokens (RFC 9068) of the clients registered for them."""

    audience: str = option(
        "",
        "aud of a JWT access token requested without a resource indicator (RFC 8707); empty = the issuer",
        check=_audience,
    )


@dataclass(frozen=True)
class ClientAuthSettings:
    """[client_auth]: client assertions of private_key_jwt and client_secret_jwt (RFC 7523, OIDC Core §9)."""

    assertion_max_lifetime: int = option(
        3600,
        "longest a client assertion may still be valid when it arrives (exp - now), seconds",
        check=_at_least(30, 86400),
    )
    jwks_cache_ttl: int = option(
        300,
        "how long a client's JWK Set fetched from its jwks_uri is kept, seconds",
        check=_at_least(0, 86400),
    )


@dataclass(frozen=True)
class ParSettings:
    """[par]: pushed authorization requests (RFC 9126)."""

    enabled: bool = option(True, "serve /par and advertise it in discovery")
    request_uri_ttl: int = option(
        60, "how long a pushed request's request_uri may be used, seconds", check=_at_least(5, 600)
    )
    required: bool = option(
        False, "every client must push its authorization requests (require_pushed_authorization_requests)"
    )


@dataclass(frozen=True)
class DpopSettings:
    """[dpop]: sender-constrained tokens with DPoP (RFC 9449)."""

    enabled: bool = option(True, "accept DPoP proofs and advertise dpop_signing_alg_values_supported")
    iat_window: int = option(
        60,
        "how far a proof's iat may be from the provider's clock, either way, seconds",
        check=_at_least(5, 600),
    )
    require_nonce: bool = option(
        False, "every proof must carry a DPoP-Nonce the provider issued (RFC 9449 §8)"
    )
    nonce_lifetime: int = option(
        300, "how long a DPoP-Nonce is accepted after it was issued, seconds", check=_at_least(30, 3600)
    )


@dataclass(frozen=True)
class SessionSettings:
    """[session]: the migrants' SSO session."""

    idle_timeout: int = option(
        1800, "SSO session ends after this much inactivity, seconds", check=_at_least(60)
    )
    absolute_timeout: int = option(
        43200, "SSO session ends this long after sign-in, seconds", check=_at_least(300)
    )
    cookie_name: str = option(
        "idp_session", 'name of the browser session cookie; "__Host-" is put in front of it on https'
    )


@dataclass(frozen=True)
class LogoutSettings:
    """[logout]: back-channel logout delivery (through [outbox]; each attempt under [outbound])."""

    backchannel_retries: int = option(
        9,
        "back-channel logout: further attempts after a failed POST, spaced by the [outbox] backoff",
        check=_at_least(0, 30),
    )


@dataclass(frozen=True)
class OutboxSettings:
    """[outbox]: delivery of the durable outbox (``services.outbox``) and the sweep of timed-out sessions,
    by a background thread of each server process (``idp.background``)."""

    enabled: bool = option(
        True,
        "server processes (idp serve) deliver the outbox and sweep timed-out sessions; false leaves it "
        "to other hosts",
    )
    poll_interval: int = option(
        5,
        "how often a server process looks for due messages written by other processes, seconds (its own "
        "are sent at once)",
        check=_at_least(1, 300),
    )
    concurrency: int = option(
        8,
        "deliveries one process makes at once; a slow receiver holds one for at most its attempt's deadline",
        check=_at_least(1, 64),
    )
    lease: int = option(
        60,
        "how long a message being delivered is reserved for its process, seconds; a process that dies "
        "mid-delivery delays it this long. Longer than any attempt",
        check=_at_least(10, 3600),
    )
    max_attempts: int = option(
        10,
        "attempts before a message (of a kind that sets no count of its own) is failed",
        check=_at_least(1, 50),
    )
    retry_delay: int = option(
        2,
        "wait before the first retry, seconds; doubled after each further failure",
        check=_at_least(1, 3600),
    )
    max_retry_delay: int = option(
        600, "longest wait between two attempts, seconds", check=_at_least(1, 86400)
    )
    sweep_interval: int = option(
        60,
        "how often timed-out SSO sessions are ended (tokens revoked, relying parties told), seconds",
        check=_at_least(5, 3600),
    )


@dataclass(frozen=True)
class OutboundSettings:
    """[outbound]: requests the provider itself makes to URLs clients registered (services.outbound_http)."""

    deadline: int = option(
        5, "total time of one attempt (resolve, connect, TLS, send, receive), seconds", check=_at_least(1, 60)
    )
    max_response_bytes: int = option(
        65536,
        "longest response body read; a longer one fails the attempt, bytes",
        check=_at_least(1024, 10485760),
    )
    http_allowed_hosts: tuple[str, ...] = option(
        [],
        "loopback hosts (host or host:port) that may be called over http outside development",
        check=_loopback_hosts,
    )


@dataclass(frozen=True)
class PasswordsSettings:
    """[passwords]: hashing, temporary passwords and the new-password policy."""

    bcrypt_rounds: int = option(
        12, "bcrypt cost factor; old hashes are upgraded at sign-in", check=_at_least(4, 31)
    )
    temporary_ttl: int = option(259200, "temporary password lifetime, seconds", check=_at_least(300))
    min_length: int = option(8, "shortest accepted new password, characters", check=_at_least(8, 64))


@dataclass(frozen=True)
class LoginSettings:
    """[login]: escalation against guessing (``services.signin_throttle``: captcha, then growing waits),
    the hard lock at NIST's ceiling, and the sign-in rate limit; migrants and staff alike."""

    max_failures: int = option(
        100,
        "failed sign-ins in a row before the account is locked (NIST SP 800-63B-4 §3.2.2: at most 100)",
        check=_at_least(3, 100),
    )
    lockout: int = option(86400, "how long such a lock lasts, seconds", check=_at_least(60))
    rate_limit: str = option("30/minute", "sign-in POSTs allowed per client IP", check=_rate)
    captcha_after: int = option(
        3, "failed sign-ins to one login after which its sign-in needs the captcha", check=_at_least(1, 50)
    )
    ip_captcha_after: int = option(
        10, "failed sign-ins from one IP after which its sign-ins need the captcha", check=_at_least(1, 1000)
    )
    delay_after: int = option(
        10,
        "failed sign-ins from one IP (or for one login from one IP) after which each makes it wait",
        check=_at_least(2, 1000),
    )
    max_delay: int = option(900, "longest such wait, seconds", check=_at_least(1, 86400))
    failure_window: int = option(
        3600, "how long failures count for the captcha and the waits, seconds", check=_at_least(60, 604800)
    )
    totp_failures: int = option(
        5,
        "wrong authenticator codes after a right staff password before the staff lock",
        check=_at_least(1, 20),
    )


@dataclass(frozen=True)
class RateLimitsSettings:
    """[rate_limits]"""

    storage_uri: str = option(
        "memory://",
        "where counters live: memory:// (one process) or redis://host:port/db",
        secret=True,
    )


@dataclass(frozen=True)
class SmsSettings:
    """[sms]: how SMS leave the provider."""

    backend: str = option(
        "file",
        "how SMS leave: file (JSON lines outbox) or smsaero (SMS Aero gateway)",
        check=_one_of("file", "smsaero"),
    )
    file_path: str = option("outbox/sms.jsonl", "outbox of the file backend; relative to instance/")
    email: str = option("", "SMS Aero account e-mail (smsaero backend)")
    api_key: str = option("", "SMS Aero API key (smsaero backend)", secret=True)
    signature: str = option("SMS Aero", "sender name registered with SMS Aero")
    gate: str = option(
        "@gate.smsaero.ru/v2/",
        "the single https gateway used; one gate leaves the client no plain-http fallback",
        check=_gate,
    )
    timeout: int = option(10, "gateway timeout, seconds", check=_at_least(3, 60))
    allowed_country_codes: tuple[str, ...] = option(
        ["7"], "country calling codes SMS may go to", check=_country_codes
    )


@dataclass(frozen=True)
class CaptchaSettings:
    """[captcha]"""

    enabled: bool = option(
        True, "captcha (image and spoken) on the reset and recovery forms; false only for automated tests"
    )
    ttl: int = option(300, "how long a captcha challenge can be answered, seconds", check=_at_least(30, 3600))
    image_rate_limit: str = option(
        "30/minute", "captcha images and new challenges per client IP, each", check=_rate
    )
    audio_rate_limit: str = option("10/minute", "spoken captchas (espeak-ng runs) per client IP", check=_rate)


@dataclass(frozen=True)
class LimitsSettings:
    """[limits]: what the password reset and the access recovery forms allow per calendar day
    ([server] timezone), counted together, and the SMS they may send (``services.selfservice.limits``)."""

    daily_limit: int = option(
        3,
        "reset and recovery requests per identifier (patent number, phone, e-mail, SNILS) per calendar day",
        check=_at_least(1, 100),
    )
    ip_daily_limit: int = option(
        30, "reset and recovery requests per client IP per calendar day", check=_at_least(1)
    )
    phone_daily_limit: int = option(
        3, "reset and recovery SMS per phone number per calendar day", check=_at_least(1)
    )
    sms_daily_budget: int = option(
        2000,
        "reset and recovery SMS for the whole service per calendar day; then sending stops and an "
        "alert is logged",
        check=_at_least(1),
    )
    form_rate_limit: str = option(
        "10/minute;60/hour",
        "POSTs of the anonymous reset and recovery forms per client IP, checked before the captcha",
        check=_rate,
    )
    pages_in_flight: int = option(
        3,
        "page requests one client IP may have in flight at once in one worker process; more are "
        "answered 429 at once (idp.admission); 0 turns the cap off",
        check=_at_least(0, 32),
    )
    pages_per_second: int = option(
        20,
        "page requests one client IP may start per second in one worker process, on average, with "
        "bursts of twice as many; more are answered 429 at once (idp.admission); 0 turns the rate off",
        check=_at_least(0, 1000),
    )
    ipv6_prefix: int = option(
        IPV6_PREFIX,
        "prefix length, in bits, by which every per-address limit counts an IPv6 client: its addresses "
        "in one network of that length share one count (services.net.rate_key)",
        check=_at_least(32, 128),
    )


@dataclass(frozen=True)
class MailSettings:
    """[mail]: how e-mail leaves the provider."""

    backend: str = option(
        "file", "how e-mail leaves: file (JSON lines outbox) or smtp", check=_one_of("file", "smtp")
    )
    file_path: str = option("outbox/mail.jsonl", "outbox of the file backend; relative to instance/")
    from_address: str = option("no-reply@localhost", "the From: address of every message")
    host: str = option("localhost", "SMTP server")
    port: int = option(587, "SMTP port", check=_at_least(1, 65535))
    security: str = option(
        "starttls",
        "starttls, ssl (implicit TLS) or none (loopback relays only)",
        check=_one_of("starttls", "ssl", "none"),
    )
    username: str = option("", "SMTP user; empty means no authentication")
    password: str = option("", "SMTP password", secret=True)
    timeout: int = option(10, "SMTP connect and command timeout, seconds", check=_at_least(1, 120))


@dataclass(frozen=True)
class RecoverySettings:
    """[recovery]: the access recovery flow (``services.selfservice.recovery``)."""

    link_ttl: int = option(
        7200,
        "how long the e-mailed «Установите новый пароль» link works, seconds",
        check=_at_least(300),
    )
    code_ttl: int = option(600, "how long an SMS code works, seconds", check=_at_least(60, 3600))
    code_attempts: int = option(5, "wrong codes allowed per flow, new codes included", check=_at_least(1, 20))
    codes_per_flow: int = option(
        3, "SMS codes one flow may send (the first and re-sends)", check=_at_least(1, 10)
    )
    verified_ttl: int = option(
        900, "time to choose the new password after the code or link, seconds", check=_at_least(60)
    )
    wait_hours: int = option(2, "hours after which the page says to contact support", check=_at_least(1, 48))
    support_url: str = option(
        "https://www.mos.ru/feedback/support/", "feedback form for people who got nothing"
    )
    support_phone: str = option("+7 (495) 539-55-55", "support phone for people who got nothing")
    support_centres: str = option("центр «Мои документы»", "where to go in person")


@dataclass(frozen=True)
class ContactsSettings:
    """[contacts]: who helps people who cannot get in."""

    name: str = option("ГБУ «Миграционный центр»", "who helps people who cannot get in")
    url: str = option("https://mc.mos.ru", "its web site")
    address: str = option("", "its address; shown on the reset pages when set")
    phone: str = option("", "its phone; shown on the reset pages when set")
    hours: str = option("", "its opening hours; shown on the reset pages when set")

    @property
    def lines(self) -> list[str]:
        """The address, phone and hours that are set, in that order."""
        return [line for line in (self.address, self.phone, self.hours) if line]


@dataclass(frozen=True)
class StaffSettings:
    """[staff]: the staff console at /admin."""

    idle_timeout: int = option(
        1800,
        "staff console session ends after this much inactivity, seconds",
        check=_at_least(60, 28800),
    )
    absolute_timeout: int = option(
        36000,
        "staff console session ends this long after sign-in, seconds",
        check=_at_least(600, 86400),
    )
    cookie_name: str = option("idp_staff", "name of the staff console cookie (sent to /admin only)")
    totp_issuer: str = option("idp", "issuer name shown in staff authenticator apps")
    totp_key: str = option(
        "", "key that seals staff TOTP secrets; empty: derived from [server] secret_key", secret=True
    )
    cabinet_url: str = option(
        "https://lkmmc.mos.ru", "the cabinet's address printed on the sign-in slip", check=_http_url
    )


@dataclass(frozen=True)
class AccountSettings:
    """[account]: the migrant's own page «Мой профиль» (/account)."""

    step_up_age: int = option(
        300,
        "ending sessions or taking back access asks for the password again when it was last typed "
        "longer ago than this, seconds",
        check=_at_least(60, 86400),
    )


@dataclass(frozen=True)
class AuditSettings:
    """[audit]: the audit log (read in the console at /admin/audit)."""

    retention_days: int = option(
        1095,
        "`idp purge` deletes audit events older than this many days; 0 keeps them for ever",
        check=_at_least(0, 36500),
    )


@dataclass(frozen=True)
class MetricsSettings:
    """[metrics]: who may read GET /metrics (Prometheus text format)."""

    allow_from: tuple[str, ...] = option(
        ["127.0.0.1/8", "::1"],
        "client addresses or networks that may read /metrics without a token",
        check=_networks,
    )
    token: str = option(
        "",
        "bearer token that lets any address read /metrics; empty: none; at least 32 characters",
        secret=True,
        check=_token,
    )


@dataclass(frozen=True)
class LoggingSettings:
    """[logging]: what the provider's log lines look like (on standard error)."""

    format: str = option(
        "text",
        "text (one readable line) or json (one JSON object per line with time, level, logger, message "
        "and request_id, for a log collector); secrets are masked in both (idp/logs.py)",
        check=_one_of("text", "json"),
    )
    level: str = option(
        "INFO",
        "lowest level logged; authlib and smsaero-api never below INFO, SQLAlchemy never below WARNING "
        "(their lower levels print tokens, keys and statement parameters)",
        check=_one_of("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    )


@dataclass(frozen=True)
class SubjectsSettings:
    """[subjects]: pairwise subject identifiers (OIDC Core §8.1) for clients registered with
    subject_type pairwise."""

    pairwise_key: str = option(
        "",
        "HMAC key of pairwise subs; empty: derived from [server] secret_key; changing either changes "
        "every pairwise sub",
        secret=True,
    )


@dataclass(frozen=True)
class DeviceSettings:
    """[device]: the device authorization grant (RFC 8628) — /device/authorize and the page /device."""

    code_ttl: int = option(
        600, "how long a device_code and its user_code are valid, seconds", check=_at_least(60, 3600)
    )
    interval: int = option(
        5,
        "minimum time between two polls of the token endpoint, seconds (RFC 8628 §3.2)",
        check=_at_least(1, 60),
    )
    rate_limit: str = option(
        "10/minute", "user codes a client IP may submit at /device (guessing a code)", check=_rate
    )


@dataclass(frozen=True)
class Settings:
    """Every section, validated. Built once by ``create_app``; its sections are handed down."""

    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    oauth: OAuthSettings = field(default_factory=OAuthSettings)
    keys: KeysSettings = field(default_factory=KeysSettings)
    access_tokens: AccessTokensSettings = field(default_factory=AccessTokensSettings)
    client_auth: ClientAuthSettings = field(default_factory=ClientAuthSettings)
    par: ParSettings = field(default_factory=ParSettings)
    dpop: DpopSettings = field(default_factory=DpopSettings)
    session: SessionSettings = field(default_factory=SessionSettings)
    logout: LogoutSettings = field(default_factory=LogoutSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    passwords: PasswordsSettings = field(default_factory=PasswordsSettings)
    login: LoginSettings = field(default_factory=LoginSettings)
    rate_limits: RateLimitsSettings = field(default_factory=RateLimitsSettings)
    sms: SmsSettings = field(default_factory=SmsSettings)
    captcha: CaptchaSettings = field(default_factory=CaptchaSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    recovery: RecoverySettings = field(default_factory=RecoverySettings)
    contacts: ContactsSettings = field(default_factory=ContactsSettings)
    staff: StaffSettings = field(default_factory=StaffSettings)
    account: AccountSettings = field(default_factory=AccountSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    subjects: SubjectsSettings = field(default_factory=SubjectsSettings)
    device: DeviceSettings = field(default_factory=DeviceSettings)


# Derived from the declarations above: section name -> its dataclass, and section -> key -> Option.
SECTIONS: dict[str, type] = dict(typing.get_type_hints(Settings))
SCHEMA: dict[str, dict[str, Option]] = {
    section: {f.name: f.metadata["option"] for f in fields(cls)} for section, cls in SECTIONS.items()
}
# Sections renamed since an earlier release: still read, with a warning naming the new one.
MOVED = {"reset": "limits"}
# Keys removed since an earlier release: still accepted, ignored with a warning saying why.
RETIRED = {
    ("limits", "response_floor_ms"): "answers no longer wait: the reset SMS goes through the outbox "
    "(README, Upgrading)",
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
    seen: set[tuple[str, str]] = set()
    for given, values in source.items():
        section = _current_name(given, origin)
        if section not in SCHEMA:
            raise ConfigError(f"{origin}: unknown section [{given}]")
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: [{given}] must be a table")
        for key, value in values.items():
            if (section, key) in RETIRED:
                log.warning("%s: [%s] %s is no longer used: %s", origin, given, key, RETIRED[section, key])
                continue
            if key not in SCHEMA[section]:
                raise ConfigError(f"{origin}: unknown key [{given}] {key}")
            if (section, key) in seen:
                raise ConfigError(f"{origin}: [{section}] {key} is given twice (also as [{given}] {key})")
            seen.add((section, key))
            target[section][key] = value


def _current_name(section: str, origin: str) -> str:
    if section not in MOVED:
        return section
    log.warning(
        '%s: [%s] is now called [%s]; rename it (README, "Upgrading")', origin, section, MOVED[section]
    )
    return MOVED[section]


def _from_environment(environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    names = {section: section for section in SCHEMA} | MOVED
    for given, section in names.items():
        for key, opt in SCHEMA[section].items():
            name = f"IDP_{given}_{key}".upper()
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
            found.setdefault(given, {})[key] = value
    return found


def _check_types(values: dict[str, dict[str, Any]]) -> None:
    for section, keys in SCHEMA.items():
        for key, opt in keys.items():
            value = values[section][key]
            expected = type(opt.default)
            # bool is a subclass of int: a TOML `true` must not pass as a number.
            if type(value) is not expected:
                raise ConfigError(
                    f"[{section}] {key}: expected {expected.__name__}, got {type(value).__name__}"
                )
            if opt.check and (problem := opt.check(value)):
                raise ConfigError(f"[{section}] {key}: {problem} (got {value!r})")


def _check_production(settings: Settings) -> None:
    server = settings.server
    if server.environment != "production":
        return
    secret = server.secret_key
    if not secret or secret == DEV_SECRET_KEY or len(secret) < 32:
        raise ConfigError(
            "[server] secret_key: production needs a random secret of at least 32 characters "
            "(set it in the file or IDP_SERVER_SECRET_KEY)"
        )
    issuer = urlsplit(server.issuer)
    if issuer.scheme != "https" and not is_loopback(issuer.hostname or ""):
        raise ConfigError("[server] issuer: production needs https unless the host is loopback")


def _fill_development_secret(values: dict[str, dict[str, Any]]) -> None:
    # A development config file need not invent a secret; production refuses an empty one below.
    if values["server"]["environment"] == "development" and not values["server"]["secret_key"]:
        values["server"]["secret_key"] = DEV_SECRET_KEY


def _check_sms(sms: SmsSettings) -> None:
    if sms.backend != "smsaero":
        return
    if "@" not in sms.email:
        raise ConfigError("[sms] email: the smsaero backend needs the SMS Aero account e-mail")
    # smsaero-api itself refuses keys outside 16-32 characters, but only on the first send.
    if not 16 <= len(sms.api_key) <= 32:
        raise ConfigError(
            "[sms] api_key: the smsaero backend needs the 16-32 character API key (IDP_SMS_API_KEY)"
        )


def _check_mail(mail: MailSettings) -> None:
    if mail.backend == "smtp" and mail.security == "none" and not is_loopback(mail.host):
        raise ConfigError("[mail] security: plain SMTP is allowed only to a relay on loopback")


def _check_outbox(settings: Settings) -> None:
    # A lease that runs out while its attempt still runs would let a second process send the message too.
    longest = max(settings.outbound.deadline, settings.sms.timeout, settings.mail.timeout)
    if settings.outbox.lease <= 2 * longest:
        raise ConfigError(
            f"[outbox] lease: must be longer than twice the longest attempt ({longest} s: [outbound] "
            f"deadline, [sms] timeout, [mail] timeout)"
        )
    if settings.outbox.max_retry_delay < settings.outbox.retry_delay:
        raise ConfigError("[outbox] max_retry_delay: must be at least [outbox] retry_delay")


def _warn_insecure(settings: Settings) -> None:
    if not settings.captcha.enabled and settings.server.environment == "production":
        log.warning(
            "!!! [captcha] enabled = false in production: recovery forms are open to automated abuse. "
            "This setting exists for automated testing only. !!!"
        )


def _build(values: dict[str, dict[str, Any]]) -> Settings:
    def section(name: str) -> Any:
        raw = values[name]
        return SECTIONS[name](**{key: tuple(v) if isinstance(v, list) else v for key, v in raw.items()})

    return Settings(**{name: section(name) for name in SECTIONS})


def load_config(overrides: dict | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Return the validated settings; raise ConfigError naming the bad key."""
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
    settings = _build(values)
    _check_production(settings)
    _check_sms(settings.sms)
    _check_mail(settings.mail)
    _check_outbox(settings)
    _warn_insecure(settings)
    return settings


def as_dict(settings: Settings) -> dict[str, dict[str, Any]]:
    """The settings as ``{section: {key: value}}`` with TOML types (lists, not tuples)."""
    return {
        name: {key: list(v) if isinstance(v, tuple) else v for key, v in dataclasses.asdict(section).items()}
        for name, section in ((name, getattr(settings, name)) for name in SECTIONS)
    }


def in_instance(settings: Settings, instance_path: str) -> Settings:
    """The settings with the file outboxes' relative paths made relative to ``instance_path``."""
    return dataclasses.replace(
        settings,
        sms=dataclasses.replace(settings.sms, file_path=os.path.join(instance_path, settings.sms.file_path)),
        mail=dataclasses.replace(
            settings.mail, file_path=os.path.join(instance_path, settings.mail.file_path)
        ),
    )


# Redis: how long connecting, and then each command, may take before the request answers 503, seconds.
REDIS_TIMEOUT = 2


def engine_options(database: DatabaseSettings) -> dict[str, Any]:
    """SQLAlchemy's engine options. No ``pool_pre_ping``: a round trip before every checkout costs each
    request time (issue 12). A connection that died (the server restarted) fails its first statement
    instead; SQLAlchemy recognises the disconnect and invalidates the whole pool, that request answers
    503 (idp/views/errors.py), and the next ones open fresh connections.

    ``hide_parameters``: an error's message (logged with its traceback) shows the statement but not its
    values, which may be a SNILS, a login or a phone number (idp/logs.py)."""
    if database.url.startswith("postgresql"):
        # A stopped server refuses at once; an unreachable one would hang the request for minutes.
        return {"connect_args": {"connect_timeout": database.connect_timeout}, "hide_parameters": True}
    return {"hide_parameters": True}


def rate_limit_storage_options(storage_uri: str) -> dict[str, Any]:
    """Options of the ``limits`` storage. Every storage error is raised as ``limits.errors.StorageError``,
    which the app answers with 503 (fail closed: a limit that cannot be counted is not skipped)."""
    options: dict[str, Any] = {"wrap_exceptions": True}
    if storage_uri.startswith(("redis://", "rediss://")):
        options.update(socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
    return options


def to_flask(settings: Settings) -> dict[str, Any]:
    """The keys Flask and its extensions read from ``app.config``, and nothing else."""
    return {
        "SECRET_KEY": settings.server.secret_key,
        "SQLALCHEMY_DATABASE_URI": settings.database.url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(settings.database),
        # On https the cookie is "__Host-"-prefixed (RFC 6265bis §4.1.3.2): the browser then keeps it only
        # if it is Secure, has Path=/ and no Domain, so no sibling host or http page can set or shadow it.
        "SESSION_COOKIE_NAME": ("__Host-" if settings.server.is_https else "") + settings.session.cookie_name,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": settings.server.is_https,
        "PERMANENT_SESSION_LIFETIME": settings.session.absolute_timeout,
        "RATELIMIT_STORAGE_URI": settings.rate_limits.storage_uri,
        "RATELIMIT_STORAGE_OPTIONS": rate_limit_storage_options(settings.rate_limits.storage_uri),
        # Only a refusal says when to come back (idp.lean.retry_after_on_refusal).
        "RATELIMIT_HEADERS_ENABLED": False,
        "WTF_CSRF_TIME_LIMIT": None,
        # Its Referer check cannot pass under our Referrer-Policy: no-referrer; idp/csrf.py checks
        # Origin / Sec-Fetch-Site instead.
        "WTF_CSRF_SSL_STRICT": False,
        "BABEL_DEFAULT_LOCALE": "ru",
        "BABEL_DEFAULT_TIMEZONE": settings.server.timezone,
        # Form fields and query strings beyond this are refused with 413, not parsed.
        "MAX_CONTENT_LENGTH": 64 * 1024,
        "MAX_FORM_MEMORY_SIZE": 64 * 1024,
        "MAX_FORM_PARTS": 100,
    }
