"""For the tests of outbound requests: the back-channel logout URIs the provider must never call, each
with the reason ``services.outbound`` gives (shared by the rule's own tests and those of every way a
client is registered or changed; none is ever contacted), a stub resolver, and the ``network`` fixture
that stops and records any connection beyond 127.0.0.0/8."""

from __future__ import annotations

import ipaddress
import socket

import pytest

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")

# Refused everywhere, development included.
ALWAYS = [
    # userinfo
    ("https://user@rp.example/bc", "userinfo"),
    ("https://user:pw@rp.example/bc", "userinfo"),
    ("https://rp.example@169.254.169.254/bc", "userinfo"),
    # schemes: http to anything but loopback
    ("http://rp.example/bc", "scheme"),
    ("http://rp.example:8080/bc", "scheme"),
    # IPv4 literals in non-public ranges
    ("https://10.0.0.5/bc", "address"),
    ("https://172.16.0.1/bc", "address"),
    ("https://192.168.1.1/bc", "address"),
    ("https://169.254.169.254/latest/meta-data/", "address"),
    ("https://100.64.0.1/bc", "address"),
    ("https://224.0.0.1/bc", "address"),
    ("https://239.255.255.250/bc", "address"),
    ("https://240.0.0.1/bc", "address"),
    ("https://255.255.255.255/bc", "address"),
    ("https://0.0.0.0/bc", "address"),
    ("https://0.1.2.3/bc", "address"),
    ("https://198.18.0.1/bc", "address"),
    ("https://192.0.2.10/bc", "address"),
    ("https://198.51.100.10/bc", "address"),
    ("https://203.0.113.10/bc", "address"),
    ("https://192.0.0.8/bc", "address"),
    ("https://192.88.99.1/bc", "address"),
    # IPv6 literals
    ("https://[::]/bc", "address"),
    ("https://[fc00::1]/bc", "address"),
    ("https://[fd12:3456::1]/bc", "address"),
    ("https://[fe80::1]/bc", "address"),
    ("https://[fec0::1]/bc", "address"),
    ("https://[ff02::1]/bc", "address"),
    ("https://[::ffff:127.0.0.1]/bc", "address"),
    ("https://[::ffff:a00:5]/bc", "address"),
    ("https://[::ffff:8.8.8.8]/bc", "address"),
    ("https://[::127.0.0.1]/bc", "address"),
    ("https://[::a00:5]/bc", "address"),
    ("https://[64:ff9b::10.0.0.1]/bc", "address"),
    ("https://[64:ff9b::a9fe:a9fe]/bc", "address"),
    ("https://[64:ff9b:1::1]/bc", "address"),
    ("https://[2002:7f00:1::1]/bc", "address"),
    ("https://[2002:a00:5::1]/bc", "address"),
    ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/bc", "address"),
    ("https://[2001:db8::1]/bc", "address"),
    ("https://[3fff::1]/bc", "address"),
    ("https://[2001:2::1]/bc", "address"),
    ("https://[100::1]/bc", "address"),
    ("https://[1::1]/bc", "address"),
    # non-canonical numeric hosts
    ("https://2130706433:5432", "numeric_host"),
    ("https://2130706433/bc", "numeric_host"),
    ("https://167772165/bc", "numeric_host"),
    ("https://0177.0.0.1/bc", "numeric_host"),
    ("https://0x7f.0.0.1/bc", "numeric_host"),
    ("https://0X7F.0.0.1/bc", "numeric_host"),
    ("https://0x7f000001/bc", "numeric_host"),
    ("https://0xa9fea9fe/bc", "numeric_host"),
    ("https://127.1/bc", "numeric_host"),
    ("https://127.0.1/bc", "numeric_host"),
    ("https://0177.1/bc", "numeric_host"),
    ("https://0x7f.1/bc", "numeric_host"),
    ("https://127.0x0.0.1/bc", "numeric_host"),
    ("https://127.000.000.001/bc", "numeric_host"),
    ("https://010.0.0.5/bc", "numeric_host"),
    ("https://0/bc", "numeric_host"),
    ("https://10.0.0.5.6/bc", "numeric_host"),
    ("https://rp.example.0x10/bc", "numeric_host"),
    # trailing dots, percent-encoding, zones, IDNA oddities, characters DNS does not have
    ("https://rp.example./bc", "host"),
    ("https://127.0.0.1./bc", "host"),
    ("https://localhost./bc", "host"),
    ("https://%31%32%37.0.0.1/bc", "host"),
    ("https://rp%2eexample/bc", "host"),
    ("https://[fe80::1%25eth0]/bc", "host"),
    ("https://１２７.０.０.１/bc", "host"),
    ("https://127。0。0。1/bc", "host"),
    ("https://ｌｏｃａｌｈｏｓｔ/bc", "host"),
    ("https://rp.ｅｘａｍｐｌｅ/bc", "host"),
    ("https://xn--zz.example/bc", "host"),
    ("https://rp_internal.example/bc", "host"),
    ("https://rp..example/bc", "host"),
    # a backslash: browsers and Python split such an authority differently
    ("https://rp.example\\@10.0.0.5/bc", "syntax"),
]

# Refused in production; allowed in development (loopback, internal names), where the addresses a
# name resolves to are still checked at delivery.
OUTSIDE_DEVELOPMENT = [
    ("http://127.0.0.1:6379/bc", "address"),
    ("http://127.0.0.1:5432/bc", "address"),
    ("https://127.0.0.1/bc", "address"),
    ("https://127.10.20.30:8443/bc", "address"),
    ("http://[::1]:8080/bc", "address"),
    ("http://localhost:5432/bc", "internal_name"),
    ("https://localhost/bc", "internal_name"),
    ("https://idp.localhost/bc", "internal_name"),
    ("https://printer.local/bc", "internal_name"),
    ("https://db.internal/bc", "internal_name"),
    ("https://router.home.arpa/bc", "internal_name"),
    ("https://files.corp/bc", "internal_name"),
]

FORBIDDEN = ALWAYS + OUTSIDE_DEVELOPMENT

ACCEPTED = [
    "https://rp.example/bc",
    "https://rp.example:8443/bc?client=1",
    "https://RP.Example/bc",
    "https://кабинет.рф/bc",
    "https://xn--80acmlhv0b.xn--p1ai/bc",
    "https://8.8.8.8/bc",
    "https://[2a00:1450:4010::1]/bc",
    "https://[64:ff9b::808:808]/bc",
    "https://127.0.0.1.nip.example/bc",
]


class StubResolver:
    """DNS for the tests: a fixed answer per name, and every question recorded."""

    def __init__(self, answers: dict[str, list[str]]):
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        return self.answers[host]


class Network:
    """Every connection and system name lookup made during a test, from any thread."""

    def __init__(self):
        self.connects: list[tuple] = []
        self.lookups: list[str] = []

    @property
    def outside(self) -> list:
        """What went, or tried to go, beyond loopback: must stay empty."""
        return [a for a in self.connects if ipaddress.ip_address(a[0]) not in LOOPBACK] + [
            host for host in self.lookups if host != "127.0.0.1"
        ]


@pytest.fixture
def network(monkeypatch) -> Network:
    """Records connections and lookups; one beyond 127.0.0.0/8 is refused before it leaves the machine."""
    seen = Network()
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock, address):
        seen.connects.append(address)
        if ipaddress.ip_address(address[0]) not in LOOPBACK:
            raise ConnectionRefusedError("test: no traffic beyond loopback")
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        seen.lookups.append(host)
        if host != "127.0.0.1":
            raise socket.gaierror(socket.EAI_NONAME, "test: no name lookups")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen
