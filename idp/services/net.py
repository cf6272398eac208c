"""Host checks shared by configuration and client registration, and the key a client address is
counted under by the per-address limits."""

import ipaddress

# Where an IPv6 client's addresses are counted together (README, Security notes): the /64 is what a home
# or mobile network hands one customer (RFC 6177 §2, RFC 7421), and what Cloudflare and common nginx
# setups key IPv6 limits by.
IPV6_PREFIX = 64


def is_loopback(host: str) -> bool:
    """localhost or a loopback address (RFC 8252 §7.3: plain http is tolerable only there)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def rate_key(address: str, ipv6_prefix: int = IPV6_PREFIX) -> str:
    """The key every per-address limit counts ``address`` under: an IPv4 address as it is, an IPv6 one as
    its network of ``ipv6_prefix`` bits (``2001:db8:1:2::/64``), so rotating through the 2^64 addresses
    of one customer's prefix gives no fresh bucket. An IPv4-mapped address (``::ffff:192.0.2.1``, RFC 4291
    §2.5.5.2) is its IPv4 address. Anything else (empty, malformed) is returned as it is: a limit keyed by
    it still counts, and the request is never refused for the form of its address."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv4Address):
        return address
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    # A zone (fe80::1%eth0, RFC 6874) names the host's interface, not the client: not part of the key.
    bare = ipaddress.IPv6Address(parsed.packed)
    return str(ipaddress.IPv6Network((bare, ipv6_prefix), strict=False))
