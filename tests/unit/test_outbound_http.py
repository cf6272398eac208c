"""The outbound HTTP client (idp.services.outbound_http) against real sockets on 127.0.0.1: a stub
resolver stands in for DNS, and every test of this module fails if anything tried to connect to, or
asked the system resolver about, anything beyond loopback (such a try is stopped before it leaves the
machine) — the refusals are proved without sending a packet out."""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field

import pytest

from idp.services.outbound import OutboundPolicy
from idp.services.outbound_http import OutboundClient
from idp.services.outbound_http import OutboundError
from idp.services.outbound_http import OutboundLimits
from idp.services.outbound_http import OutboundRefusedError
from idp.services.outbound_http import OutboundTimeoutError
from idp.services.outbound_http import ResponseTooLargeError

from ..fake_smsaero import _self_signed
from ..outbound import StubResolver
from ..outbound import network  # noqa: F401  (fixture)

DEVELOPMENT = OutboundPolicy(development=True)
PRODUCTION = OutboundPolicy()
DEADLINE = 0.6


@pytest.fixture(autouse=True)
def _no_traffic_beyond_loopback(network):
    yield
    assert network.outside == []


def _client(
    policy=DEVELOPMENT, *, resolver=None, deadline=DEADLINE, cap=1024, ssl_context=None
) -> OutboundClient:
    return OutboundClient(
        policy, OutboundLimits(deadline, cap), resolver=resolver or StubResolver({}), ssl_context=ssl_context
    )


@dataclass
class Server:
    port: int
    requests: list[bytes] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


def _read_request(conn) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        body += conn.recv(4096)
    return head + b"\r\n\r\n" + body


@contextmanager
def serving(behave, *, cert_host: str | None = None):
    """A TCP server on 127.0.0.1: each connection (TLS with a certificate for ``cert_host`` if given)
    has its request read, then ``behave(conn, server)`` answers. Yields the Server and, with TLS, the
    CA file that trusts it."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    server = Server(listener.getsockname()[1])
    stop = threading.Event()
    tls, ca_path = None, None
    if cert_host:
        ca_path, key_path = _self_signed(tempfile.mkdtemp(prefix="outbound-tls-"), cert_host)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(ca_path, key_path)
        tls.sni_callback = lambda sslobj, name, context: server.server_names.append(name)

    def handle(conn):
        try:
            if tls:
                conn = tls.wrap_socket(conn, server_side=True)
            server.requests.append(_read_request(conn))
            behave(conn, server)
        except OSError as error:
            server.events.append(f"closed: {type(error).__name__}")
        finally:
            conn.close()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server, ca_path
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


def answer(status: int = 200, body: bytes = b"", headers: str = ""):
    def behave(conn, server):
        conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body)

    return behave


def stall(conn, server):
    time.sleep(DEADLINE * 3)


def drip(conn, server):
    # A byte of the status line at a time, each well inside any per-operation timeout.
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
        conn.sendall(bytes([byte]))
        time.sleep(0.05)


def stream_forever(conn, server):
    conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
    try:
        for _ in range(100000):
            conn.sendall(b"x" * 4096)
    except OSError:
        server.events.append("client hung up")
        raise


# -- what is refused before any connection ------------------------------------------------------------


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.5"],
        ["169.254.169.254"],
        ["::ffff:10.0.0.1"],
        ["100.64.1.1"],
        ["fd00::1"],
        ["0.0.0.0"],
        # One private address among public ones refuses the name: the order of answers must not matter.
        ["93.184.216.34", "10.0.0.5"],
        ["2a00:1450:4010::1", "fe80::1"],
        # Loopback outside development.
        ["127.0.0.1"],
        ["not an address"],
    ],
)
def test_a_name_resolving_to_a_non_public_address_is_refused_without_connecting(addresses, network):
    resolver = StubResolver({"rp.test": addresses})
    client = _client(PRODUCTION, resolver=resolver)
    with pytest.raises(OutboundRefusedError) as refused:
        client.post_form("https://rp.test/backchannel", {"logout_token": "t"})
    assert refused.value.reason == "address"
    assert resolver.asked == ["rp.test"] and network.connects == []


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/bc",
        "https://[::ffff:10.0.0.1]/bc",
        "https://2130706433:5432/",
        "https://user@rp.test/bc",
        "http://rp.test/bc",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/bc",
    ],
)
def test_a_url_the_rules_refuse_is_not_even_resolved(url, network):
    resolver = StubResolver({"rp.test": ["127.0.0.1"]})
    with pytest.raises(OutboundRefusedError):
        _client(PRODUCTION, resolver=resolver).get(url)
    assert resolver.asked == [] and network.connects == []


def test_the_checked_address_is_the_one_connected_to(network):
    # DNS rebinding: a second lookup would answer 10.0.0.5; there must be none.
    class Rebinding(StubResolver):
        def __call__(self, host):
            first = super().__call__(host)
            self.answers[host] = ["10.0.0.5"]
            return first

    resolver = Rebinding({"localhost": ["127.0.0.1"]})
    with serving(answer(204)) as (server, _):
        response = _client(resolver=resolver).post_form(f"http://localhost:{server.port}/bc", {"a": "1"})
    assert response.status == 204
    assert resolver.asked == ["localhost"] and network.connects == [("127.0.0.1", server.port)]
    request = server.requests[0]
    assert request.startswith(b"POST /bc HTTP/1.1\r\n") and request.endswith(b"\r\n\r\na=1")
    assert f"Host: localhost:{server.port}\r\n".encode() in request


# -- what is allowed, and how ------------------------------------------------------------------------


def test_a_redirect_is_returned_not_followed():
    with serving(answer(200)) as (elsewhere, _):
        moved = answer(302, headers=f"Location: http://127.0.0.1:{elsewhere.port}/\r\n")
        with serving(moved) as (server, _):
            response = _client().post_form(f"http://127.0.0.1:{server.port}/bc", {"logout_token": "t"})
    assert response.status == 302 and elsewhere.requests == []


def test_loopback_in_production_only_for_an_allowed_host_and_port():
    with serving(answer(200, b"ok")) as (server, _):
        url = f"http://127.0.0.1:{server.port}/bc"
        with pytest.raises(OutboundRefusedError):
            _client(PRODUCTION).get(url)
        other_port = OutboundPolicy.from_settings(
            environment="production", http_allowed_hosts=["127.0.0.1:1"]
        )
        with pytest.raises(OutboundRefusedError):
            _client(other_port).get(url)
        allowed = OutboundPolicy.from_settings(
            environment="production", http_allowed_hosts=[f"127.0.0.1:{server.port}"]
        )
        assert _client(allowed).get(url).body == b"ok"
    assert len(server.requests) == 1


def test_https_checks_the_certificate_for_the_host_name_and_sends_it_as_sni():
    resolver = StubResolver({"rp.test": ["127.0.0.1"], "evil.test": ["127.0.0.1"]})
    with serving(answer(200, b"{}"), cert_host="rp.test") as (server, ca_path):
        trusting = ssl.create_default_context(cafile=ca_path)
        client = _client(resolver=resolver, ssl_context=trusting)
        assert client.get(f"https://rp.test:{server.port}/jwks").body == b"{}"
        assert server.server_names == ["rp.test"]
        assert f"Host: rp.test:{server.port}\r\n".encode() in server.requests[0]
        # The same server under another name: the certificate does not match it.
        with pytest.raises(OutboundError, match="SSLCertVerificationError"):
            client.get(f"https://evil.test:{server.port}/jwks")
        # A CA nobody configured: refused as well.
        with pytest.raises(OutboundError, match="SSLCertVerificationError"):
            _client(resolver=resolver, ssl_context=ssl.create_default_context()).get(
                f"https://rp.test:{server.port}/"
            )
    assert len(server.requests) == 1


# -- the deadline and the size cap -------------------------------------------------------------------


@pytest.mark.parametrize("behave", [stall, drip], ids=["stall", "drip"])
def test_the_deadline_covers_the_whole_attempt(behave):
    with serving(behave) as (server, _):
        started = time.monotonic()
        with pytest.raises(OutboundTimeoutError):
            _client().get(f"http://127.0.0.1:{server.port}/")
        elapsed = time.monotonic() - started
    # A per-operation timeout would let the drip run for a minute.
    assert DEADLINE - 0.05 <= elapsed < DEADLINE + 0.4, elapsed


def test_the_deadline_covers_a_hanging_resolver(network):
    released = threading.Event()

    def hanging(host):
        released.wait(5)
        return ["127.0.0.1"]

    started = time.monotonic()
    try:
        with pytest.raises(OutboundTimeoutError):
            _client(resolver=hanging).get("https://rp.test/")
    finally:
        released.set()
    assert time.monotonic() - started < DEADLINE + 0.4 and network.connects == []


def test_the_deadline_covers_the_tls_handshake():
    resolver = StubResolver({"rp.test": ["127.0.0.1"]})
    # A "TLS server" that accepts and never says a word: the handshake waits, until the deadline.
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        started = time.monotonic()
        with pytest.raises(OutboundTimeoutError):
            _client(resolver=resolver).get(f"https://rp.test:{listener.getsockname()[1]}/")
        assert time.monotonic() - started < DEADLINE + 0.4
    finally:
        listener.close()


def test_a_body_over_the_cap_is_not_read_further():
    with serving(stream_forever) as (server, _):
        started = time.monotonic()
        with pytest.raises(ResponseTooLargeError):
            _client(cap=10000).get(f"http://127.0.0.1:{server.port}/")
        assert time.monotonic() - started < DEADLINE
        deadline = time.monotonic() + 2
        while "client hung up" not in server.events and time.monotonic() < deadline:
            time.sleep(0.02)
    assert "client hung up" in server.events


def test_a_declared_length_over_the_cap_is_refused_and_one_within_is_read():
    with serving(answer(200, b"x" * 2000)) as (server, _):
        with pytest.raises(ResponseTooLargeError, match="Content-Length 2000"):
            _client(cap=1999).get(f"http://127.0.0.1:{server.port}/")
        assert _client(cap=2000).get(f"http://127.0.0.1:{server.port}/").body == b"x" * 2000


def test_a_connection_refused_is_a_failed_attempt():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(OutboundError) as failed:
        _client().get(f"http://127.0.0.1:{port}/")
    assert not isinstance(failed.value, (OutboundRefusedError, OutboundTimeoutError))
