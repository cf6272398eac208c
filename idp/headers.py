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


# Each added unless the view set its own (allow_frames, a page's Cache-Control).
_ALWAYS = (
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
_HSTS = ("Strict-Transport-Security", "max-age=31536000")
# Pages carry CSRF tokens and personal data; keep them out of shared caches and history.
_NO_STORE = ("Cache-Control", "no-store")


def add_security_headers(response):
    headers = response.headers
    # One pass over the names already set, rather than Headers.setdefault's scan (and KeyError) for
    # each: this runs on every answer, the token endpoint's included (issue 12).
    present = {name.lower() for name, _ in headers.items()}
    headers.extend(security_headers(present, response.mimetype))
    return response


def security_headers(present: set[str], mimetype: str) -> list[tuple[str, str]]:
    """The headers added to an answer of ``mimetype`` that already has the headers named ``present``
    (lowercase): by ``add_security_headers``, and by the front of introspection and UserInfo
    (``idp.oauth.read_front``) to its own."""
    wanted = list(_ALWAYS)
    if settings().server.is_https:
        wanted.append(_HSTS)
    if mimetype == "text/html":
        wanted.append(_NO_STORE)
    return [(name, value) for name, value in wanted if name.lower() not in present]


def allow_frames(response, urls: list[str]):
    """Let one page frame ``urls`` (the front-channel logout iframes): ``frame-src`` lists exactly their
    origins. Every other page frames nothing, and no page may be framed (frame-ancestors stays)."""
    if urls:
        origins = {f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}" for parts in map(urlsplit, urls)}
        policy = f"{CONTENT_SECURITY_POLICY}; frame-src {' '.join(sorted(origins))}"
        response.headers["Content-Security-Policy"] = policy
    return response
