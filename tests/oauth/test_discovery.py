"""Discovery (OIDC Discovery 1.0 §3-§4, RFC 8414) and the JWKS (RFC 7517): conformance "Basic OP"
checks oidcc-discovery-* and oidcc-server."""

from urllib.parse import urlsplit

from authlib.oidc.discovery import OpenIDProviderMetadata

from ..helpers import settings_of
from ._flow import ISSUER

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def _metadata(client) -> dict:
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_metadata_validates(client):
    metadata = _metadata(client)
    OpenIDProviderMetadata(metadata).validate()
    assert metadata["issuer"] == ISSUER
    assert metadata["response_types_supported"] == ["code"]
    assert "RS256" in metadata["id_token_signing_alg_values_supported"]


def test_pkce_s256_only_and_iss_parameter(client):
    metadata = _metadata(client)
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert metadata["request_parameter_supported"] is False
    assert metadata["request_uri_parameter_supported"] is False


def test_single_logout_is_advertised(client):
    # Back-Channel Logout 1.0 §2.1, Front-Channel Logout 1.0 §3: logout tokens and iframe URLs carry sid.
    metadata = _metadata(client)
    for name in (
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
        "frontchannel_logout_supported",
        "frontchannel_logout_session_supported",
    ):
        assert metadata[name] is True, name


def test_every_advertised_endpoint_answers(client):
    metadata = _metadata(client)
    endpoints = [key for key in metadata if key.endswith("_endpoint") or key == "jwks_uri"]
    assert len(endpoints) >= 7
    for key in endpoints:
        url = metadata[key]
        assert url.startswith(ISSUER + "/"), (key, url)
        path = urlsplit(url).path
        # GET for the browser-facing and public documents, POST for the back-channel ones; any answer
        # but 404/405/500 means the route exists and takes the method the spec gives it.
        back_channel = key in (
            "token_endpoint",
            "revocation_endpoint",
            "introspection_endpoint",
            "registration_endpoint",
            "pushed_authorization_request_endpoint",
            "device_authorization_endpoint",
        )
        response = client.post(path) if back_channel else client.get(path)
        status = response.status_code
        assert status not in (404, 405) and status < 500, (key, status)


def test_discovery_and_jwks_are_cacheable(client, app):
    max_age = settings_of(app).keys.jwks_max_age
    assert max_age > 0
    for path in ("/.well-known/openid-configuration", "/jwks.json"):
        response = client.get(path)
        assert response.cache_control.max_age == max_age, path
        assert not response.cache_control.no_store


def test_jwks_has_unique_kids_and_no_private_members(client):
    response = client.get("/jwks.json")
    assert response.status_code == 200
    keys = response.get_json()["keys"]
    assert keys
    kids = [key["kid"] for key in keys]
    assert len(kids) == len(set(kids))
    assert {key["alg"] for key in keys} >= {"RS256", "ES256"}
    for key in keys:
        assert not PRIVATE_MEMBERS & set(key), key
        assert key["use"] == "sig"


def test_discovery_issuer_ignores_host_header(client):
    metadata = client.get("/.well-known/openid-configuration", headers={"Host": "evil.example"}).get_json()
    assert metadata["issuer"] == ISSUER
    assert all(metadata[k].startswith(ISSUER + "/") for k in metadata if k.endswith("_endpoint"))


def test_discovery_and_jwks_revalidate_with_their_etag(client):
    for path in ("/.well-known/openid-configuration", "/jwks.json"):
        first = client.get(path)
        etag = first.headers["ETag"]
        assert etag.startswith('"') and etag.endswith('"'), path
        assert client.get(path).headers["ETag"] == etag  # the same bytes, the same tag
        unchanged = client.get(path, headers={"If-None-Match": etag})
        assert unchanged.status_code == 304 and unchanged.get_data() == b"", path
        assert unchanged.headers["ETag"] == etag
        assert unchanged.cache_control.max_age == first.cache_control.max_age
        assert client.get(path, headers={"If-None-Match": f'W/"x", {etag}'}).status_code == 304
        other = client.get(path, headers={"If-None-Match": '"not-this-one"'})
        assert other.status_code == 200 and other.get_data() == first.get_data(), path
