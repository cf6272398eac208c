"""Malformed input at every endpoint: never a 500, never a traceback, and never a redirect to a URI that
was not validated. Protocol endpoints answer with RFC 6749 §5.2 JSON errors, pages with our error page."""

import base64
import io
import secrets
from urllib.parse import urlsplit

import pytest

from ..helpers import sign_in_action
from ._flow import POST_LOGOUT_URI
from ._flow import REDIRECT_URI
from ._flow import auth_params
from ._flow import authorize
from ._flow import authorize_url
from ._flow import sign_in_for_tokens

OAUTH_ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "unsupported_token_type",
    "invalid_token",
}
BIG = "A" * 100_000


FORM = "application/x-www-form-urlencoded"
CLIENT_CREDENTIALS = {"grant_type": "client_credentials"}
CODE_GRANT = {"grant_type": "authorization_code", "redirect_uri": REDIRECT_URI}


def _basic(rp) -> dict:
    credentials = base64.b64encode(f"{rp['client_id']}:{rp['client_secret']}".encode()).decode()
    return {"Authorization": "Basic " + credentials}


def _post_credentials(rp) -> dict:
    return {"client_id": rp["client_id"], "client_secret": rp["client_secret"]}


def _get(path: str, **kwargs):
    return lambda rp: ("GET", path, kwargs)


def _authorize(**overrides):
    """A valid authorization request with ``overrides`` (None drops a parameter)."""
    return lambda rp: ("GET", authorize_url(auth_params(rp, **overrides)[0]), {})


def _repeated(**extra):
    """A valid authorization request with ``extra`` appended raw (already encoded): repeats a parameter."""

    def build(rp):
        query = authorize_url(auth_params(rp)[0])
        return "GET", query + "".join(f"&{key}={value}" for key, value in extra.items()), {}

    return build


def _raw(**raw):
    """A valid authorization request whose ``raw`` parameters are replaced by raw (already encoded) values."""

    def build(rp):
        params, _ = auth_params(rp)
        query = authorize_url({k: v for k, v in params.items() if k not in raw})
        return "GET", query + "".join(f"&{key}={value}" for key, value in raw.items()), {}

    return build


def _post(path: str, data, authenticated: bool = False, **kwargs):
    """POST ``data`` (a dict, or raw bytes sent as a form); optionally with the client's Basic credentials."""

    def build(rp):
        options = dict(kwargs)
        options["data"] = data(rp) if callable(data) else data
        if isinstance(options["data"], bytes):
            options.setdefault("content_type", FORM)
        if authenticated:
            options["headers"] = {**_basic(rp), **options.get("headers", {})}
        return "POST", path, options

    return build


def _basic_header(value: str):
    return _post("/token", CLIENT_CREDENTIALS, headers={"Authorization": value})


def _basic_raw(credentials: bytes):
    return _basic_header("Basic " + base64.b64encode(credentials).decode())


# Each case: (id, build(rp) -> (method, path, test client kwargs), kind). ``kind`` is the correct answer:
# "page" an error page (4xx, no Location); "page-or-rp" that or an error redirect to the registered
# redirect_uri; "json" an RFC 6749 §5.2 error; "any-json" JSON, 200 or such an error; "401" a bearer
# challenge; "413"/"414"/"405" that status; "any-page" a page or redirect inside the provider; "ok" 200;
# "any" anything but a 5xx.
CASES = [
    ("authorize-garbage", _get("/authorize?%%%&&==&[]=]&a[b]=c&\x7f=1"), "page"),
    ("authorize-no-params", _get("/authorize"), "page"),
    ("authorize-dup-client-id", lambda rp: _repeated(client_id=rp["client_id"])(rp), "page"),
    ("authorize-dup-client-id-other", _repeated(client_id="other"), "page"),
    ("authorize-dup-redirect-uri", _repeated(redirect_uri="https%3A%2F%2Fevil.example%2F"), "page"),
    (
        "authorize-dup-redirect-uri-same",
        _repeated(redirect_uri="https%3A%2F%2Frp.example%2Fcb"),
        "page-or-rp",
    ),
    ("authorize-dup-state", _repeated(state="second"), "page-or-rp"),
    ("authorize-dup-response-type", _repeated(response_type="token"), "page-or-rp"),
    ("authorize-dup-scope", _repeated(scope="openid"), "page-or-rp"),
    ("authorize-huge-state", _authorize(state="s" * 100_000), "414"),
    ("authorize-huge-query", _repeated(junk="j" * 60_000), "414"),
    ("authorize-huge-scope", _authorize(scope="openid " + "profile " * 5_000), "414"),
    ("authorize-bad-utf8-unknown", _repeated(foo="%ff%fe", bar="%c3%28"), "any"),
    ("authorize-bad-utf8-state", _raw(state="%ff%fe", nonce="%c3%28"), "any"),
    ("authorize-bad-utf8-scope", _raw(scope="openid%20%ff%fe"), "any"),
    ("authorize-bad-utf8-redirect-uri", _raw(redirect_uri="https://rp.example/cb%ff"), "page"),
    (
        "authorize-bad-utf8-client-id",
        _get("/authorize?response_type=code&client_id=%ff%fe&redirect_uri=x"),
        "page",
    ),
    (
        "authorize-nul-client-id",
        _get("/authorize?response_type=code&client_id=%00abc&redirect_uri=x"),
        "page",
    ),
    ("authorize-nul-redirect-uri", _authorize(redirect_uri="https://rp.example/cb\x00"), "page"),
    (
        "authorize-crlf-redirect-uri",
        _authorize(redirect_uri="https://rp.example/cb\r\nSet-Cookie: x=1"),
        "page",
    ),
    ("authorize-unicode-redirect-uri", _authorize(redirect_uri="https://rp.example/кабинет"), "page"),
    ("authorize-quote-redirect-uri", _authorize(redirect_uri='https://rp.example/"\\'), "page"),
    ("authorize-unicode-response-type", _authorize(response_type="код"), "page-or-rp"),
    ("authorize-nul-response-type", _authorize(response_type="co\x00de"), "page-or-rp"),
    ("authorize-nul-nonce", _authorize(nonce="n\x00n", login_hint="\x00"), "any"),
    ("authorize-nul-state", _authorize(state="s\x00s"), "any"),
    ("authorize-unicode-scope", _authorize(scope="openid профиль \x00"), "any"),
    (
        "authorize-long-client-id",
        _get("/authorize?response_type=code&redirect_uri=x&client_id=" + "c" * 5000),
        "page",
    ),
    ("authorize-long-challenge", _authorize(code_challenge="c" * 1000), "page-or-rp"),
    ("authorize-bad-max-age", _authorize(max_age="9" * 400), "page-or-rp"),
    ("authorize-bad-prompt", _authorize(prompt="\xff\x00"), "page-or-rp"),
    ("authorize-long-id-token-hint", _authorize(id_token_hint="e" * 6_000), "page-or-rp"),
    ("authorize-hint-bad-b64", _repeated(id_token_hint="%ff.%fe.%00"), "page-or-rp"),
    ("authorize-post-json", lambda rp: ("POST", "/authorize", {"json": auth_params(rp)[0]}), "page"),
    ("authorize-post-huge-body", _post("/authorize", {"state": BIG}), "413"),
    ("authorize-post-many-parts", _post("/authorize", {f"k{i}": "v" for i in range(500)}), "page"),
    ("authorize-post-bad-utf8", _post("/authorize", b"client_id=%ff%fe&response_type=%c3%28"), "page"),
    ("continue-random", _get("/authorize/continue/" + secrets.token_urlsafe(12)), "page"),
    ("continue-long", _get("/authorize/continue/" + "x" * 5000), "page"),
    ("token-get", _get("/token"), "405"),
    ("token-empty", _post("/token", {}), "json"),
    ("token-garbage", _post("/token", b"%%%&&==&\x00\xff"), "json"),
    (
        "token-bad-utf8-form",
        _post("/token", b"grant_type=authorization_code&code=%ff%fe&redirect_uri=%c3%28", True),
        "json",
    ),
    (
        "token-bad-utf8-client",
        _post("/token", b"grant_type=client_credentials&client_id=%ff%fe&client_secret=%00"),
        "json",
    ),
    ("token-bad-utf8-query", _post("/token?grant_type=%ff%fe", {"code": "x"}), "json"),
    (
        "token-nul-client-id",
        _post("/token", {"grant_type": "authorization_code", "client_id": "a\x00b", "code": "x"}),
        "json",
    ),
    (
        "token-nul-code",
        _post("/token", {**CODE_GRANT, "code": "a\x00b"}, True),
        "json",
    ),
    (
        "token-nul-refresh",
        _post("/token", {"grant_type": "refresh_token", "refresh_token": "a\x00b"}, True),
        "json",
    ),
    (
        "token-huge-code",
        _post("/token", {"grant_type": "authorization_code", "code": "c" * 50_000}, True),
        "json",
    ),
    (
        "token-huge-refresh",
        _post("/token", {"grant_type": "refresh_token", "refresh_token": "r" * 50_000}, True),
        "json",
    ),
    ("token-huge-body", _post("/token", {"grant_type": "client_credentials", "scope": BIG}, True), "json"),
    (
        "token-json",
        _post("/token", None, True, json={"grant_type": "client_credentials", "scope": "patent"}),
        "json",
    ),
    (
        "token-json-secret-in-body",
        lambda rp: ("POST", "/token", {"json": {**CLIENT_CREDENTIALS, **_post_credentials(rp)}}),
        "json",
    ),
    (
        "token-text-plain",
        _post("/token", "grant_type=client_credentials", True, content_type="text/plain"),
        "json",
    ),
    (
        "token-multipart",
        _post("/token", lambda rp: {**CLIENT_CREDENTIALS, "f": (io.BytesIO(b"x"), "f.txt")}, True),
        "any-json",
    ),
    ("token-bad-json", _post("/token", "{not json", content_type="application/json"), "json"),
    (
        "token-dup-grant-type",
        _post("/token", b"grant_type=client_credentials&grant_type=authorization_code", True),
        "json",
    ),
    (
        "token-dup-code",
        _post("/token", b"grant_type=authorization_code&code=a&code=b&redirect_uri=x", True),
        "json",
    ),
    ("token-huge-authorization", _basic_header("Basic " + "Q" * 100_000), "json"),
    ("token-basic-not-base64", _basic_header("Basic %%%not-base64!!"), "json"),
    ("token-basic-empty", _basic_header("Basic "), "json"),
    ("token-basic-no-colon", _basic_raw(b"nocolon"), "json"),
    ("token-basic-bad-utf8", _basic_raw(b"\xff\xfe:\x00\xff"), "json"),
    ("token-basic-nul", _basic_raw(b"a\x00b:c\x00d"), "json"),
    ("token-basic-pct", _basic_raw(b"%ff%00:%zz"), "json"),
    ("token-bearer-auth", _basic_header("Bearer abc"), "json"),
    (
        "token-two-auth-methods",
        _post(
            "/token", lambda rp: {**CLIENT_CREDENTIALS, **_post_credentials(rp), "client_secret": "x"}, True
        ),
        "any-json",
    ),
    (
        "token-pkce-garbage",
        _post("/token", {**CODE_GRANT, "code": "x", "code_verifier": "\x00" * 50}, True),
        "json",
    ),
    ("userinfo-nul-token", _get("/userinfo", headers={"Authorization": "Bearer a\x00b"}), "401"),
    ("userinfo-huge-token", _get("/userinfo", headers={"Authorization": "Bearer " + "t" * 100_000}), "401"),
    ("userinfo-bad-utf8-form", _post("/userinfo", b"access_token=%ff%fe"), "401"),
    ("userinfo-put", lambda rp: ("PUT", "/userinfo", {}), "405"),
    ("revoke-nul", _post("/revoke", {"token": "a\x00b", "token_type_hint": "\x00"}, True), "any-json"),
    ("revoke-huge", _post("/revoke", {"token": "t" * 60_000}, True), "any-json"),
    ("revoke-bad-utf8", _post("/revoke", b"token=%ff%fe&client_id=%ff"), "json"),
    ("revoke-json", _post("/revoke", None, True, json={"token": "x"}), "json"),
    ("revoke-get", _get("/revoke"), "405"),
    ("introspect-nul", _post("/introspect", {"token": "\x00"}, True), "any-json"),
    ("introspect-bad-utf8", _post("/introspect", b"token=%ff%fe", True), "any-json"),
    (
        "introspect-nul-client",
        _post("/introspect", {"token": "x", "client_id": "\x00", "client_secret": "\x00"}),
        "json",
    ),
    (
        "logout-garbage-hint",
        _get(f"/logout?id_token_hint=garbage&post_logout_redirect_uri={POST_LOGOUT_URI}&state=s"),
        "page",
    ),
    (
        "logout-bad-utf8-hint",
        _get(f"/logout?id_token_hint=%ff%fe.%00.x&post_logout_redirect_uri={POST_LOGOUT_URI}"),
        "page",
    ),
    ("logout-huge-hint", _get("/logout?id_token_hint=" + "e" * 60_000), "414"),
    (
        "logout-nul-client-id",
        _get(f"/logout?client_id=%00&post_logout_redirect_uri={POST_LOGOUT_URI}"),
        "any-page",
    ),
    (
        "logout-bad-utf8-client-id",
        _post("/logout", f"client_id=%ff%fe&post_logout_redirect_uri={POST_LOGOUT_URI}".encode()),
        "any-page",
    ),
    ("logout-confirm-no-csrf", _post("/logout/confirm", {"id_token_hint": "\x00"}), "page"),
    ("consent-random", _get("/consent/?authz=%00%ff"), "page"),
    ("consent-post-random", _post("/consent/?authz=" + "x" * 3000, {"allow": "1"}), "page"),
    ("login-get-bad-authz", _get("/login?authz=%00%ff" + "z" * 3000), "any-page"),
    ("login-post-no-csrf", _post("/login", {"login": "\x00", "password": "\x00"}), "page"),
    ("login-post-bad-utf8", _post("/login", b"login=%ff%fe&password=%c3%28"), "page"),
    ("discovery-post", _post("/.well-known/openid-configuration", {}), "405-page"),
    ("jwks-bad-query", _get("/jwks.json?%ff=%fe&x=%00"), "ok"),
]


def _check(response, kind: str, rp: dict):
    status = response.status_code
    body = response.get_data(as_text=True)
    assert status < 500, (status, body[:500])
    assert "Traceback" not in body and 'File "' not in body
    location = response.headers.get("Location")
    if location is not None:
        assert "\r" not in location and "\n" not in location
    if kind == "ok":
        assert status == 200
        return
    if kind in ("405", "405-page"):
        assert status == 405
        if kind == "405":
            assert response.get_json()["error"]
        return
    if kind in ("413", "414"):
        assert status == int(kind), (status, location and location[:200])
        assert location is None
        return
    if kind == "any":
        return
    if kind == "401":
        assert status == 401 and response.headers["WWW-Authenticate"].lower().startswith("bearer")
        return
    if kind == "any-page":
        assert status in (200, 302, 400)
        if location:
            assert not location.startswith("https://rp.example/bye")
        return
    if kind in ("json", "any-json"):
        assert response.mimetype == "application/json", (status, body[:300])
        if kind == "any-json" and status == 200:
            return
        assert 400 <= status < 500, (status, body[:300])
        assert response.get_json()["error"] in OAUTH_ERRORS | {"invalid_request"}, body[:300]
        return
    if kind == "page-or-rp" and location is not None:
        assert _is_rp_error(location), location[:300]
        return
    assert 400 <= status < 500, (status, body[:300])
    assert location is None, location


def _is_rp_error(location: str | None) -> bool:
    if not location:
        return False
    parts = urlsplit(location)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" == REDIRECT_URI and "error=" in parts.query


@pytest.mark.parametrize("case_id, build, kind", CASES, ids=[c[0] for c in CASES])
def test_malformed_request(client, rp, case_id, build, kind):
    method, path, kwargs = build(rp)
    response = client.open(path, method=method, **kwargs)
    _check(response, kind, rp)


def test_malformed_requests_when_signed_in(browser, account, rp):
    """The browser-facing cases again with an SSO session, where the provider gets further (issues
    codes, ends sessions). One sign-in for all; every failing case is reported."""
    sign_in_for_tokens(browser, account, rp)
    failures = []
    for case_id, build, kind in CASES:
        if not case_id.startswith(("authorize", "consent", "continue", "logout")):
            continue
        method, path, kwargs = build(rp)
        response = browser.client.open(path, method=method, **kwargs)
        try:
            _check(response, kind, rp)
        except AssertionError as error:
            failures.append(f"{case_id}: {str(error)[:300]}")
        if browser.get("/").status_code != 200:
            sign_in_for_tokens(browser, account, rp)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "login, password",
    [
        ("77-0000001\x00", "x"),
        ("\x00", "\x00"),
        ("a" * 200, "b"),
        ("77-0000001", "p" * 2000),
        ("%ff", "\ufffd\x00"),
    ],
)
def test_malformed_sign_in_form(browser, account, rp, login, password):
    page = authorize(browser, rp).response
    path = sign_in_action(page.get_data(as_text=True))
    response = browser.submit(path, {"login": login, "password": password}, page=page)
    assert response.status_code in (200, 400), response.status_code
    body = response.get_data(as_text=True)
    assert "Traceback" not in body
    assert "Location" not in response.headers
    # The account still signs in afterwards (no lock, no broken state).
    done = browser.sign_in(account["login"], account["password"], page=browser.get(path))
    assert done.status_code == 302 and done.headers["Location"].startswith(REDIRECT_URI + "?")


def test_state_with_crlf_is_encoded_in_location(browser, account, rp):
    done = authorize(browser, rp, account, state="a\r\nSet-Cookie: x=1")
    location = done.response.headers["Location"]
    assert "\r" not in location and "\n" not in location
    assert done.result["state"] == "a\r\nSet-Cookie: x=1"
    assert not [v for k, v in done.response.headers if k.lower() == "set-cookie" and v.startswith("x=")]
