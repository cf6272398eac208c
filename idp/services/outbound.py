"""The one rule for URLs the provider itself calls: back-channel logout URIs today, ``jwks_uri`` and
``sector_identifier_uri`` later. A relying party chooses these URLs and the provider sends requests to
them from inside our network, so a careless rule is a server-side request forgery (OWASP ASVS 5.0
1.3.6): a POST to a cloud metadata service, an admin port on loopback, a database on 10/8.

Pure functions, no I/O. ``check_url`` judges a URL when a client registers it (RFC 7591, RFC 7592, the
staff console, the CLI) and again before each request; ``check_address`` judges every address the
host name resolves to at request time (``outbound_http`` resolves, so a DNS answer that changed since
registration — DNS rebinding — is caught). Redirect URIs that only the *browser* follows keep their
own rules (``clients.check_redirect_uri``: https, or http on loopback for native apps, RFC 8252 §7.3).

What is refused, with the ``reason`` of the error:

* ``syntax`` — not an absolute URL, a fragment, a backslash, whitespace, control or non-ASCII characters
  outside the host, a bad port;
* ``userinfo`` — ``user@host`` or ``user:password@host``;
* ``scheme`` — anything but https; http only to a loopback host (127.0.0.0/8, ::1, ``localhost``) and only
  in development or when ``[outbound] http_allowed_hosts`` lists the host (and port);
* ``numeric_host`` — every spelling of an IPv4 address but four plain decimal numbers: ``2130706433``,
  ``0177.0.0.1``, ``0x7f.0.0.1``, ``127.1``, ``127.000.000.001``, ``1.2.3.4.5`` (what browsers and
  ``inet_aton`` read as addresses, WHATWG URL §3.5);
* ``host`` — a percent-encoded or trailing-dot host, an IPv6 zone, characters DNS does not allow, a
  Unicode host that IDNA (UTS #46) would rewrite (full-width digits, ideographic dots, upper case) or
  that is not valid IDNA 2008;
* ``address`` — an IP literal in a non-public range (``RANGES``), IPv4-mapped or -compatible IPv6,
  6to4, Teredo, or NAT64 with a non-public IPv4 inside; loopback only where http would be allowed;
* ``internal_name`` — ``localhost``, ``*.localhost``, ``*.local``, ``*.internal`` and the other
  ``INTERNAL_SUFFIXES``, outside development (unless listed in ``[outbound] http_allowed_hosts``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from dataclasses import field
from typing import overload

import idna

from ..errors import UnsafeURLError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Non-public ranges, the most specific first (IANA special-purpose registries, RFC 6890). Anything
# else that Python does not call global is refused too (the catch-all in ``address_range``).
RANGES: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),  # "this network"; Linux connects 0.0.0.0 to the local host
    ("10.0.0.0/8", "private"),  # RFC 1918
    ("100.64.0.0/10", "shared (CGNAT)"),  # RFC 6598
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),  # cloud metadata services live at 169.254.169.254
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
    ("192.0.2.0/24", "documentation"),  # RFC 5737
    ("192.88.99.0/24", "reserved"),  # the former 6to4 relay anycast, RFC 7526
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),  # RFC 2544
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),  # with the broadcast address 255.255.255.255
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped"),  # the IPv4 stack in disguise
    ("::/96", "IPv4-compatible"),  # deprecated, RFC 4291 §2.5.5.1
    ("64:ff9b:1::/48", "local NAT64"),  # RFC 8215
    ("100::/64", "discard-only"),  # RFC 6666
    ("2001::/32", "Teredo"),  # tunnels to an IPv4 address inside
    ("2001:2::/48", "benchmarking"),
    ("2001:db8::/32", "documentation"),
    ("2001::/23", "reserved"),  # IETF protocol assignments
    ("2002::/16", "6to4"),  # tunnels to an IPv4 address inside
    ("3fff::/20", "documentation"),  # RFC 9637
    ("5f00::/16", "reserved"),  # SRv6 SIDs, RFC 9602
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
_NETWORKS = tuple((ipaddress.ip_network(cidr), name) for cidr, name in RANGES)
# NAT64 (RFC 6052): the IPv4 address is the last 32 bits; it is judged as itself.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Global unicast: every other IPv6 address is unassigned or special.
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")

# Names that only mean something inside a network (RFC 6761 localhost, RFC 6762 local, RFC 8375
# home.arpa, ICANN's internal, and the usual private suffixes).
INTERNAL_SUFFIXES = (
    "localhost",
    "local",
    "internal",
    "localdomain",
    "home.arpa",
    "lan",
    "home",
    "corp",
    "intranet",
    "private",
)

_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>[^#]*)")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # decimal, no leading zero
_DOTTED_QUAD = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
# WHATWG URL §3.5 "ends in a number": a last label of digits or 0x-hex makes the host an IPv4 address.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PATH_CHARS = re.compile(r"[!-~]*")  # printable ASCII, no space
DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True)
class OutboundPolicy:
    """What the deployment allows beyond public https hosts: loopback in development, and the
    loopback hosts of ``[outbound] http_allowed_hosts`` (each a host, or host:port) anywhere."""

    development: bool = False
    http_allowed_hosts: frozenset[tuple[str, int | None]] = field(default_factory=frozenset)

    @classmethod
    def from_settings(cls, *, environment: str, http_allowed_hosts: list[str]) -> OutboundPolicy:
        allowed = frozenset(parse_allowed_host(entry) for entry in http_allowed_hosts)
        return cls(environment == "development", allowed)

    def lists(self, host: str, port: int) -> bool:
        return bool({(host, port), (host, None)} & self.http_allowed_hosts)

    def loopback_allowed(self, host: str, port: int) -> bool:
        return self.development or self.lists(host, port)


# The default when a caller names no policy: production, no allow-list.
STRICT = OutboundPolicy()


@dataclass(frozen=True)
class Target:
    """A checked URL, as the request will use it: it is never parsed again by another parser."""

    scheme: str
    host: str  # ASCII: the IDNA form of a name, or the text of an IP address
    port: int
    path: str  # path and query, at least "/"
    address: IPAddress | None  # when the host is an IP literal

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if isinstance(self.address, ipaddress.IPv6Address) else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def address_range(address: IPAddress) -> tuple[str, str] | None:
    """The non-public range ``(cidr, name)`` an address falls in, or None for a public address."""
    for network, name in _NETWORKS:
        if address.version == network.version and address in network:
            return str(network), name
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            return (str(_NAT64), f"NAT64 of {inner}") if address_range(inner) else None
        if address not in _GLOBAL_UNICAST:
            return "::/0", "not global unicast"
    elif not address.is_global:
        return str(address), "not global"
    return None


def check_address(target: Target, address: IPAddress, policy: OutboundPolicy) -> None:
    """Refuse an address the provider must not connect to for ``target``: any non-public one, except
    loopback where the policy allows it for this host."""
    found = address_range(address)
    if found is None:
        return
    cidr, name = found
    if name == "loopback" and policy.loopback_allowed(target.host, target.port):
        return
    raise UnsafeURLError("address", network=f"{name} {cidr}")


def check_url(url: str, policy: OutboundPolicy = STRICT) -> Target:
    """The Target of a URL the provider may call, or UnsafeURLError saying why not."""
    if not isinstance(url, str) or len(url) > 2000 or "\\" in url:
        raise UnsafeURLError("syntax")
    match = _URL.fullmatch(url)
    if match is None:
        raise UnsafeURLError("syntax")
    scheme, authority, rest = match["scheme"].lower(), match["authority"], match["rest"]
    if not _PATH_CHARS.fullmatch(rest) or any(ch.isspace() or not ch.isprintable() for ch in authority):
        raise UnsafeURLError("syntax")
    if scheme not in DEFAULT_PORTS:
        raise UnsafeURLError("scheme")
    if "@" in authority:
        raise UnsafeURLError("userinfo")
    raw_host, port = _split_authority(authority, DEFAULT_PORTS[scheme])
    host, address = _parse_host(raw_host)
    path = rest if rest.startswith("/") else "/" + rest
    target = Target(scheme, host, port, path, address)
    if address is not None:
        check_address(target, address, policy)
    elif _is_internal_name(host) and not (policy.development or policy.lists(host, port)):
        raise UnsafeURLError("internal_name")
    if scheme == "http" and not (_is_loopback(host, address) and policy.loopback_allowed(host, port)):
        raise UnsafeURLError("scheme")
    return target


def parse_allowed_host(entry: str) -> tuple[str, int | None]:
    """An ``[outbound] http_allowed_hosts`` entry — ``127.0.0.1``, ``localhost:5001``, ``[::1]:8080`` —
    as (host, port or None); ValueError unless the host is loopback."""
    if not isinstance(entry, str) or not entry:
        raise ValueError("must be a non-empty string")
    # A bare IPv6 address has colons of its own.
    authority = f"[{entry}]" if entry.count(":") > 1 and not entry.startswith("[") else entry
    try:
        raw_host, port = _split_authority(authority, None)
        host, address = _parse_host(raw_host)
    except UnsafeURLError as error:
        raise ValueError(f"{entry!r} {error.explanation}") from error
    if not _is_loopback(host, address):
        raise ValueError(f"{entry!r} is not a loopback host (127.0.0.0/8, ::1, localhost)")
    return host, port


@overload
def _split_authority(authority: str, default_port: int) -> tuple[str, int]: ...
@overload
def _split_authority(authority: str, default_port: None) -> tuple[str, int | None]: ...
def _split_authority(authority: str, default_port: int | None) -> tuple[str, int | None]:
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise UnsafeURLError("host")
        host, after = authority[: end + 1], authority[end + 1 :]
        if after and not after.startswith(":"):
            raise UnsafeURLError("syntax")
        return host, _port(after[1:]) if after else default_port
    host, colon, port_text = authority.partition(":")
    return host, _port(port_text) if colon else default_port


def _port(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", text) or not 0 < int(text) < 65536:
        raise UnsafeURLError("syntax")
    return int(text)


def _parse_host(raw: str) -> tuple[str, IPAddress | None]:
    """(ASCII host, address if the host is an IP literal); refuses every spelling that two parsers
    might read differently."""
    if not raw:
        raise UnsafeURLError("syntax")
    if raw.startswith("["):
        inner = raw[1:-1] if raw.endswith("]") else ""
        # RFC 6874 zones ("%25eth0") and RFC 3986 IPvFuture ("v1.x") name nothing on the Internet.
        if not inner or "%" in inner or inner[:1].lower() == "v":
            raise UnsafeURLError("host")
        try:
            address = ipaddress.IPv6Address(inner)
        except ValueError as error:
            raise UnsafeURLError("host") from error
        return address.compressed, address
    if "%" in raw or raw.endswith(".") or "[" in raw or "]" in raw:
        raise UnsafeURLError("host")
    host = _ascii_host(raw)
    if _DOTTED_QUAD.fullmatch(host):
        return host, ipaddress.IPv4Address(host)
    if _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]) or _inet_aton(host):
        raise UnsafeURLError("numeric_host")
    return host, None


def _ascii_host(raw: str) -> str:
    """The lower-case ASCII form of a host name, IDNA 2008 for a Unicode one. A Unicode host that UTS #46
    mapping would change (full-width characters, ideographic dots, upper case) is refused rather than
    mapped, so what an admin reads in the registration is what is called."""
    lowered = raw.lower()
    try:
        if not lowered.isascii():
            if idna.uts46_remap(lowered, std3_rules=True, transitional=False) != lowered:
                raise UnsafeURLError("host")
            ascii_host = idna.encode(lowered, uts46=False).decode("ascii")
            if "xn--" not in ascii_host:
                raise UnsafeURLError("host")
        else:
            ascii_host = lowered
        labels = ascii_host.split(".")
        if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            raise UnsafeURLError("host")
        for label in labels:
            if label.startswith("xn--"):
                idna.decode(label)
            elif label[2:4] == "--":
                raise UnsafeURLError("host")  # reserved for other ACE prefixes (RFC 5891 §4.2.3.1)
    except idna.IDNAError as error:
        raise UnsafeURLError("host") from error
    return ascii_host


def _inet_aton(host: str) -> bool:
    # Every form the C library accepts as an IPv4 address (decimal, octal, hex, 1 to 4 parts).
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def _is_loopback(host: str, address: IPAddress | None) -> bool:
    # The redirect URI rules' loopback (services.net): 127.0.0.0/8, ::1 and the name localhost itself.
    return address.is_loopback if address is not None else host == "localhost"


def _is_internal_name(host: str) -> bool:
    return any(host == suffix or host.endswith("." + suffix) for suffix in INTERNAL_SUFFIXES)
