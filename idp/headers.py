"""Request and response hygiene.

Requests: an over-long query string is refused. Responses (OWASP ASVS 14.4): no framing (clickjacking
on the sign-in and consent pages), no MIME sniffing, no referrer leaking codes or pending requests,
HSTS behind https."""

from urllib.parse import urlsplit

from flask import abort
from flask import request

from .runtime import settings

# MAX_CONTENT_LENGTH bounds bodies only. A longer query string is refused (414) before anything reads
# it: common proxies stop at 8 KB request lines, and /authorize and /logout echo state into Location.
MAX_QUERY_STRING = 8 * 1024
# object-src 'none': no plugin content (default-src would allow our own); base-uri 'none': an injected
# <base> cannot re-point relative URLs (issue 10; neither directive falls back to default-src for base-uri).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self' http: https:"
)


def refuse_long_query():
    if len(request.query_string) > MAX_QUERY_STRING:
        abort(414)


def add_security_headers(response):
    headers = response.headers
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if settings().server.is_https:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if response.mimetype == "text/html":
        # Pages carry CSRF tokens and personal data; keep them out of shared caches and history.
        headers.setdefault("Cache-Control", "no-store")
    return response


def allow_frames(response, urls: list[str]):
    """Let one page frame ``urls`` (the front-channel logout iframes): ``frame-src`` lists exactly their
    origins. Every other page frames nothing, and no page may be framed (frame-ancestors stays)."""
    if urls:
        origins = {f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}" for parts in map(urlsplit, urls)}
        policy = f"{CONTENT_SECURITY_POLICY}; frame-src {' '.join(sorted(origins))}"
        response.headers["Content-Security-Policy"] = policy
    return response
