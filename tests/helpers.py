"""Test helpers: a browser-like wrapper over Flask's test client that scrapes CSRF tokens, PKCE, and a
reader of what the SMS and mail file backends wrote."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

from sqlalchemy import URL
from sqlalchemy import create_engine
from sqlalchemy import make_url
from sqlalchemy import text

from idp.runtime import of

# The machine's PostgreSQL server, where a module that needs PostgreSQL whatever the pass makes a database of
# its own (private_postgres_database).
POSTGRES = os.environ.get("IDP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# `make test` runs the SQLite and the PostgreSQL pass side by side; each pass takes its own Redis
# databases on the machine's Redis: number + IDP_TEST_REDIS_OFFSET (the Makefile gives the PostgreSQL pass 8).
REDIS_OFFSET = int(os.environ.get("IDP_TEST_REDIS_OFFSET", "0"))
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
_CAPTCHA_TOKEN = re.compile(r'name="captcha_token" type="hidden" value="([^"]+)"')
_CAPTCHA_IMAGE = re.compile(r'<img id="captcha-image" src="([^"]+)"')
_CAPTCHA_AUDIO = re.compile(r'<a id="captcha-listen" href="([^"]+)"')


def redis_url(number: int) -> str:
    """Redis database ``number`` of this pass (see REDIS_OFFSET)."""
    return f"redis://127.0.0.1:6379/{number + REDIS_OFFSET}"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def captcha_token(html: str) -> str:
    match = _CAPTCHA_TOKEN.search(html)
    assert match, "no captcha challenge in the page"
    return match.group(1)


def captcha_urls(html: str) -> tuple[str, str]:
    """The page's captcha image and sound, as the browser would request them."""
    image, audio = _CAPTCHA_IMAGE.search(html), _CAPTCHA_AUDIO.search(html)
    assert image and audio, "no captcha image or sound in the page"
    return unescape(image.group(1)), unescape(audio.group(1))


def captcha_fields(client, html: str, answer: str | None, load_image: bool = True, **kwargs) -> dict:
    """The captcha part of a form as a browser sends it: the page's challenge and the digits typed (none
    when ``answer`` is None), after loading the image as the browser does."""
    if load_image:
        response = client.get(captcha_urls(html)[0], **kwargs)
        assert response.status_code == 200 and response.mimetype == "image/png"
    fields = {"captcha_token": captcha_token(html)}
    if answer is not None:
        fields["captcha"] = answer
    return fields


def drain_outbox(app, timeout: float = 15.0) -> None:
    """Deliver every due outbox message, and wait for those a running background loop (a live server's)
    holds, until none is pending or ``timeout`` seconds have passed."""
    from idp.extensions import db
    from idp.models.outbox import PENDING
    from idp.models.outbox import OutboxMessage

    deadline = time.monotonic() + timeout
    while True:
        of(app).background.deliver_due()
        with app.app_context():
            pending = db.session.query(OutboxMessage).filter_by(status=PENDING).count()
            db.session.remove()
        if not pending or time.monotonic() > deadline:
            return
        time.sleep(0.05)


@contextmanager
def outbox_reader(path: str | Path, app=None) -> Iterator[Callable[[], list[dict]]]:
    """``read()``: the messages a file backend wrote to the JSON-lines file ``path`` inside the block,
    oldest first. The file is removed on the way in and on the way out. With ``app``, the durable outbox
    delivers what is due first (the reset SMS leaves from it), as a server's background loop would."""
    path = Path(path)
    path.unlink(missing_ok=True)

    def read() -> list[dict]:
        if app is not None:
            drain_outbox(app)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    try:
        yield read
    finally:
        path.unlink(missing_ok=True)


class Browser:
    """Follows our own redirects, stops at the first redirect that leaves the provider."""

    def __init__(self, client, origin: str = "http://localhost"):
        self.client = client
        self.origin = origin

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def submit(self, path: str, data: dict, page=None):
        """POST a form of ours, with the CSRF token from ``page`` (or from GETting ``path``)."""
        html = (page or self.client.get(path)).get_data(as_text=True)
        return self.client.post(path, data={"csrf_token": csrf_token(html), **data})

    def follow(self, response, limit: int = 10):
        """Follow redirects inside the provider; return the last response (a page or an outside redirect)."""
        for _ in range(limit):
            if response.status_code not in (301, 302, 303):
                return response
            location = response.headers["Location"]
            if location.startswith(("http://", "https://")) and not location.startswith(self.origin + "/"):
                return response
            response = self.client.get(
                location[len(self.origin) :] if location.startswith(self.origin) else location
            )
        raise AssertionError("too many redirects")

    def authorize(self, **params):
        return self.follow(self.client.get("/authorize?" + urlencode(params)))

    def sign_in(self, login: str, password: str, page=None):
        """Fill the sign-in form shown in ``page`` (or at /login) and post it where its action says, as a
        browser does (the page may be /authorize's own answer), then follow the result."""
        path = sign_in_action(page.get_data(as_text=True)) if page is not None else "/login"
        return self.follow(self.submit(path, {"login": login, "password": password}, page=page))


_FORMS = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S)
_ACTION = re.compile(r'\baction="([^"]*)"')


def sign_in_action(html: str) -> str:
    """Where the sign-in form of ``html`` posts: /login with the parked request's ``authz``."""
    for attributes, body in _FORMS.findall(html):
        action = _ACTION.search(attributes)
        if action and 'name="password"' in body:
            return unescape(action.group(1))
    raise AssertionError("no sign-in form in the page")


def authz_of(page) -> str:
    """The id of the authorization request parked for the sign-in form of ``page`` (its action's
    ``authz``)."""
    [authz] = parse_qs(urlsplit(sign_in_action(page.get_data(as_text=True))).query)["authz"]
    return authz


def is_sign_in_page(response) -> bool:
    """The provider's sign-in form, whichever address answered it (/login, or /authorize itself)."""
    if response.status_code != 200:
        return False
    try:
        return sign_in_action(response.get_data(as_text=True)).split("?")[0].endswith("/login")
    except AssertionError:
        return False


def table_rows(app) -> dict[str, int]:
    """The number of rows of every table: what a request wrote, compared between a miss and a match."""
    # why: conftest imports this module, so the app's pieces are looked up at run time.
    from sqlalchemy import func
    from sqlalchemy import select

    from idp.extensions import db

    with app.app_context():
        return {
            table.name: db.session.scalar(select(func.count()).select_from(table))
            for table in db.metadata.sorted_tables
        }


def daily_counts(app) -> dict[str, int]:
    """The day's counts summed by kind (requests-ip, requests-login, sms-phone, sms-budget…): the login,
    identifier or phone a key names differs by case."""
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import DailyCounter

    totals: dict[str, int] = {}
    with app.app_context():
        for key, count in db.session.execute(select(DailyCounter.key, DailyCounter.count)):
            kind = key.split(":")[0]
            totals[kind] = totals.get(kind, 0) + count
    return totals


def settings_of(app):
    """The settings ``app`` was built with (``idp.runtime``)."""
    from idp.runtime import of

    return of(app).settings


class SettableClock:
    """The app's clock in tests (``create_app(clock=...)``): the wall clock until a test sets ``now``,
    then that time, in integer Unix seconds like the real one."""

    def __init__(self) -> None:
        self._now: int | None = None

    @property
    def now(self) -> int:
        return self._now if self._now is not None else int(time.time())

    @now.setter
    def now(self, value: int) -> None:
        self._now = int(value)

    def __call__(self) -> int:
        return self.now


@contextmanager
def private_postgres_database(prefix: str) -> Iterator[URL]:
    """A database of its own on the PostgreSQL server (``POSTGRES``), named ``<prefix>_<pid>_<random>``, with
    the schema built by the migrations and the signing keys; yields its URL and drops it after. For the
    modules that need PostgreSQL in the SQLite pass too (notifications, an outage through a proxy)."""
    # why: conftest imports this module, so the app's pieces are looked up at run time.
    from flask_migrate import upgrade

    from idp import create_app
    from idp.extensions import db
    from idp.services import keys

    from .conftest import make_config

    server = make_url(POSTGRES)
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name)
    try:
        setup = create_app(make_config(database={"url": url.render_as_string(hide_password=False)}))
        with setup.app_context():
            upgrade()
            keys.ensure_keys(db.session, now=0)
            db.session.commit()
            db.engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
