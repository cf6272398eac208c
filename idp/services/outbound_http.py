"""HTTP requests the provider itself makes (back-channel logout today; a durable delivery outbox and
``jwks_uri`` fetches can use the same client), under the rules of ``services.outbound``.

One attempt:

1. the URL is checked again (the rules or ``[outbound] http_allowed_hosts`` may have changed since the
   client registered it);
2. the host name is resolved through an injectable resolver, and the attempt is refused if ANY of
   its addresses is not public (``outbound.check_address``): a name with one public and one private
   address cannot steer the provider inside by the order of its answers;
3. the connection goes to a checked address itself, never to the name, so nothing resolves the name
   a second time between the check and the connect (DNS rebinding);
4. https with SNI and certificate verification for the URL's host name; one request; a redirect is
   returned as it is, never followed; at most ``max_response_bytes`` of body are read, then the
   connection is closed.

The deadline covers the whole attempt, resolution included: every socket operation gets the time
left, not a fresh timeout, so a server that drips a byte at a time cannot stretch an attempt, and a
resolver that hangs is given up on. Retrying is the caller's business (``services.logout``).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import urllib3
from urllib3.connection import HTTPConnection
from urllib3.connection import HTTPSConnection

from ..config import Settings
from . import outbound
from .outbound import OutboundPolicy
from .outbound import Target

# host name -> its addresses (as text). The default asks the system (getaddrinfo).
Resolver = Callable[[str], Iterable[str]]
USER_AGENT = "idp"
READ_CHUNK = 65536


def system_resolver(host: str) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)]


# getaddrinfo cannot be interrupted: it runs here, and the attempt waits for it at most until its
# deadline. A few threads for the process; a hung lookup ends at the system resolver's own timeout.
_RESOLUTIONS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="idp-resolve")


class OutboundError(Exception):
    """An attempt failed (no connection, TLS, protocol, ...); trying again may help."""


class OutboundRefusedError(OutboundError):
    """The URL or an address of its host is not one the provider calls; trying again cannot help."""

    def __init__(self, reason: str, explanation: str):
        super().__init__(explanation)
        self.reason = reason


class OutboundTimeoutError(OutboundError):
    """The attempt's deadline passed."""


class ResponseTooLargeError(OutboundError):
    """The response body is longer than ``max_response_bytes``."""


@dataclass(frozen=True)
class OutboundLimits:
    deadline: float  # seconds for a whole attempt: resolve, connect, TLS, send, receive
    max_response_bytes: int


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


# The deadline (time.monotonic()) of the attempt running in this thread.
_DEADLINE: ContextVar[float | None] = ContextVar("idp_outbound_deadline", default=None)


def _time_left() -> float | None:
    deadline = _DEADLINE.get()
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the outbound deadline passed")
    return left


def _armed(name: str):
    def method(self, *args, **kwargs):
        self._arm()
        return getattr(super(_Deadline, self), name)(*args, **kwargs)

    method.__name__ = name
    return method


class _Deadline:
    """Every send and receive of a socket may take only the attempt's time left."""

    if TYPE_CHECKING:  # the socket class this is mixed into has it

        def settimeout(self, value: float | None) -> None: ...

    def _arm(self) -> None:
        left = _time_left()
        if left is not None:
            self.settimeout(left)

    recv = _armed("recv")
    recv_into = _armed("recv_into")
    send = _armed("send")
    sendall = _armed("sendall")


class _DeadlineSocket(_Deadline, socket.socket):
    pass


class _DeadlineSSLSocket(_Deadline, ssl.SSLSocket):
    # CPython bounds a whole handshake by the socket's timeout.
    do_handshake = _armed("do_handshake")


def _open_socket(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    sock = _DeadlineSocket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(_time_left())
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.connect((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


class _Pinned:
    """urllib3's connection to an address already checked: ``host`` is that address, never a name."""

    # Set by the urllib3 connection class this is mixed into.
    _dns_host: str
    port: int

    def _new_conn(self) -> socket.socket:
        return _open_socket(self._dns_host, self.port)


class _PinnedConnection(_Pinned, HTTPConnection):
    pass


class _PinnedTLSConnection(_Pinned, HTTPSConnection):
    pass


class OutboundClient:
    """Makes single attempts under ``policy`` and ``limits``; ``resolver`` and ``ssl_context`` can be
    replaced (tests: a stub resolver, a test CA). Safe to share between threads."""

    def __init__(
        self,
        policy: OutboundPolicy,
        limits: OutboundLimits,
        *,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.policy = policy
        self.limits = limits
        self.resolver = resolver
        self._ssl_context = ssl_context
        self._tls_ready = False
        self._lock = threading.Lock()

    def post_form(self, url: str, form: Mapping[str, str]) -> OutboundResponse:
        body = urlencode(form).encode("ascii")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self.request("POST", url, body=body, headers=headers)

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> OutboundResponse:
        return self.request("GET", url, headers=headers)

    def request(
        self, method: str, url: str, *, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> OutboundResponse:
        try:
            target = outbound.check_url(url, self.policy)
        except outbound.UnsafeURLError as error:
            raise OutboundRefusedError(error.reason, error.explanation) from error
        deadline = time.monotonic() + self.limits.deadline
        token = _DEADLINE.set(deadline)
        try:
            return self._attempt(target, method, body, dict(headers or {}))
        except OutboundError:
            raise
        except (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException) as error:
            if time.monotonic() >= deadline:
                raise OutboundTimeoutError(f"no answer within {self.limits.deadline} s") from error
            raise OutboundError(type(error).__name__) from error
        finally:
            _DEADLINE.reset(token)

    def _attempt(self, target: Target, method: str, body: bytes | None, headers: dict) -> OutboundResponse:
        addresses = self._addresses(target)
        headers.update(
            {
                "Host": target.host_header,
                "User-Agent": USER_AGENT,
                "Accept-Encoding": "identity",
                "Connection": "close",
            }
        )
        for index, address in enumerate(addresses):
            connection = self._connection(target, address)
            try:
                try:
                    connection.connect()
                except OSError:
                    # Another address of the same (all-public) set may answer; the deadline still runs.
                    if index + 1 < len(addresses):
                        continue
                    raise
                connection.request(
                    method,
                    target.path,
                    body=body,
                    headers=headers,
                    preload_content=False,
                    decode_content=False,
                )
                response = connection.getresponse()
                content = self._read(response)
                return OutboundResponse(response.status, dict(response.headers), content)
            finally:
                connection.close()
        raise OutboundError("no address to connect to")

    def _addresses(self, target: Target) -> list[str]:
        """The addresses to connect to, every one checked; a single non-public one refuses them all."""
        if target.address is not None:
            return [str(target.address)]
        lookup = _RESOLUTIONS.submit(lambda: list(self.resolver(target.host)))
        try:
            found = lookup.result(timeout=_time_left())
        except TimeoutError as error:
            raise OutboundTimeoutError(f"{target.host} was not resolved in time") from error
        except OSError as error:
            raise OutboundError(f"{target.host} cannot be resolved") from error
        addresses: list[str] = []
        for text in found:
            try:
                address = ipaddress.ip_address(text)
            except ValueError as error:
                raise OutboundRefusedError("address", f"{target.host} resolved to {text!r}") from error
            try:
                outbound.check_address(target, address, self.policy)
            except outbound.UnsafeURLError as error:
                why = f"{target.host} resolves to {error.explanation}"
                raise OutboundRefusedError(error.reason, why) from error
            if str(address) not in addresses:
                addresses.append(str(address))
        if not addresses:
            raise OutboundError(f"{target.host} has no address")
        return addresses

    def _connection(self, target: Target, address: str) -> HTTPConnection:
        if target.scheme == "http":
            return _PinnedConnection(address, target.port, timeout=_time_left())
        return _PinnedTLSConnection(
            address, target.port, timeout=_time_left(), server_hostname=target.host, ssl_context=self._tls()
        )

    def _tls(self) -> ssl.SSLContext:
        # Made on first use: loading the system's CA certificates takes a moment, and most apps
        # (tests, `idp` commands) never call out over https.
        with self._lock:
            context = self._ssl_context
            if not self._tls_ready or context is None:
                context = self._ssl_context = context or ssl.create_default_context()
                context.minimum_version = max(context.minimum_version, ssl.TLSVersion.TLSv1_2)
                context.sslsocket_class = _DeadlineSSLSocket
                self._tls_ready = True
            return context

    def _read(self, response) -> bytes:
        cap = self.limits.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise ResponseTooLargeError(f"Content-Length {declared} is over {cap} bytes")
        chunks, total = [], 0
        while chunk := response.read(min(READ_CHUNK, cap + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:
                raise ResponseTooLargeError(f"the body is over {cap} bytes")
        return b"".join(chunks)


def client_from_settings(settings: Settings) -> OutboundClient:
    """The client of ``create_app``, from the validated settings ([outbound], [server] environment)."""
    section = settings.outbound
    policy = OutboundPolicy.from_settings(
        environment=settings.server.environment, http_allowed_hosts=list(section.http_allowed_hosts)
    )
    return OutboundClient(policy, OutboundLimits(section.deadline, section.max_response_bytes))
