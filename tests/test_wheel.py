"""The wheel serves every page: built with `python -m build` from a copy of the sources (no compiled
catalogues in it), installed into a fresh virtualenv in a temporary folder outside the checkout, and run
from there as an operator would: `idp db upgrade`, `idp keys ensure`, `idp serve --production`.

What must be fresh is the wheel and where it is installed: the package's files (templates, static files,
migrations, catalogues) then come from the wheel or not at all (the test checks that `idp` is found in
the new virtualenv). What need not be fresh is installed once, in this virtualenv, and reused, because
downloading and unpacking it again would take most of a minute on a 2-core machine:

* the build runs without isolation, with this virtualenv's setuptools, wheel and Babel (the test extra
  pins what pyproject.toml's [build-system] requires, and a check below keeps Babel declared there);
* the new virtualenv sees this one's site-packages through a .pth file, after its own, and the test
  checks that they meet every requirement the wheel declares (what `pip check` would say)."""

from __future__ import annotations

import html
import importlib.metadata
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
import requests
from packaging.requirements import Requirement

from .processes import free_port
from .processes import wait_until_serving

# Its own SQLite database whatever the suite runs on: once is enough.
pytestmark = pytest.mark.once

ROOT = Path(__file__).resolve().parents[1]
# What `git status` ignores (.gitignore), plus the repository itself: none of it belongs in a build.
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "instance",
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    "build",
    "dist",
    ".pytest_cache",
    "artifacts",
    "*.mo",
)
FIND_IDP = "import importlib.util; print(importlib.util.find_spec('idp').origin)"
SECRET_KEY = "wheel-test-secret-key-of-enough-length-0123456789"


def _run(*args, cwd, env=None, timeout=180) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, args))}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    assert not list(source.rglob("*.mo"))
    requires = tomllib.loads((source / "pyproject.toml").read_text())["build-system"]["requires"]
    assert any(requirement.startswith("babel") for requirement in requires), "setup.py compiles with Babel"
    _run(
        sys.executable,
        "-m",
        "build",
        "--wheel",
        "--no-isolation",
        "--outdir",
        tmp_path / "dist",
        source,
        cwd=tmp_path,
    )
    [wheel] = (tmp_path / "dist").glob("idp-*.whl")
    return wheel


def _install(wheel: Path, venv: Path) -> None:
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=venv.parent)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", python]
    _run(*pip, "install", "--quiet", "--no-deps", "--no-index", wheel, cwd=venv.parent)
    [purelib] = (venv / "lib").glob("python3*/site-packages")
    (purelib / "zz_idp_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")


def _unmet(metadata: str) -> list[str]:
    """The wheel's requirements (Requires-Dist, extras aside) that this virtualenv does not meet."""
    unmet = []
    for line in metadata.splitlines():
        if not line.startswith("Requires-Dist: "):
            continue
        requirement = Requirement(line.removeprefix("Requires-Dist: "))
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed is None or not requirement.specifier.contains(installed, prereleases=True):
            unmet.append(f"{requirement} (installed: {installed})")
    return unmet


def test_a_wheel_installed_elsewhere_serves_every_page(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert {
        "idp/templates/login/login.html",
        "idp/static/idp.css",
        "idp/migrations/alembic.ini",
        "idp/translations/en/LC_MESSAGES/messages.mo",
    } <= names
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: ")]
    # The production server is a dependency; gunicorn is only the benchmark's comparison.
    assert any(line.startswith("Requires-Dist: granian") and "extra" not in line for line in requires)
    assert all("extra ==" in line for line in requires if line.startswith("Requires-Dist: gunicorn"))
    assert not _unmet(metadata)

    work = tmp_path / "operator"
    work.mkdir()
    venv = tmp_path / "venv"
    _install(wheel, venv)
    idp = venv / "bin" / "idp"
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    config = work / "config.toml"
    config.write_text(f'[server]\nissuer = "{issuer}"\n[database]\nurl = "sqlite:///{work}/idp.sqlite3"\n')
    env = {key: value for key, value in os.environ.items() if not key.startswith(("IDP_", "PYTHON", "XDG_"))}
    # Nothing may appear in HOME or the working directory (no control socket, pid file or metrics files).
    env.update(IDP_CONFIG=str(config), IDP_SERVER_SECRET_KEY=SECRET_KEY, HOME=str(work))
    # As systemd's Type=notify unit of the README: the server says when it listens.
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(str(tmp_path / "notify"))
    systemd.settimeout(60)

    where = _run(venv / "bin" / "python", "-c", FIND_IDP, cwd=work, env=env)
    assert where.startswith(str(venv)), where
    _run(idp, "db", "upgrade", cwd=work, env=env)
    assert "3 created" in _run(idp, "keys", "ensure", cwd=work, env=env)

    server = subprocess.Popen(
        [idp, "serve", "--production", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=work,
        env={**env, "NOTIFY_SOCKET": str(tmp_path / "notify")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_serving(server, issuer)
        assert systemd.recv(64) == b"READY=1"
        systemd.close()
        http = requests.Session()
        http.trust_env = False
        pages = {
            "/login": "Вход в личный кабинет иностранного гражданина",
            "/reset/": "Сброс пароля",
            "/recovery/": "Восстановление доступа",
            "/admin/login": "Вход для сотрудников",
        }
        for path, heading in pages.items():
            page = http.get(issuer + path, timeout=10)
            assert page.status_code == 200 and heading in page.text, (path, page.status_code)
        assert http.head(issuer + "/login", timeout=10).status_code == 200
        english = http.get(issuer + "/login", headers={"Accept-Language": "en"}, timeout=10)
        assert "Sign in to the personal account of a foreign citizen" in english.text
        # The reset page names its captcha image (a signed challenge in the URL); the wheel must draw it.
        image = re.search(r'id="captcha-image" src="([^"]+)"', http.get(issuer + "/reset/", timeout=10).text)
        assert image, "no captcha image on the reset page"
        captcha = http.get(issuer + html.unescape(image.group(1)), timeout=10)
        assert captcha.headers["Content-Type"] == "image/png" and captcha.content.startswith(b"\x89PNG")
        css = http.get(issuer + "/static/idp.css", timeout=10)
        assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css") and css.text
        meta = http.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
        assert meta["issuer"] == issuer
        jwks = http.get(meta["jwks_uri"], timeout=10).json()
        assert {key["alg"] for key in jwks["keys"]} == {"RS256", "ES256", "EdDSA"}
        # Secrets in a path or a query string must not reach the access log.
        http.get(issuer + "/recovery/link/LINK-SECRET-TOKEN", timeout=10)
        http.get(issuer + "/login?login_hint=QUERY-SECRET", timeout=10)
        # Without a proxy ([server] proxy_count = 0) no forwarded header is believed (server or app).
        forwarded = {
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil",
        }
        assert http.get(issuer + "/admin/login", headers=forwarded, timeout=10).status_code == 200
        # A worker that dies is replaced, and the new one serves.
        [worker] = _children(server.pid)
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while _children(server.pid) in ([], [worker]) and time.monotonic() < deadline:
            time.sleep(0.2)
        [replacement] = _children(server.pid)
        assert replacement != worker
        wait_until_serving(server, issuer)
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert '"GET /recovery/link/<token> HTTP/1.1" 400' in out and '"GET /login HTTP/1.1" 200' in out, out
    assert "SECRET" not in out + err
    assert "127.0.0.1 - - [" in out and "203.0.113.9" not in out, out
    # Without IDP_INSTANCE_PATH an installed package keeps its instance folder in the virtualenv.
    assert (venv / "var" / "idp-instance").is_dir()
    assert sorted(path.name for path in work.iterdir()) == ["config.toml", "idp.sqlite3"]


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started that still run (the server's workers)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return sorted(found)
