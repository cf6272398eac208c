"""Pairwise subject identifiers (OIDC Core §8.1) and sector_identifier_uri (OIDC Registration §5): the
sub a pairwise client sees in the ID token, UserInfo, introspection and logout tokens, stable per sector,
different across sectors; the sector document fetched from a local server."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from flask import Flask

from idp.errors import ClientDataError
from idp.extensions import db
from idp.services import clients
from idp.services import subjects

from ..relying_parties import bound_socket
from ..relying_parties import serving
from ._flow import authorize
from ._flow import redeem
from ._flow import sign_in_for_tokens
from ._flow import userinfo
from ._flow import verify_id_token


@contextmanager
def sector_document(body, status: int = 200):
    """A local HTTP server answering GET /sector.json with ``body`` (JSON-encoded unless bytes)."""
    sock, port = bound_socket()
    app = Flask("sector")
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()

    @app.get("/sector.json")
    def document():
        return payload, status, {"Content-Type": "application/json"}

    with serving(app, sock):
        yield f"http://127.0.0.1:{port}/sector.json"


def _introspected_sub(client, rp, token):
    response = client.post("/introspect", data={"token": token}, auth=(rp["client_id"], rp["client_secret"]))
    return response.get_json()["sub"]


def test_pairwise_sub_everywhere_and_stable(browser, account, make_rp):
    pairwise = make_rp(subject_type="pairwise")
    tokens, _ = sign_in_for_tokens(browser, account, pairwise)
    sub = verify_id_token(browser.client, tokens["id_token"]).claims["sub"]
    assert sub != account["sub"] and len(sub) == 43
    assert userinfo(browser.client, tokens["access_token"]).get_json()["sub"] == sub
    assert _introspected_sub(browser.client, pairwise, tokens["access_token"]) == sub
    # The same person again: the same sub.
    again, _ = sign_in_for_tokens(browser, account, pairwise)
    assert verify_id_token(browser.client, again["id_token"]).claims["sub"] == sub


def test_same_sector_same_sub_other_sector_other_sub(browser, account, make_rp, rp):
    first = make_rp(subject_type="pairwise")
    second = make_rp(subject_type="pairwise", redirect_uris=["https://rp.example/other"])
    other_sector = make_rp(subject_type="pairwise", redirect_uris=["https://portal.example/cb"])

    def sub_for(client, redirect_uri="https://rp.example/cb"):
        done = authorize(browser, client, account, redirect_uri=redirect_uri)
        response = redeem(browser.client, client, done.code, done.verifier, redirect_uri=redirect_uri)
        return verify_id_token(browser.client, response.get_json()["id_token"]).claims["sub"]

    a = sub_for(first)
    assert sub_for(second, "https://rp.example/other") == a
    assert sub_for(other_sector, "https://portal.example/cb") not in (a, account["sub"])
    # A public client still sees the public sub.
    assert sub_for(rp) == account["sub"]


def test_the_key_decides_the_value(app):
    sub = subjects.pairwise_subject(b"k1", "rp.example", "abc")
    assert sub == subjects.pairwise_subject(b"k1", "rp.example", "abc")
    assert sub != subjects.pairwise_subject(b"k2", "rp.example", "abc")
    assert sub != subjects.pairwise_subject(b"k1", "rp.example2", "abc")


def test_pairwise_with_several_hosts_needs_a_sector_identifier_uri(app, make_rp):
    with pytest.raises(ClientDataError) as refused:
        make_rp(subject_type="pairwise", redirect_uris=["https://a.example/cb", "https://b.example/cb"])
    assert (refused.value.field, refused.value.reason) == ("sector_identifier_uri", "required")


def _register_with_sector(app, sector_uri, redirect_uris):
    from idp.runtime import of

    data = clients.ClientInput(
        name="Портал",
        redirect_uris=redirect_uris,
        scope="openid profile",
        subject_type="pairwise",
        sector_identifier_uri=sector_uri,
    )
    with app.app_context():
        client, _ = clients.create_client(
            db.session,
            data,
            limits=of(app).settings.oauth,
            now=0,
            outbound_policy=of(app).outbound.policy,
            fetch=clients.sector_fetch(of(app).outbound),
        )
        db.session.commit()
        return client.client_metadata


def test_sector_identifier_uri_is_fetched_and_checked(app):
    uris = ["https://a.example/cb", "https://b.example/cb"]
    with sector_document(uris + ["https://c.example/cb"]) as url:
        metadata = _register_with_sector(app, url, uris)
    assert metadata["sector_identifier_uri"] == url and metadata["subject_type"] == "pairwise"
    with sector_document(["https://a.example/cb"]) as url, pytest.raises(ClientDataError) as refused:
        _register_with_sector(app, url, uris)
    assert refused.value.reason == "sector_mismatch"
    with sector_document(b"<html>") as url, pytest.raises(ClientDataError) as refused:
        _register_with_sector(app, url, uris)
    assert refused.value.reason == "sector_document"
    with sector_document(uris, status=404) as url, pytest.raises(ClientDataError) as refused:
        _register_with_sector(app, url, uris)
    assert refused.value.reason == "sector_unreachable"


def test_sector_is_the_host_of_the_sector_identifier_uri(app):
    sector_uri = "https://sector.example/list.json"
    assert subjects.sector_of(["https://a.example/cb"], sector_uri) == "sector.example"
    assert subjects.sector_of(["https://a.example/cb", "https://a.example/x"], None) == "a.example"


def test_cli_registers_a_pairwise_client(app):
    uris = ["https://a.example/cb", "https://b.example/cb"]
    with sector_document(uris) as url:
        args = ["clients", "create", "--name", "Портал", "--subject-type", "pairwise"]
        args += ["--sector-identifier-uri", url, "--json"]
        for uri in uris:
            args += ["--redirect-uri", uri]
        result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    registered = json.loads(result.output)
    assert registered["subject_type"] == "pairwise" and registered["sector_identifier_uri"] == url
    # Without the document listing them all, the command refuses and says why.
    with sector_document(uris[:1]) as url:
        args[args.index("--sector-identifier-uri") + 1] = url
        result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code != 0 and "does not list every redirect URI" in result.output


def test_discovery_advertises_pairwise(client):
    metadata = client.get("/.well-known/openid-configuration").get_json()
    assert metadata["subject_types_supported"] == ["public", "pairwise"]


def test_id_token_hint_of_a_pairwise_client(browser, account, make_rp):
    pairwise = make_rp(subject_type="pairwise")
    tokens, _ = sign_in_for_tokens(browser, account, pairwise)
    # A hint naming the signed-in person (by the pairwise sub this client knows) is honoured silently.
    done = authorize(browser, pairwise, prompt="none", id_token_hint=tokens["id_token"])
    assert "code" in done.result, done.result
