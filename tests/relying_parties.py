"""The demo relying parties of clients/ served in-process over real HTTP, each on a loopback port of its
own, registered against the live provider with ``idp clients create --json`` — what ``make demo`` does
with processes.

``demo_rps`` gives the cabinet and the portal; ``receiver`` is a bare HTTP endpoint that records what
the provider POSTs to it (or answers slowly, to play a dead relying party).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field

import pytest
from flask import Flask
from werkzeug.serving import make_server
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response

from clients import cabinet
from clients import portal

from .live import _QuietHandler
from .live import follow_inside
from .live import sign_in


def bound_socket(port: int = 0) -> tuple[socket.socket, int]:
    """A listening socket on a free loopback port (or ``port``), bound before the app that needs its URL is
    built."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    return sock, sock.getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@contextmanager
def serving(app, sock: socket.socket):
    port = sock.getsockname()[1]
    server = make_server(
        "127.0.0.1", port, app, threaded=True, request_handler=_QuietHandler, fd=sock.fileno()
    )
    sock.close()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def register(provider_app: Flask, *args: str) -> dict:
    """``idp clients create ARGS --json`` against the provider; the parsed JSON line."""
    result = provider_app.test_cli_runner().invoke(args=["clients", "create", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def register_demo_rp(provider_app: Flask, url: str, name: str, scope: str) -> dict:
    return register(
        provider_app,
        "--name",
        name,
        "--scope",
        scope,
        "--trusted",
        "--redirect-uri",
        url + "/callback",
        "--post-logout-redirect-uri",
        url + "/logged-out",
        "--backchannel-logout-uri",
        url + "/backchannel-logout",
    )


@dataclass
class RunningRp:
    url: str
    app: Flask
    registration: dict

    @property
    def rp(self):
        return self.app.extensions["oidc_rp"]

    def sessions(self) -> int:
        return len(self.rp.store._sessions)


@dataclass
class DemoRps:
    cabinet: RunningRp
    portal: RunningRp


@pytest.fixture
def demo_rps(live_server):
    """The cabinet and the portal, registered against ``live_server`` and serving on their own ports."""
    started = {}
    with (
        _running(live_server, cabinet, "Личный кабинет", cabinet.SCOPE, started, "cabinet"),
        _running(live_server, portal, "Портал услуг", portal.SCOPE, started, "portal"),
    ):
        yield DemoRps(**started)


@contextmanager
def _running(live_server, module, name: str, scope: str, started: dict, key: str):
    sock, port = bound_socket()
    url = f"http://127.0.0.1:{port}"
    registration = register_demo_rp(live_server.app, url, name, scope)
    app = module.create_app({"REGISTRATION": registration, "SECRET_KEY": "test-" + key})
    with serving(app, sock):
        started[key] = RunningRp(url=url, app=app, registration=registration)
        yield


def sign_in_at(running: RunningRp, browser, provider_url: str, account: dict | None = None):
    """Click «Войти» at a demo RP and come back to its home page. With ``account`` the provider's
    sign-in form is filled; without, the provider must send the browser straight back (single sign-on)."""
    start = browser.get(running.url + "/login", allow_redirects=False, timeout=10)
    assert start.status_code == 302, start.text
    authorize = start.headers["Location"]
    if account is not None:
        back = sign_in(browser, provider_url, authorize, account["login"], account["password"])
    else:
        back = follow_inside(browser, browser.get(authorize, allow_redirects=False, timeout=10), provider_url)
    assert back.status_code == 302 and back.headers["Location"].startswith(running.url + "/callback?"), (
        back.status_code,
        back.url,
        back.text[:500],
    )
    return browser.get(back.headers["Location"], timeout=10)


# --- a bare back-channel logout endpoint ---------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    delay: float = 0.0
    status: int = 200
    received: list[dict] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        """The first ``count`` requests, waiting up to ``timeout`` seconds for them to arrive."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.received) >= count, f"{len(self.received)} of {count} requests arrived"
        return self.received[:count]


@contextmanager
def receiver(delay: float = 0.0, status: int = 200, port: int = 0):
    """An HTTP endpoint that records each POST (form, headers) and answers ``status`` after ``delay``; on
    ``port`` if given (a relying party that comes up where it was registered)."""
    sock, port = bound_socket(port)
    state = Receiver(url=f"http://127.0.0.1:{port}/backchannel", delay=delay, status=status)

    @Request.application
    def app(request):
        state.arrivals.append(time.monotonic())
        state.received.append(
            {
                "path": request.path,
                "method": request.method,
                "content_type": request.mimetype,
                "form": request.form.to_dict(flat=False),
            }
        )
        time.sleep(state.delay)
        return Response("", status=state.status)

    with serving(app, sock):
        yield state
