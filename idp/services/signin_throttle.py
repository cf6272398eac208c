"""Escalation instead of a lock: how sign-in answers someone who keeps guessing (NIST SP 800-63B-4
§3.2.2, OWASP ASVS 5.0 6.3.1), for migrants and staff alike.

A lock that anyone can trigger by typing wrong passwords is a denial of service against the owner (issue
10: ten wrong passwords locked any account, the only admin's included, and the attacker repeated). So the
cost of guessing grows with the guessing, and the owner keeps a way in:

* **per login** (counted whether or not the login exists, so the answer tells nothing about accounts):
  after ``[login] captcha_after`` failures in ``[login] failure_window`` every sign-in to that login
  needs the captcha solved; nothing else, since anything more per login is what an attacker would use
  to keep the owner out;
* **per client IP** (counted by ``net.rate_key``: an IPv6 client by its ``[limits] ipv6_prefix``
  network, so rotating through the addresses of one /64 counts as one address): after ``[login]
  ip_captcha_after`` failures every sign-in from it needs the captcha; after ``[login] delay_after``
  failures each further one makes that IP wait, 1 s doubling per failure up to ``[login] max_delay`` —
  the same for one login from that IP after ``delay_after`` failures on it. A waiting request is
  refused at once with "try again in T" (never a ``sleep``, which would hold the worker), before any
  bcrypt check or database write;
* **per account**, the hard lock of ``credentials.count_failure`` only after ``[login] max_failures``
  (100, NIST's ceiling) failures in a row; a redeemed SMS reset and an operator's re-issue clear it.

The right password with a solved captcha signs in whatever the count, unless the request itself comes
from an address (or address and login) that must wait.

The counts live in the rate limiter's storage (Redis in production, ``[rate_limits] storage_uri``), so
every worker and host sees the same, with an expiry of ``failure_window``; waits are stored as the
Unix time they end, by the app's clock. Pure logic: the caller passes the storage. On one Redis the
counters a sign-in reads (five) go in one command (``counts``), and so do the three it clears, only when
one of them is set (``clear``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol
from typing import cast

from limits.errors import StorageError
from limits.storage import RedisClusterStorage
from limits.storage import RedisStorage
from redis import Redis

from ..config import LoginSettings
from .net import rate_key

# A key must stay short whatever was typed as a login.
MAX_KEY_PART = 128


class Storage(Protocol):
    """What ``limits`` storages offer (memory, Redis): a counter with an expiry."""

    def incr(self, key: str, expiry: int, amount: int = 1) -> int: ...

    def get(self, key: str) -> int: ...

    def clear(self, key: str) -> None: ...


@dataclass(frozen=True)
class Verdict:
    """What a sign-in attempt must satisfy before its password is checked."""

    captcha: bool
    # 0, or the Unix time before which the attempt is refused unchecked.
    wait_until: int = 0
    # Whether the login had anything to forget when the owner gets in (its failures, this address's
    # failures and wait for it): without, a successful sign-in skips the DEL (issue 12).
    login_counted: bool = True

    def wait_seconds(self, now: int) -> int:
        return max(0, self.wait_until - now)


class Throttle:
    """The counts of one kind of sign-in (``realm``: "account" for migrants, "staff" for the console).
    ``ip`` is the client's address as the request has it; it is counted by its ``rate_key`` with
    ``ipv6_prefix`` ([limits] ipv6_prefix)."""

    def __init__(
        self, storage: Storage, settings: LoginSettings, realm: str = "account", *, ipv6_prefix: int
    ):
        self.storage, self.settings, self.realm = storage, settings, realm
        self.ipv6_prefix = ipv6_prefix

    def _key(self, what: str, *parts: str) -> str:
        return ":".join(["idp-signin", self.realm, what, *(part[:MAX_KEY_PART] for part in parts)])

    def _address(self, ip: str) -> str:
        return rate_key(ip, self.ipv6_prefix)

    def _count(self, key: str) -> int:
        return int(self.storage.get(key) or 0)

    def check(self, *, ip: str, login: str, now: int) -> Verdict:
        """Before anything costly: must this attempt wait, or solve the captcha?"""
        s, ip = self.settings, self._address(ip)
        wait_ip, wait_pair, failed_login, failed_ip, failed_pair = counts(
            self.storage,
            [
                self._key("wait", ip),
                self._key("wait-login", ip, login),
                self._key("fail-login", login),
                self._key("fail-ip", ip),
                self._key("fail-pair", ip, login),
            ],
        )
        wait = max(wait_ip, wait_pair)
        if wait > now:
            return Verdict(captcha=True, wait_until=wait)
        return Verdict(
            captcha=failed_login >= s.captcha_after or failed_ip >= s.ip_captcha_after,
            login_counted=bool(wait_pair or failed_login or failed_pair),
        )

    def captcha_for_ip(self, ip: str) -> bool:
        """Whether a sign-in page shown to ``ip`` should carry the captcha from the start."""
        return self._count(self._key("fail-ip", self._address(ip))) >= self.settings.ip_captcha_after

    def failed(self, *, ip: str, login: str, now: int) -> None:
        """Count a wrong password (or an unknown login); start or lengthen a wait when due."""
        s, ip = self.settings, self._address(ip)
        window = s.failure_window
        self.storage.incr(self._key("fail-login", login), window)
        for count_key, wait_key in (
            (self._key("fail-ip", ip), self._key("wait", ip)),
            (self._key("fail-pair", ip, login), self._key("wait-login", ip, login)),
        ):
            count = self.storage.incr(count_key, window)
            if count >= s.delay_after:
                self._set(wait_key, now + delay(count, s), window)

    def succeeded(self, *, ip: str, login: str, verdict: Verdict | None = None) -> None:
        """The owner got in: forget the login's failures (the address's stay: an attacker signing in to
        an account of their own must not wipe what their guessing counted). With the ``verdict`` of this
        attempt's ``check`` that found none, there is nothing to forget; a failure counted in the
        moment between (another tab, a guesser) then stays, as if it had come just after."""
        if verdict is not None and not verdict.login_counted:
            return
        ip = self._address(ip)
        clear(
            self.storage,
            [
                self._key("fail-login", login),
                self._key("fail-pair", ip, login),
                self._key("wait-login", ip, login),
            ],
        )

    def forget_login(self, login: str) -> None:
        """An SMS reset was redeemed, or an operator issued a new password: the login starts afresh."""
        self.storage.clear(self._key("fail-login", login))

    def _set(self, key: str, value: int, expiry: int) -> None:
        # limits storages have no "set"; clear-then-add is not atomic, and a race only loses a second.
        self.storage.clear(key)
        self.storage.incr(key, expiry, amount=value)


def _single_node_redis(storage: Storage) -> RedisStorage | None:
    """``storage`` when it is one Redis (or a Sentinel's master), where several keys go in one command; a
    cluster spreads the keys over nodes, and a command over several of them fails (CROSSSLOT)."""
    if isinstance(storage, RedisStorage) and not isinstance(storage, RedisClusterStorage):
        return storage
    return None


def counts(storage: Storage, keys: list[str]) -> list[int]:
    """The counters of ``keys``: one MGET on Redis instead of a round trip each (a sign-in reads five,
    issue 12), one ``get`` each elsewhere."""
    redis = _single_node_redis(storage)
    if redis is None:
        return [int(storage.get(key) or 0) for key in keys]
    with _as_limits_would(redis):
        # limits types the connection by the few commands it uses itself; it is a redis-py client, whose
        # types cover its asyncio twin too.
        connection = cast(Redis, redis.get_connection(True))
        values = cast("list[bytes | None]", connection.mget([redis.prefixed_key(key) for key in keys]))
    return [int(value or 0) for value in values]


def clear(storage: Storage, keys: list[str]) -> None:
    """Forget the counters of ``keys``: one DEL on Redis."""
    redis = _single_node_redis(storage)
    if redis is None:
        for key in keys:
            storage.clear(key)
        return
    with _as_limits_would(redis):
        redis.get_connection().delete(*(redis.prefixed_key(key) for key in keys))


@contextmanager
def _as_limits_would(storage: RedisStorage) -> Iterator[None]:
    """Redis failures raised as the storage's own methods raise them (StorageError): the caller's outage
    handling (fail closed, a 503) is the same whichever path read the counters."""
    try:
        yield
    except storage.base_exceptions as error:
        if storage.wrap_exceptions:
            raise StorageError(error) from error
        raise


def delay(count: int, settings: LoginSettings) -> int:
    """Seconds to wait after the ``count``-th failure: 1 s at ``delay_after``, doubling, at most
    ``max_delay``."""
    steps = count - settings.delay_after
    return min(settings.max_delay, 2 ** min(steps, 30))
