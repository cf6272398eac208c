"""Through a real TLS-terminating proxy, as in production: Debian's nginx, configured from the server block
of the README ("Production"), on https://127.0.0.1:<port> with a self-signed certificate, in front of
`idp serve --production` (a process of its own, two granian workers, `[server] proxy_count = 1`, rate
limits in Redis). In Chromium:

1. a migrant signs in with a temporary password, is made to change it and lands on the signed-in page;
2. a member of staff signs in to the console with a TOTP code and creates an account.

Every form goes through the CSRF check behind the proxy (idp/csrf.py): the test records what Chromium
sends with each form (no Referer; Origin and Sec-Fetch-Site). The session cookies are Secure, and HSTS
is sent."""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import subprocess
from pathlib import Path

import pyotp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.sync_api import expect

from ..helpers import redis_url
from ..helpers import settings_of
from ..processes import IDP
from ..processes import free_port
from ..processes import wait_until_serving
from ..staff import STAFF_PASSWORD
from ..staff import create_member
from .pages import screenshot
from .pages import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.config(staff={"totp_key": "tls-proxy-test-totp-key"})]

README = Path(__file__).resolve().parents[2] / "README.md"
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", redis_url(2))
SECRET_KEY = "tls-proxy-test-secret-key-0123456789-abcdefgh"
NEW_PASSWORD = "новый пароль через прокси"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def readme_nginx_block() -> str:
    """The README's server block (the first nginx block; a later one shows the change for an issuer
    with a path)."""
    blocks = re.findall(r"```nginx\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    [server] = [block for block in blocks if "server {" in block]
    return server


def _nginx_config(directory: Path, port: int, upstream: int, cert: Path, key: Path) -> str:
    """The README's block with this machine's addresses, ports and files, in an http block of its own."""
    block = readme_nginx_block()
    for production, here in (
        ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        ("/etc/ssl/idp/fullchain.pem", str(cert)),
        ("/etc/ssl/idp/privkey.pem", str(key)),
        ("/var/log/nginx/", f"{directory}/"),
        ("http://127.0.0.1:8000", f"http://127.0.0.1:{upstream}"),
    ):
        assert production in block, f"the README's nginx block no longer has {production!r}"
        block = block.replace(production, here)
    # Only what a stand-alone nginx needs that Debian's nginx.conf would give: its own pid, error log and
    # temporary files, kept in memory (its workers run as nobody and cannot enter pytest's folders).
    return (
        f"pid {directory}/nginx.pid;\nerror_log {directory}/error.log;\nevents {{}}\n"
        f"http {{\n  proxy_max_temp_file_size 0;\n  client_body_temp_path {directory}/body;\n"
        f"  proxy_temp_path {directory}/proxy;\n  fastcgi_temp_path {directory}/fastcgi;\n"
        f"  uwsgi_temp_path {directory}/uwsgi;\n  scgi_temp_path {directory}/scgi;\n{block}\n}}\n"
    )


@pytest.fixture
def behind_nginx(app, tmp_path):
    """The production server behind nginx; yields its https URL. Accounts and staff are made through
    ``app``, which shares the server's database and its TOTP sealing key."""
    cert, key = _certificate(tmp_path)
    port, upstream = free_port(), free_port()
    url = f"https://127.0.0.1:{port}"
    config = tmp_path / "idp.toml"
    config.write_text(
        f'[server]\nissuer = "{url}"\nproxy_count = 1\n'
        f'[database]\nurl = "{app.config["SQLALCHEMY_DATABASE_URI"]}"\n'
        f'[rate_limits]\nstorage_uri = "{REDIS_URL}"\n'
        f'[staff]\ntotp_key = "{settings_of(app).staff.totp_key}"\n'
        "[passwords]\nbcrypt_rounds = 4\n",
        encoding="utf-8",
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("IDP_")}
    env.update(IDP_CONFIG=str(config), IDP_SERVER_SECRET_KEY=SECRET_KEY, IDP_INSTANCE_PATH=str(tmp_path))
    server = subprocess.Popen(
        [IDP, "serve", "--production", "--host", "127.0.0.1", "--port", str(upstream), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    nginx_conf = tmp_path / "nginx.conf"
    nginx_conf.write_text(_nginx_config(tmp_path, port, upstream, cert, key), encoding="utf-8")
    proxy = subprocess.Popen(
        [
            NGINX,
            "-p",
            str(tmp_path),
            "-c",
            str(nginx_conf),
            "-e",
            str(tmp_path / "error.log"),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_serving(server, f"http://127.0.0.1:{upstream}")
        wait_until_serving(proxy, url, verify=str(cert))
        yield url
    finally:
        for process in (proxy, server):
            process.terminate()
        proxy.communicate(timeout=10)
        out, err = server.communicate(timeout=60)
    # The provider's access lines: the client's address from X-Forwarded-For, each page behind the proxy.
    assert re.search(r'^127\.0\.0\.1 - - .*"POST /login HTTP/1\.0" 302', out, re.M), out[-2000:] + err[-2000:]
    # nginx's own access log, in the README's format, without query strings.
    proxy_log = (tmp_path / "idp-access.log").read_text(encoding="utf-8")
    assert '"POST /admin/accounts/new HTTP/1.1" 200' in proxy_log and "?" not in proxy_log, proxy_log


def _record_forms(page, sent: list[dict]) -> None:
    """Add to ``sent`` the headers Chromium sends with each form it submits on ``page``."""
    page.on(
        "request", lambda request: sent.append(request.all_headers()) if request.method == "POST" else None
    )


def test_sign_in_and_a_staff_form_through_nginx(behind_nginx, app, make_account, new_page):
    url = behind_nginx
    account = make_account(login="77-4444001", temporary=True)

    # (1) A migrant: the temporary password, the forced change, the signed-in page.
    forms: list[dict] = []
    page = new_page(ignore_https_errors=True)
    _record_forms(page, forms)
    first = page.goto(url + "/login")
    assert first.headers["strict-transport-security"].startswith("max-age=")
    sign_in(page, account["login"], account["password"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Смена пароля")
    page.get_by_label("Старый пароль", exact=True).fill(account["password"])
    page.get_by_label("Новый пароль", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Повторно введите новый пароль").fill(NEW_PASSWORD)
    page.get_by_role("button", name="сменить пароль").click()
    expect(page).to_have_url(url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Вход в личный кабинет иностранного гражданина выполнен!"
    )
    screenshot(page, "tls-proxy-signed-in.png")
    # The server's issuer is https (``app``'s is not): its cookie is the __Host- one.
    cookie_name = "__Host-" + settings_of(app).session.cookie_name
    [session_cookie] = [c for c in page.context.cookies() if c["name"] == cookie_name]
    assert session_cookie["secure"] and session_cookie["httpOnly"] and session_cookie["sameSite"] == "Lax"
    # Issue 10: the __Host- prefix on https (Secure, Path=/, no Domain), and a browser-session cookie
    # unless «Запомнить меня на этом устройстве» was ticked.
    assert session_cookie["path"] == "/"
    assert session_cookie["expires"] == -1

    # (2) Staff: TOTP sign-in, then a console form.
    admin = create_member(app, "admin", "ivanova")
    page = new_page(ignore_https_errors=True)
    _record_forms(page, forms)
    page.goto(url + "/admin")
    page.get_by_label("Имя пользователя").fill(admin["username"])
    page.get_by_label("Пароль", exact=True).fill(STAFF_PASSWORD)
    page.get_by_label("Код из приложения-аутентификатора").fill(pyotp.TOTP(admin["totp_secret"]).now())
    page.get_by_role("button", name="Войти").click()
    expect(page).to_have_url(url + "/admin/clients")
    page.get_by_role("link", name="Учётные записи").click()
    page.get_by_role("link", name="Новая учётная запись").click()
    page.get_by_label("Логин (№ заявления на патент)").fill("77-4444002")
    page.get_by_label("Фамилия", exact=True).fill("Каримов")
    page.get_by_label("Имя", exact=True).fill("Рустам")
    page.get_by_label("Телефон из заявления").fill("+7 916 444-00-02")
    page.get_by_role("button", name="Создать и показать пароль").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Учётная запись создана")
    expect(page.locator("#issued-login")).to_have_text("774444002")
    [staff_cookie] = [c for c in page.context.cookies() if c["name"] == settings_of(app).staff.cookie_name]
    assert staff_cookie["secure"] and staff_cookie["httpOnly"] and staff_cookie["sameSite"] == "Strict"

    # What Chromium sent with the four forms: no Referer, and no Origin of another site.
    assert len(forms) == 4, forms
    for headers in forms:
        assert "referer" not in headers
        assert headers.get("origin") in ("null", url) and headers.get("sec-fetch-site") == "same-origin", (
            headers
        )
