"""Test helpers: a browser-like wrapper over Flask's test client that scrapes CSRF tokens, PKCE, and a
reader of what the SMS and mail file backends wrote."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


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


@contextmanager
def outbox_reader(path: str | Path) -> Iterator[Callable[[], list[dict]]]:
    """``read()``: the messages a file backend wrote to the JSON-lines file ``path`` inside the block,
    oldest first. The file is removed on the way in and on the way out."""
    path = Path(path)
    path.unlink(missing_ok=True)

    def read() -> list[dict]:
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
            response = self.client.get(location[len(self.origin):] if location.startswith(self.origin) else location)
        raise AssertionError("too many redirects")

    def authorize(self, **params):
        return self.follow(self.client.get("/authorize?" + urlencode(params)))

    def sign_in(self, login: str, password: str, page=None):
        """Fill the sign-in form shown in ``page`` (or at /login) and follow the result."""
        path = "/login"
        if page is not None and page.request.path == "/login" and page.request.query_string:
            path += "?" + page.request.query_string.decode()
        return self.follow(self.submit(path, {"login": login, "password": password}, page=page))
