"""The key a client address is counted under by every per-address limit (services.net.rate_key, issue
10): an IPv6 client by its /64, so rotating through the addresses of one customer's prefix gives no
fresh bucket."""

from __future__ import annotations

import pytest

from idp.services.net import rate_key


@pytest.mark.parametrize(
    "address, key",
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:DB8:0001:0002:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        # RFC 4291 §2.5.5.2: an IPv4 client seen through a dual-stack socket.
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("::FFFF:cb00:7107", "203.0.113.7"),
        ("fe80::1%eth0", "fe80::/64"),
    ],
)
def test_ipv4_as_it_is_ipv6_by_its_64(address, key):
    assert rate_key(address) == key


@pytest.mark.parametrize(
    "prefix, key",
    [(48, "2001:db8:1::/48"), (56, "2001:db8:1::/56"), (128, "2001:db8:1:2:3:4:5:6/128")],
)
def test_the_prefix_length_is_the_callers(prefix, key):
    assert rate_key("2001:db8:1:2:3:4:5:6", prefix) == key
    assert rate_key("203.0.113.7", prefix) == "203.0.113.7"


@pytest.mark.parametrize(
    "address",
    [
        "",
        "unknown",
        "2001:db8::1/64",
        "2001:db8:::1",
        "203.0.113.256",
        "203.0.113.07",
        " 203.0.113.7",
        "::ffff:x",
    ],
)
def test_anything_else_stays_as_it_is(address):
    assert rate_key(address) == address
