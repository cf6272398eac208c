"""Test helpers: a browser-like wrapper over Flask's test client that scrapes CSRF tokens, and PKCE."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
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
