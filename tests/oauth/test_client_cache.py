"""The per-process client cache (idp/oauth/client_cache.py, issue 12): it saves the client query on the
token endpoint, and a change to a client made through the console, the CLI or RFC 7592 takes effect at
once, not after ``[oauth] client_cache_ttl``; a change it cannot see (another process, SQL by hand)
never lets a token of a disabled client be used."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
from sqlalchemy import event
from sqlalchemy import text

from idp.extensions import db
from idp.oauth import client_cache
from idp.services import audit
from idp.services import registration

from ..staff import post_form
from ._flow import ISSUER
from ._flow import bearer
from ._flow import sign_in_for_tokens


def _client_credentials(client, rp: dict, secret: str | None = None):
    return client.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "profile"},
        auth=(rp["client_id"], secret or rp["client_secret"]),
    )


def _introspect(client, rp: dict, token: str):
    return client.post("/introspect", data={"token": token}, auth=(rp["client_id"], rp["client_secret"]))


class _Statements:
    """The SQL statements the app's engine runs while active."""

    def __init__(self, app):
        with app.app_context():
            self.engine = db.engine
        self.seen: list[str] = []

    def _record(self, conn, cursor, statement, *args):
        self.seen.append(statement)

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._record)

    def reading(self, table: str) -> list[str]:
        return [s for s in self.seen if s.lstrip().upper().startswith("SELECT") and f"FROM {table}" in s]


def _disable_by_hand(app, client_id: str) -> None:
    """What another process or host would do: the database changes, this process's cache does not know."""
    with app.app_context():
        db.session.execute(
            text("UPDATE oauth2_clients SET enabled = false WHERE client_id = :c"), {"c": client_id}
        )
        db.session.commit()


def test_the_token_endpoint_reads_the_client_once(app, client, rp):
    assert _client_credentials(client, rp).status_code == 200
    with _Statements(app) as statements:
        for _ in range(3):
            assert _client_credentials(client, rp).status_code == 200
    assert statements.reading("oauth2_clients") == []
    # A wrong secret is still refused when the client comes from the cache.
    assert _client_credentials(client, rp, secret="wrong").status_code == 401


@pytest.mark.config(oauth={"client_cache_ttl": 0})
def test_no_cache_reads_the_client_every_time(app, client, rp):
    assert _client_credentials(client, rp).status_code == 200
    with _Statements(app) as statements:
        assert _client_credentials(client, rp).status_code == 200
    assert len(statements.reading("oauth2_clients")) == 1
    _disable_by_hand(app, rp["client_id"])
    assert _client_credentials(client, rp).status_code == 401


def test_console_changes_take_effect_at_once(app, admin_client, rp):
    path = f"/admin/clients/{rp['client_id']}"
    assert _client_credentials(admin_client, rp).status_code == 200  # cached now
    rotated = post_form(admin_client, f"{path}/secret", {"secret-confirm": "y"}, page_path=path)
    assert rotated.status_code == 200
    assert _client_credentials(admin_client, rp).status_code == 401
    assert _client_credentials(admin_client, rp).status_code == 401  # and not re-cached as it was


def test_cli_changes_take_effect_at_once(app, client, rp):
    runner = app.test_cli_runner()
    assert _client_credentials(client, rp).status_code == 200
    changed = runner.invoke(args=["clients", "update", rp["client_id"], "--grant-type", "authorization_code"])
    assert changed.exit_code == 0, changed.output
    refused = _client_credentials(client, rp)
    assert refused.status_code in (400, 401) and refused.get_json()["error"] == "unauthorized_client"
    deleted = runner.invoke(args=["clients", "delete", rp["client_id"], "--yes"])
    assert deleted.exit_code == 0, deleted.output
    assert _client_credentials(client, rp).status_code == 401


def test_registration_changes_take_effect_at_once(app, client):
    with app.app_context():
        ctx = audit.Context(audit.Actor("cli", None, "tests"), None, int(time.time()))
        _, initial = registration.issue_initial_token(
            db.session, ctx, label="партнёр", ttl=3600, single_use=True
        )
        db.session.commit()
    metadata = {
        "client_name": "Портал партнёра",
        "redirect_uris": ["https://rp.example/cb"],
        "grant_types": ["authorization_code", "client_credentials"],
        "scope": "openid profile",
        "token_endpoint_auth_method": "client_secret_basic",
    }
    registered = client.post("/register", json=metadata, headers=bearer(initial)).get_json()
    rp = {"client_id": registered["client_id"], "client_secret": registered["client_secret"]}
    assert _client_credentials(client, rp).status_code == 200
    path = registered["registration_client_uri"][len(ISSUER) :]
    manage = bearer(registered["registration_access_token"])
    narrowed = {**metadata, "client_id": rp["client_id"], "grant_types": ["authorization_code"]}
    assert client.put(path, json=narrowed, headers=manage).status_code == 200
    assert _client_credentials(client, rp).get_json()["error"] == "unauthorized_client"
    assert client.delete(path, headers=manage).status_code == 204
    assert _client_credentials(client, rp).status_code == 401


def test_a_change_the_cache_cannot_see_never_lets_a_token_be_used(app, client, browser, account, rp):
    tokens, _ = sign_in_for_tokens(browser, account, rp)
    assert _client_credentials(client, rp).status_code == 200
    _disable_by_hand(app, rp["client_id"])
    # Within client_cache_ttl this process may still issue a token to the client it cached...
    issued = _client_credentials(client, rp)
    assert issued.status_code == 200
    # ...but no token of a disabled client is honoured where it is used.
    assert client.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    assert _introspect(client, rp, issued.get_json()["access_token"]).get_json() == {"active": False}


# -- the CORS origins (idp/oauth/cors.py), kept in the same cache ------------------------------------------


def _allowed(client, origin: str) -> bool:
    """Whether a preflight of ``origin`` at the token endpoint is allowed."""
    response = client.options("/token", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    return response.headers.get("Access-Control-Allow-Origin") == origin


class _Clock:
    """``time.monotonic`` of the cache, moved on by hand (instead of sleeping through the TTL)."""

    def __init__(self, monkeypatch):
        self.offset = 0.0
        monkeypatch.setattr(client_cache, "time", SimpleNamespace(monotonic=self.monotonic))

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


def test_cors_origins_are_read_once(app, client, rp):
    assert _allowed(client, "https://rp.example")
    with _Statements(app) as statements:
        for _ in range(3):
            assert _allowed(client, "https://rp.example")
            assert not _allowed(client, "https://stranger.example")
    assert statements.reading("oauth2_clients") == []


def test_a_new_clients_origin_is_allowed_at_once(app, client, admin_client, make_rp):
    assert _allowed(client, "https://rp.example") is False  # no client yet; the empty set is kept
    # Created in this process (as the CLI and the console do, through services.clients).
    make_rp(redirect_uris=["https://rp.example/cb"])
    assert _allowed(client, "https://rp.example")
    # Registered by RFC 7591.
    assert not _allowed(client, "https://partner.example")
    with app.app_context():
        ctx = audit.Context(audit.Actor("cli", None, "tests"), None, int(time.time()))
        _, initial = registration.issue_initial_token(
            db.session, ctx, label="партнёр", ttl=3600, single_use=True
        )
        db.session.commit()
    metadata = {"client_name": "Портал партнёра", "redirect_uris": ["https://partner.example:8443/cb"]}
    registered = client.post("/register", json=metadata, headers=bearer(initial))
    assert registered.status_code == 201, registered.get_data(as_text=True)
    assert _allowed(client, "https://partner.example:8443")
    # The CLI adds a redirect URI: its origin is allowed at once.
    client_id = registered.get_json()["client_id"]
    changed = app.test_cli_runner().invoke(
        args=["clients", "update", client_id, "--redirect-uri", "https://spa.example/cb"]
    )
    assert changed.exit_code == 0, changed.output
    assert _allowed(client, "https://spa.example") and not _allowed(client, "https://partner.example:8443")
    # The console disables it: no longer allowed.
    path = f"/admin/clients/{client_id}"
    disabled = post_form(
        admin_client, f"{path}/disable", {"state-confirm": "y", "state-reason": "тест"}, page_path=path
    )
    assert disabled.status_code == 302, disabled.get_data(as_text=True)[:500]
    assert not _allowed(client, "https://spa.example")


def _add_redirect_uri_by_hand(app, client_id: str, uri: str) -> None:
    """What another process or host would do: the database changes, this process's cache does not know."""
    with app.app_context():
        row = db.session.execute(
            text("SELECT client_metadata FROM oauth2_clients WHERE client_id = :c"), {"c": client_id}
        ).scalar_one()
        metadata = json.loads(row) if isinstance(row, str) else dict(row)
        metadata["redirect_uris"] = [*metadata["redirect_uris"], uri]
        db.session.execute(
            text("UPDATE oauth2_clients SET client_metadata = :m WHERE client_id = :c"),
            {"m": json.dumps(metadata), "c": client_id},
        )
        db.session.commit()


def test_a_change_made_elsewhere_is_seen_within_the_ttl(app, client, rp, monkeypatch):
    clock = _Clock(monkeypatch)
    assert _allowed(client, "https://rp.example") and not _allowed(client, "https://spa.example")
    _add_redirect_uri_by_hand(app, rp["client_id"], "https://spa.example/cb")
    _disable_by_hand(app, rp["client_id"])
    # Kept for client_cache_ttl (5 s): this process still answers from what it read.
    clock.offset = 4.5
    assert _allowed(client, "https://rp.example") and not _allowed(client, "https://spa.example")
    clock.offset = 5.5
    assert not _allowed(client, "https://rp.example")


@pytest.mark.config(oauth={"client_cache_ttl": 0})
def test_without_the_cache_origins_are_read_every_time(app, client, rp):
    assert _allowed(client, "https://rp.example")
    _add_redirect_uri_by_hand(app, rp["client_id"], "https://spa.example/cb")
    assert _allowed(client, "https://spa.example")
    with _Statements(app) as statements:
        assert _allowed(client, "https://rp.example")
    assert len(statements.reading("oauth2_clients")) == 1
