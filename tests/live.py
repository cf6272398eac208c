"""``live_server``: the provider served over real HTTP on 127.0.0.1, for relying parties and browsers
that cannot go through Flask's test client (authlib's requests client, Chromium, parallel clients).

The socket is bound before the app is built, so the issuer can name the real port; the server is
threaded, like a production WSGI server, so parallel requests really race in the database.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from urllib.parse import urljoin

import pytest
import requests
from flask import Flask
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server

from idp import create_app
from idp.extensions import limiter
from idp.runtime import of

from .helpers import csrf_token
from .helpers import sign_in_action


@dataclass
class LiveServer:
    url: str
    app: Flask


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        # why: one line per request drowns the output of a failing test; errors are still logged.
        pass


@pytest.fixture
def live_server(_schema, request):
    # why: conftest imports this module for the fixture, so its helpers are looked up at run time.
    from .conftest import make_config
    from .conftest import wipe_tables

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    marker = request.node.get_closest_marker("config")
    sections = dict(marker.kwargs) if marker else {}
    sections["server"] = {**sections.get("server", {}), "issuer": url, "environment": "development"}
    app = create_app(make_config(**sections))
    with app.app_context():
        limiter.reset()
    # The server works on its own duplicate of the descriptor; ours is closed at once.
    server = make_server(
        "127.0.0.1", port, app, threaded=True, request_handler=_QuietHandler, fd=sock.fileno()
    )
    sock.close()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    # Like `idp serve`: the background loop delivers the outbox and sweeps timed-out sessions.
    background = of(app).background
    if of(app).settings.outbox.enabled:
        background.start()
    try:
        yield LiveServer(url=url, app=app)
    finally:
        background.stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        wipe_tables(app)


# --- a browser over plain HTTP: requests with a cookie jar, following the provider's own redirects ---


def http_session() -> requests.Session:
    session = requests.Session()
    # why: the tests talk to 127.0.0.1 only; a proxy from the environment must not get in between.
    session.trust_env = False
    return session


def follow_inside(session: requests.Session, response: requests.Response, origin: str, limit: int = 10):
    """Follow redirects while they stay on ``origin``; return the page, or the redirect that leaves it
    (to a relying party, which is never fetched)."""
    for _ in range(limit):
        if response.status_code not in (301, 302, 303, 307, 308):
            return response
        location = urljoin(response.url, response.headers["Location"])
        if not location.startswith(origin + "/"):
            return response
        response = session.get(location, allow_redirects=False, timeout=10)
    raise AssertionError("too many redirects")


def sign_in(session: requests.Session, origin: str, authorization_url: str, login: str, password: str):
    """Open ``authorization_url`` as a browser would, fill the sign-in form, and return the last response:
    the redirect to the relying party, or a page of ours if something went wrong."""
    page = follow_inside(session, session.get(authorization_url, allow_redirects=False, timeout=10), origin)
    # The form is /authorize's own answer (idp.views.oauth.proceed); it posts to /login.
    assert page.status_code == 200, (page.status_code, page.url)
    response = session.post(
        urljoin(page.url, sign_in_action(page.text)),
        data={"csrf_token": csrf_token(page.text), "login": login, "password": password},
        allow_redirects=False,
        timeout=10,
    )
    return follow_inside(session, response, origin)
