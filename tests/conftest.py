"""Shared fixtures. The database is SQLite by default, or the server named by IDP_TEST_DATABASE_URL
(``make test`` runs the suite once each way). The schema is built by the real migrations."""

from __future__ import annotations

import gc
import os
import secrets
import tempfile
import time

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine
from sqlalchemy import make_url
from sqlalchemy import text

from idp import create_app
from idp.config import PasswordsSettings
from idp.extensions import db
from idp.extensions import limiter
from idp.models.password import DONE
from idp.runtime import of
from idp.services import accounts
from idp.services import captcha
from idp.services import client_secrets
from idp.services import clients
from idp.services import keys

from .catalogues import compile_stale
from .fake_smsaero import gateway  # noqa: F401  (fixture)
from .helpers import Browser
from .helpers import SettableClock
from .helpers import settings_of
from .live import live_server  # noqa: F401  (fixture)
from .relying_parties import demo_rps  # noqa: F401  (fixture)
from .staff import admin_client  # noqa: F401  (fixtures)
from .staff import make_staff  # noqa: F401
from .staff import operator_client  # noqa: F401

_INSTANCE = tempfile.mkdtemp(prefix="idp-test-")
os.environ["IDP_INSTANCE_PATH"] = _INSTANCE
os.environ.pop("IDP_CONFIG", None)
DATABASE_URL = os.environ.get("IDP_TEST_DATABASE_URL") or f"sqlite:///{_INSTANCE}/test.sqlite3"
IS_POSTGRES = DATABASE_URL.startswith("postgresql")
# Cleared between tests in this order (children first); signing keys stay, they cost 60 ms to make.
TABLES = [
    "device_codes",
    "outbox_messages",
    "audit_events",
    "password_change_flows",
    "reset_flows",
    "staff_sessions",
    "staff_users",
    "initial_access_tokens",
    "registration_access_tokens",
    "recovery_flows",
    "captcha_uses",
    "daily_counters",
    "tokens",
    "used_jtis",
    "pushed_requests",
    "authorization_codes",
    "consents",
    "sso_sessions",
    "oauth2_clients",
    "accounts",
]
PASSWORD = "correct horse battery staple"
CAPTCHA_ANSWER = "24680"


def pytest_sessionstart(session) -> None:
    # A bare `pytest` on a clone where `make setup` never ran still has every language.
    compile_stale()
    # Each test builds an app (Flask, SQLAlchemy, Jinja, authlib: thousands of objects in reference cycles)
    # that only a full collection frees; with the default thresholds the collector ran a full pass over
    # every live object about every 15 tests, and all its passes took some 15 % of the suite's CPU
    # (measured on tests/flows: 92 s CPU before, 79 s after, twice the peak memory, ~0.5 GB).
    # The modules imported so far are never garbage: frozen, no pass walks them again.
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def make_config(**sections) -> dict:
    config = {
        "server": {"environment": "development", "issuer": "http://localhost"},
        "database": {"url": DATABASE_URL},
        "passwords": {"bcrypt_rounds": 4},
        "login": {"rate_limit": "1000/minute"},
        # The test client keeps a request in flight until its answer is closed (werkzeug's default,
        # buffered=False), which most tests never do: the cap on pages in flight (idp.admission) is off
        # but where a test is about it; so is the rate of pages, which a test's requests back to back pass.
        "limits": {"form_rate_limit": "1000/minute", "pages_in_flight": 0, "pages_per_second": 0},
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config


@pytest.fixture(scope="session")
def _database():
    """On PostgreSQL, a database of this session's own (created next to the one named, dropped after),
    so two runs on one server, a developer's and a helper's, cannot wipe each other's rows."""
    global DATABASE_URL
    if not IS_POSTGRES:
        yield DATABASE_URL
        return
    server = make_url(DATABASE_URL)
    # A helper given its own names on a shared server sets IDP_TEST_DATABASE_PREFIX.
    prefix = os.environ.get("IDP_TEST_DATABASE_PREFIX", "idp_test")
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, DATABASE_URL = DATABASE_URL, server.set(database=name).render_as_string(hide_password=False)
    try:
        yield DATABASE_URL
    finally:
        DATABASE_URL = base
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def _schema(_database):
    app = create_app(make_config())
    with app.app_context():
        with db.engine.begin() as conn:
            for table in TABLES + ["signing_keys", "alembic_version"]:
                conn.execute(text(f"DROP TABLE IF EXISTS {table}" + (" CASCADE" if IS_POSTGRES else "")))
        upgrade()
        keys.ensure_keys(db.session, now=0)
        db.session.commit()
        db.engine.dispose()
    yield


@pytest.fixture
def app(_schema, request):
    marker = request.node.get_closest_marker("config")
    app = create_app(make_config(**(marker.kwargs if marker else {})), clock=SettableClock())
    app.config["TESTING"] = True
    with app.app_context():
        limiter.reset()
    yield app
    wipe_tables(app)


def wipe_tables(app) -> None:
    """Empty every table a test may have filled and drop the app's connections (its key change
    listener's too, on PostgreSQL)."""
    of(app).keys.stop_listening()
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))
        db.engine.dispose()


@pytest.fixture
def clock(app):
    """The app's clock, stopped at the test's start: ``clock.now`` is what the app sees as the current
    time until the test sets it."""
    clock = of(app).clock
    clock.now = int(time.time())
    return clock


@pytest.fixture
def known_captcha(monkeypatch):
    """Every captcha challenge (its image and its sound) asks for ``CAPTCHA_ANSWER``, the live server's too
    (it runs in this process)."""
    monkeypatch.setattr(captcha, "new_answer", lambda seed, length=captcha.LENGTH: CAPTCHA_ANSWER)
    return CAPTCHA_ANSWER


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def browser(app):
    return Browser(app.test_client())


def _create_account(app, login="77-0000001", password=PASSWORD, temporary=False, **extra):
    from idp.services import passwords

    with app.app_context():
        settings = PasswordsSettings(bcrypt_rounds=4, temporary_ttl=259200)
        values = dict(
            phone="+79161234567",
            surname="Рахимов",
            given_name="Алишер",
            middle_name="Бахтиёрович",
            email=None,
            snils=None,
            locale="ru",
        )
        values.update(extra)
        account, temp = accounts.create_account(
            db.session, login=login, now=_now(), settings=settings, **values
        )
        if not temporary:
            # As if the owner had already replaced the temporary password with their own.
            account.password_hash = passwords.hash_password(password, 4)
            account.password_change.state, account.password_change.done_at = DONE, _now()
        db.session.commit()
        return {
            "id": account.id,
            "sub": account.sub,
            "login": account.login,
            "password": temp if temporary else password,
        }


def _now():
    import time

    return int(time.time())


@pytest.fixture
def account(app):
    return _create_account(app)


@pytest.fixture
def make_account(app):
    return lambda **kw: _create_account(app, **kw)


def _create_client(app, **overrides):
    with app.app_context():
        values = dict(
            name="Кабинет",
            redirect_uris=["https://rp.example/cb"],
            post_logout_redirect_uris=["https://rp.example/bye"],
            scope="openid profile phone email patent offline_access",
            public=False,
            trusted=True,
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            id_token_alg="RS256",
        )
        values.update(overrides)
        grant_types = values.pop("grant_types", None)
        data = clients.ClientInput(**values)
        if grant_types:
            data.grant_types = list(grant_types)
        client, secret = clients.create_client(
            db.session,
            data,
            limits=settings_of(app).oauth,
            now=_now(),
            outbound_policy=of(app).outbound.policy,
            sealing_key=client_secrets.sealing_key(settings_of(app).server.secret_key),
        )
        db.session.commit()
        return {"client_id": client.client_id, "client_secret": secret, **client.client_metadata}


@pytest.fixture
def rp(app):
    """A confidential, trusted relying party."""
    return _create_client(app)


@pytest.fixture
def make_rp(app):
    return lambda **kw: _create_client(app, **kw)
