"""The rule for URLs the provider itself calls (idp.services.outbound): every forbidden form with its
reason, what development and the allow-list unlock, and that redirect URIs the browser follows keep
their own rules (RFC 8252 loopback redirects for native apps)."""

from __future__ import annotations

import pytest

from idp.config import ConfigError
from idp.config import load_config
from idp.errors import ClientDataError
from idp.errors import UnsafeURLError
from idp.messages import cli_client_error
from idp.services.clients import check_redirect_uri
from idp.services.outbound import STRICT
from idp.services.outbound import OutboundPolicy
from idp.services.outbound import check_url
from idp.services.outbound import parse_allowed_host

from ..outbound import ACCEPTED
from ..outbound import ALWAYS
from ..outbound import FORBIDDEN
from ..outbound import OUTSIDE_DEVELOPMENT

DEVELOPMENT = OutboundPolicy(development=True)


def _reason(url: str, policy: OutboundPolicy) -> str:
    with pytest.raises(UnsafeURLError) as refused:
        check_url(url, policy)
    return refused.value.reason


@pytest.mark.parametrize("url, reason", FORBIDDEN)
def test_forbidden_in_production(url, reason):
    assert _reason(url, STRICT) == reason


@pytest.mark.parametrize("url, reason", ALWAYS)
def test_forbidden_in_development_too(url, reason):
    assert _reason(url, DEVELOPMENT) == reason


@pytest.mark.parametrize("url, reason", OUTSIDE_DEVELOPMENT)
def test_loopback_and_internal_names_are_allowed_in_development(url, reason):
    check_url(url, DEVELOPMENT)


@pytest.mark.parametrize("url", ACCEPTED)
def test_public_https_urls_are_accepted(url):
    check_url(url, STRICT)


def test_the_target_is_what_the_request_uses():
    target = check_url("https://Кабинет.рф:8443/bc?x=1", STRICT)
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "xn--80acmlhv0b.xn--p1ai",
        8443,
        "/bc?x=1",
    )
    assert target.host_header == "xn--80acmlhv0b.xn--p1ai:8443"
    ipv6 = check_url("https://[2A00:1450:4010:0::1]", STRICT)
    assert ipv6.host == "2a00:1450:4010::1" and ipv6.host_header == "[2a00:1450:4010::1]" and ipv6.path == "/"


def test_the_address_range_is_named():
    with pytest.raises(UnsafeURLError) as refused:
        check_url("https://169.254.169.254/latest/meta-data/", STRICT)
    assert refused.value.network == "link-local 169.254.0.0/16"
    with pytest.raises(UnsafeURLError) as refused:
        check_url("https://[64:ff9b::10.0.0.1]/", STRICT)
    assert refused.value.network == "NAT64 of 10.0.0.1 64:ff9b::/96"


def test_the_allow_list_opens_exactly_its_loopback_hosts_and_ports():
    policy = OutboundPolicy.from_settings(
        environment="production", http_allowed_hosts=["127.0.0.1:8080", "localhost", "[::1]:9000"]
    )
    for url in (
        "http://127.0.0.1:8080/bc",
        "https://127.0.0.1:8080/bc",
        "http://localhost/bc",
        "http://localhost:5001/bc",
        "http://[::1]:9000/bc",
    ):
        check_url(url, policy)
    assert _reason("http://127.0.0.1:8081/bc", policy) == "address"
    assert _reason("http://127.0.0.2:8080/bc", policy) == "address"
    assert _reason("http://[::1]:9001/bc", policy) == "address"
    assert _reason("http://idp.localhost/bc", policy) == "internal_name"
    # The allow-list opens loopback only: a private address is refused whatever it lists.
    assert _reason("https://10.0.0.5/bc", policy) == "address"


@pytest.mark.parametrize(
    "entry", ["10.0.0.5", "rp.example", "127.1", "localhost:0", "[::1", "db.internal", "", "::"]
)
def test_the_allow_list_takes_only_loopback_hosts(entry):
    with pytest.raises(ValueError):
        parse_allowed_host(entry)
    with pytest.raises(ConfigError, match=r"\[outbound\] http_allowed_hosts"):
        load_config({"outbound": {"http_allowed_hosts": [entry]}}, environ={})


def test_allow_list_entries_are_read():
    assert parse_allowed_host("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_allowed_host("LOCALHOST") == ("localhost", None)
    assert parse_allowed_host("::1") == ("::1", None)
    assert parse_allowed_host("[::1]:9000") == ("::1", 9000)


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:53124/callback",
        "http://[::1]:8080/cb",
        "http://localhost/cb",
        "https://rp.example/cb",
    ],
)
def test_redirect_uris_the_browser_follows_keep_their_rules(uri):
    # RFC 8252 §7.3: native apps receive the code on a loopback port of their own; the browser, not
    # the provider, goes there, so the outbound rules do not apply.
    check_redirect_uri(uri)


def test_a_uri_the_provider_calls_gets_the_outbound_rules():
    # The field at fault and the outbound reason; the UnsafeURLError, with its explanation, is the cause.
    with pytest.raises(ClientDataError) as refused:
        check_redirect_uri("http://127.0.0.1:6379/", "backchannel_logout_uri", outbound_policy=STRICT)
    error = refused.value
    assert (error.field, error.reason, error.value) == (
        "backchannel_logout_uri",
        "address",
        "http://127.0.0.1:6379/",
    )
    assert isinstance(error.__cause__, UnsafeURLError)
    assert cli_client_error(error).startswith(
        "back-channel logout URI 'http://127.0.0.1:6379/' points to a non-public"
    )
    check_redirect_uri("http://127.0.0.1:6379/", "backchannel_logout_uri", outbound_policy=DEVELOPMENT)
