"""The migrations: the schema they build is the one the models describe, and the data migrations carry
existing rows (both ways where they can), on SQLite (batch mode) and on PostgreSQL (whichever database
the suite runs on)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade
from flask_migrate import upgrade
from sqlalchemy import create_engine
from sqlalchemy import inspect
from sqlalchemy import make_url
from sqlalchemy import text

from idp import create_app
from idp.extensions import db
from idp.extensions import migrate

from ..conftest import DATABASE_URL
from ..conftest import IS_POSTGRES
from ..conftest import make_config

BEFORE_FLOWS = "558e31015e0f"
REGISTERED_DYNAMICALLY = "7d98fbb7cc03"


def test_models_match_the_migrations(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


@pytest.fixture
def scratch_app(_database, tmp_path):
    """An app on an empty database of its own, to migrate up and down."""
    if IS_POSTGRES:
        server = make_url(_database)
        name = f"idp_migrate_{os.getpid()}_{secrets.token_hex(3)}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = server.set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp_path / 'migrate.sqlite3'}"
    app = create_app(make_config(database={"url": url}))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if IS_POSTGRES:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


ACCOUNT = (
    "INSERT INTO accounts (id, sub, login, surname, surname_folded, given_name, phone, locale, "
    "password_hash, password_changed_at, must_change_password, temporary_password_expires_at, "
    "reset_password_hash, reset_password_expires_at, status, failed_logins, locked_until, created_at, "
    "updated_at) VALUES "
    "(:id, :sub, :login, 'Рахимов', 'рахимов', 'Алишер', '+79161234567', 'ru', 'own-hash', 100, :must, :tmp, "
    ":reset, :reset_until, 'active', 0, 0, 100, 150)"
)
STAFF = (
    "INSERT INTO staff_users (id, username, full_name, role, password_hash, must_change_password, "
    "totp_secret_encrypted, enabled, failed_logins, locked_until, created_at, updated_at) VALUES "
    "(:id, :username, 'Тест', 'operator', 'x', :must, 'sealed', :enabled, 0, 0, 100, 200)"
)


def _rows(sql: str) -> list[tuple]:
    return [tuple(row) for row in db.session.execute(text(sql))]


def test_flow_rows_carry_the_old_columns_both_ways(scratch_app):
    with scratch_app.app_context():
        upgrade(revision=BEFORE_FLOWS)
        accounts = [
            {
                "id": 1,
                "sub": "s1",
                "login": "L1",
                "must": True,
                "tmp": 5000,
                "reset": None,
                "reset_until": None,
            },
            {
                "id": 2,
                "sub": "s2",
                "login": "L2",
                "must": False,
                "tmp": None,
                "reset": "sms-hash",
                "reset_until": 6000,
            },
            {
                "id": 3,
                "sub": "s3",
                "login": "L3",
                "must": False,
                "tmp": None,
                "reset": None,
                "reset_until": None,
            },
        ]
        for values in accounts:
            db.session.execute(text(ACCOUNT), values)
        db.session.execute(text(STAFF), {"id": 1, "username": "new", "must": True, "enabled": True})
        db.session.execute(text(STAFF), {"id": 2, "username": "old", "must": False, "enabled": True})
        db.session.commit()

        upgrade()
        assert _rows(
            "SELECT account_id, staff_id, reason, state, created_at, expires_at, attempts "
            "FROM password_change_flows ORDER BY id"
        ) == [(1, None, "issued", "required", 100, 5000, 0), (None, 1, "enrolled", "required", 200, None, 0)]
        assert _rows("SELECT account_id, state, password_hash, created_at, expires_at FROM reset_flows") == [
            (2, "sent", "sms-hash", 150, 6000)
        ]
        columns = {c["name"] for c in inspect(db.engine).get_columns("accounts")}
        assert not columns & {"must_change_password", "reset_password_hash", "temporary_password_expires_at"}
        db.session.commit()

        downgrade(revision=BEFORE_FLOWS)
        assert _rows(
            "SELECT id, must_change_password, temporary_password_expires_at, reset_password_hash, "
            "reset_password_expires_at FROM accounts ORDER BY id"
        ) == [(1, True, 5000, None, None), (2, False, None, "sms-hash", 6000), (3, False, None, None, None)]
        assert _rows("SELECT id, must_change_password FROM staff_users ORDER BY id") == [
            (1, True),
            (2, False),
        ]
        assert "reset_flows" not in inspect(db.engine).get_table_names()
        db.session.commit()


def test_the_suite_database_is_at_the_newest_revision(app):
    with app.app_context(), db.engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        heads = ScriptDirectory.from_config(migrate.get_config()).get_heads()
    # One head: migrations written in parallel were put in a line before they landed.
    assert [current] == heads, DATABASE_URL


def test_existing_clients_count_as_admin_registered_unless_they_registered_themselves(app):
    with app.app_context():
        config = migrate.get_config()
        before = ScriptDirectory.from_config(config).get_revision(REGISTERED_DYNAMICALLY).down_revision
        downgrade(revision=before)
        try:
            with db.engine.begin() as conn:
                for client_id in ("by-admin", "by-itself"):
                    conn.execute(
                        text(
                            "INSERT INTO oauth2_clients (client_id, client_id_issued_at, "
                            "client_secret_expires_at, client_metadata, trusted, enabled) "
                            "VALUES (:id, 0, 0, '{}', FALSE, TRUE)"
                        ),
                        {"id": client_id},
                    )
                # Only RFC 7591 registration hands out registration access tokens.
                conn.execute(
                    text(
                        "INSERT INTO registration_access_tokens (client_id, token_hash, issued_at) "
                        "VALUES ('by-itself', 'digest', 0)"
                    )
                )
            upgrade(revision=REGISTERED_DYNAMICALLY)
            with db.engine.connect() as conn:
                rows = conn.execute(
                    text("SELECT client_id, dynamically_registered FROM oauth2_clients")
                ).all()
            assert {client_id: bool(dynamic) for client_id, dynamic in rows} == {
                "by-admin": False,
                "by-itself": True,
            }
        finally:
            upgrade()
            db.engine.dispose()


# 0.1.0's last migration: everything after it belongs to the release being written.
RELEASED_HEAD = "6bdba249b0d1"


def test_the_changelog_names_every_migration_of_the_release(app):
    """The "Upgrading" list of the newest release in CHANGELOG.md names each migration since the last
    release, so that an operator knows what `idp db upgrade` will do to the tables."""
    with app.app_context():
        script = ScriptDirectory.from_config(migrate.get_config())
    pending = [rev.revision for rev in script.iterate_revisions("heads", RELEASED_HEAD)]
    changelog = (Path(__file__).parents[2] / "CHANGELOG.md").read_text(encoding="utf-8")
    newest = changelog.split("\n## ")[1]
    upgrading = newest.split("### Upgrading", 1)[1]
    assert pending and RELEASED_HEAD not in pending
    assert [revision for revision in pending if revision not in upgrading] == []
