"""The full authorization code flow as a browser and a relying party make it, for the benchmark.

Not a script: ``bench.load`` uses it. One flow is one fresh ``requests`` session (no SSO cookie):
GET the authorization endpoint (PKCE S256, state, nonce) → follow the provider's redirects to its
sign-in page → POST the sign-in form (hidden fields such as the CSRF token included) → follow the
redirects back to the registered redirect URI, never requesting it → redeem the code at the token
endpoint with client_secret_basic and the PKCE verifier. Works unchanged against idp and against
node-oidc-provider (bench/node/server.mjs): both serve an HTML form with a password field. Every
request goes to the provider's own loopback origin; a redirect anywhere else is an error.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import statistics
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from html.parser import HTMLParser
from urllib.parse import parse_qs
from urllib.parse import urljoin
from urllib.parse import urlsplit

import requests

TIMEOUT = 60


class FlowError(Exception):
    """A step of the flow did not answer as a provider should."""


@dataclass(frozen=True)
class Provider:
    """One side of the benchmark, as a relying party knows it."""

    origin: str
    authorization_endpoint: str
    token_endpoint: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str


class _LoginForm(HTMLParser):
    """The first form with a password field: its action and its hidden inputs."""

    def __init__(self):
        super().__init__()
        self._form: dict | None = None
        self.found: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.found is None:
            self._form = {"action": attrs.get("action") or "", "hidden": {}, "password": False}
        elif tag == "input" and self._form is not None:
            if attrs.get("type") == "hidden" and attrs.get("name"):
                self._form["hidden"][attrs["name"]] = attrs.get("value") or ""
            if attrs.get("type") == "password":
                self._form["password"] = True

    def handle_endtag(self, tag):
        if tag == "form" and self._form is not None:
            if self._form["password"] and self.found is None:
                self.found = self._form
            self._form = None


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _same_origin(url: str, origin: str) -> bool:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" == origin


def _follow(session: requests.Session, response: requests.Response, provider: Provider) -> requests.Response:
    """Follow the provider's redirects; stop at a page, or at a redirect to the relying party."""
    for _ in range(10):
        if response.status_code not in (301, 302, 303, 307):
            return response
        location = urljoin(response.url, response.headers["Location"])
        if location.startswith(provider.redirect_uri):
            return response
        if not _same_origin(location, provider.origin):
            raise FlowError(f"redirect outside the provider: {location[:80]}")
        response = session.get(location, allow_redirects=False, timeout=TIMEOUT)
    raise FlowError("too many redirects")


def run(provider: Provider, login: str, password: str, session=None) -> dict:
    """One code flow; returns the token response. ``session`` defaults to a fresh requests session."""
    session = session or requests.Session()
    try:
        verifier, challenge = _pkce()
        state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        params = {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": provider.redirect_uri,
            "scope": provider.scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        page = _follow(
            session,
            session.get(
                provider.authorization_endpoint, params=params, allow_redirects=False, timeout=TIMEOUT
            ),
            provider,
        )
        if page.status_code != 200:
            raise FlowError(f"authorization: HTTP {page.status_code}")
        parser = _LoginForm()
        parser.feed(page.text)
        if parser.found is None:
            raise FlowError("no sign-in form")
        action = urljoin(page.url, parser.found["action"] or page.url)
        if not _same_origin(action, provider.origin):
            raise FlowError("sign-in form posts outside the provider")
        data = {**parser.found["hidden"], "login": login, "password": password}
        back = _follow(
            session, session.post(action, data=data, allow_redirects=False, timeout=TIMEOUT), provider
        )
        if back.status_code not in (302, 303):
            raise FlowError(f"sign-in: HTTP {back.status_code}")
        answer = {k: v[0] for k, v in parse_qs(urlsplit(back.headers["Location"]).query).items()}
        if answer.get("state") != state or "code" not in answer:
            raise FlowError(f"authorization response without code or state: {sorted(answer)}")
        token = session.post(
            provider.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": answer["code"],
                "redirect_uri": provider.redirect_uri,
                "code_verifier": verifier,
            },
            auth=(provider.client_id, provider.client_secret),
            timeout=TIMEOUT,
        )
        if token.status_code != 200:
            raise FlowError(f"token: HTTP {token.status_code} {token.text[:200]}")
        body = token.json()
        if not body.get("access_token") or not body.get("id_token"):
            raise FlowError("token response without access_token or id_token")
        return body
    finally:
        session.close()


@dataclass
class LoadResult:
    flows: int = 0
    errors: int = 0
    first_error: str | None = None
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else None

        return {
            "flows": self.flows,
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": round(self.seconds, 2),
            "flows_per_s": round(self.flows / self.seconds, 2) if self.seconds else 0,
            "latency_ms": {"p50": round(statistics.median(lat) * 1000, 1) if lat else None, "p99": pct(0.99)},
        }


def load(
    provider: Provider,
    accounts,
    password: str,
    *,
    concurrency: int,
    duration: float,
    max_flows: int | None = None,
) -> LoadResult:
    """``concurrency`` threads each run flows back to back until ``duration`` seconds have passed (or
    ``max_flows`` flows were started). ``accounts()`` gives the login for the next flow."""
    result = LoadResult()
    lock = threading.Lock()
    deadline = time.monotonic() + duration
    started = [0]

    def worker():
        while time.monotonic() < deadline:
            with lock:
                if max_flows is not None and started[0] >= max_flows:
                    return
                started[0] += 1
                login = accounts()
            t0 = time.perf_counter()
            try:
                run(provider, login, password)
            except (FlowError, requests.RequestException, ValueError, KeyError) as error:
                with lock:
                    result.errors += 1
                    result.first_error = result.first_error or f"{type(error).__name__}: {error}"[:300]
                continue
            elapsed = time.perf_counter() - t0
            with lock:
                result.flows += 1
                result.latencies.append(elapsed)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - t0
    return result
