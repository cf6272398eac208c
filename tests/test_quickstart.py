"""The README's quick start, followed literally: the commands of `make run` (read from the Makefile) as
processes of their own, then what a person does with what `idp demo` printed: open the authorize URL,
sign in with the temporary password, choose a new password, press «Разрешить», copy the code from the
address bar and run the README's curl command (read from README.md), which must answer an ID token.

Only the port and the files move: the server listens on a free port (the issuer says so) and the database
and instance folder live in a temporary directory, so a developer's `make run` is not disturbed.
`idp serve` is Flask's development server here (Flask's CLI ignores `app.run()`, so a server that never
starts is an easy regression); the production server is tests/test_wheel.py's."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urljoin
from urllib.parse import urlsplit

import pytest

from .helpers import csrf_token
from .live import follow_inside
from .live import http_session
from .processes import IDP
from .processes import free_port
from .processes import wait_until_serving

# Its own SQLite database whatever the suite runs on: once is enough.
pytestmark = pytest.mark.once

ROOT = Path(__file__).resolve().parents[1]
NEW_PASSWORD = "мой новый пароль для кабинета"
_PRINTED = {
    "login": re.compile(r"login: (\S+)"),
    "password": re.compile(r"temporary password: (\S+)"),
    "client_id": re.compile(r"client_id: (\S+)"),
    "verifier": re.compile(r"PKCE verifier (\S+)\)"),
    "authorize": re.compile(r"^\s+(http\S+/authorize\?\S+)$", re.M),
}
# The page's own form, not the language switcher (/language) above it.
_FORM = re.compile(r'<form method="post"(?! action="/language")(?: action="([^"]*)")?')


def make_run_commands() -> list[list[str]]:
    """The recipe of `make run`, each line split as the shell would, `$(BIN)/` made this virtualenv's."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    bin_dir = os.path.dirname(IDP) + "/"
    return [shlex.split(line.strip().replace("$(BIN)/", bin_dir)) for line in recipe.splitlines()]


def readme_token_request() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    [command] = [block for block in re.findall(r"```sh\n(.*?)```", quick_start, re.S) if "/token" in block]
    return command


def _submit(session, page, data: dict, origin: str):
    """Send the page's form as a browser does: to its action, or to the page itself."""
    action = _FORM.search(page.text)
    assert action, f"no form on {page.url}"
    url = urljoin(page.url, html.unescape(action.group(1) or page.url))
    response = session.post(
        url, data={"csrf_token": csrf_token(page.text), **data}, allow_redirects=False, timeout=10
    )
    return follow_inside(session, response, origin)


def test_the_readme_quick_start_ends_with_an_id_token(tmp_path):
    *steps, serve = make_run_commands()
    assert [step[1:] for step in steps] == [["db", "upgrade"], ["keys", "ensure"], ["demo"]]
    port = free_port()
    serve[serve.index("--port") + 1] = str(port)
    issuer = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "IDP_DATABASE_URL": f"sqlite:///{tmp_path / 'idp.sqlite3'}",
        "IDP_SERVER_ISSUER": issuer,
        "IDP_INSTANCE_PATH": str(tmp_path),
    }
    env.pop("IDP_CONFIG", None)
    printed = ""
    for step in steps:
        result = subprocess.run(step, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        printed = result.stdout
    found = {name: pattern.search(printed) for name, pattern in _PRINTED.items()}
    assert all(found.values()), printed
    demo = {name: match.group(1) for name, match in found.items()}
    # RFC 7636 §4.2: the printed challenge is BASE64URL(SHA256(verifier)) of the printed verifier.
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(demo["verifier"].encode()).digest()).rstrip(b"=").decode()
    )
    assert parse_qs(urlsplit(demo["authorize"]).query)["code_challenge"] == [challenge]
    assert f"code_challenge={challenge}&" in (ROOT / "README.md").read_text(encoding="utf-8")

    server = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(server, issuer)
        with http_session() as browser:
            page = follow_inside(
                browser, browser.get(demo["authorize"], allow_redirects=False, timeout=10), issuer
            )
            assert "Вход в личный кабинет иностранного гражданина" in page.text
            page = _submit(browser, page, {"login": demo["login"], "password": demo["password"]}, issuer)
            assert "Вы вошли с временным паролем" in page.text, page.url
            page = _submit(
                browser, page, {"old": demo["password"], "new": NEW_PASSWORD, "repeat": NEW_PASSWORD}, issuer
            )
            assert "Разрешить доступ к данным?" in page.text, page.url
            callback = _submit(browser, page, {"allow": "Разрешить"}, issuer)
        assert callback.status_code in (302, 303)
        address_bar = callback.headers["Location"]
        assert address_bar.startswith("http://127.0.0.1:8000/callback?")
        code = parse_qs(urlsplit(address_bar).query)["code"][0]

        command = readme_token_request().replace("http://127.0.0.1:5000", issuer)
        command = command.replace("code=CODE", f"code={code}").replace("CLIENT_ID", demo["client_id"])
        answer = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert answer.returncode == 0, answer.stderr
    tokens = json.loads(answer.stdout)
    assert tokens["token_type"] == "Bearer" and tokens["id_token"].count(".") == 2, tokens
