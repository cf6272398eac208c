"""The e-mail backends. SMTP runs the real smtplib client against a real local SMTP server (aiosmtpd),
in plain text, with STARTTLS and with implicit TLS, the certificate being a throw-away one for
127.0.0.1 that the client verifies."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import logging
import socket
import ssl
import tempfile
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from idp.config import MailSettings
from idp.errors import MailDeliveryError
from idp.services.mail import FileMailer
from idp.services.mail import Mail
from idp.services.mail import SmtpMailer
from idp.services.mail import make_mailer

from ..fake_smsaero import _self_signed

FROM = "cabinet@mmc.example"
USER = "relay-user"
SECRET = "Sm7p-pa55w0rd-not-for-logs"
MAIL = Mail(
    to="alisher@example.com",
    subject="Восстановление доступа к личному кабинету",
    text="Здравствуйте, Алишер!\nСсылка: http://localhost/recovery/link/abc",
    html=(
        "<p>Здравствуйте, Алишер!</p>"
        '<p><a href="http://localhost/recovery/link/abc">Установите новый пароль</a></p>'
    ),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connecting is refused at once."""
    return free_port()


class Received:
    """What an aiosmtpd server accepted: envelopes, whether each came over TLS, and who logged in."""

    def __init__(self):
        self.envelopes = []
        self.tls = []
        self.logins = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        # session.ssl is set by STARTTLS; an implicit-TLS connection is TLS from its transport up.
        self.tls.append(session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None)
        return "250 Message accepted for delivery"

    def messages(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(e.original_content, policy=email.policy.default) for e in self.envelopes
        ]


@contextlib.contextmanager
def smtp_server(*, starttls: bool = False, implicit_tls: bool = False, password: str | None = None):
    """A real SMTP server on 127.0.0.1 and a free port; yields ``(received, port, ca_path)``.

    ``starttls``: STARTTLS offered and required; ``implicit_tls``: TLS from the first byte (SMTPS);
    ``password``: AUTH required, for ``USER`` with that password (only over TLS)."""
    received = Received()
    ca_path, key_path = _self_signed(tempfile.mkdtemp(prefix="fake-smtp-"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ca_path, key_path)
    kwargs = {}
    if starttls:
        kwargs.update(tls_context=context, require_starttls=True)
    if implicit_tls:
        kwargs.update(ssl_context=context)
    if password is not None:

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login == USER.encode() and auth_data.password == password.encode()
            if ok:
                received.logins.append(auth_data.login.decode())
            # handled=False: aiosmtpd answers a failure with 535 itself.
            return AuthResult(success=ok, handled=ok)

        kwargs.update(authenticator=authenticator, auth_required=True)
    port = free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield received, port, ca_path
    finally:
        controller.stop()


def smtp_settings(port: int, **overrides) -> MailSettings:
    values = dict(
        backend="smtp",
        file_path="",
        from_address=FROM,
        host="127.0.0.1",
        port=port,
        security="none",
        timeout=5,
    )
    values.update(overrides)
    return MailSettings(**values)


@pytest.fixture
def trust(monkeypatch):
    """``trust(ca_path)``: make ssl.create_default_context() (what SmtpMailer uses) trust that certificate."""
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return lambda ca_path: monkeypatch.setenv("SSL_CERT_FILE", ca_path)


# --- the file backend -----------------------------------------------------------------------------


def test_file_backend_appends_one_json_object_per_message(tmp_path):
    path = tmp_path / "out" / "mail.jsonl"
    mailer = make_mailer(MailSettings(backend="file", file_path=str(path)))
    assert isinstance(mailer, FileMailer)
    mailer.send(MAIL)
    second = Mail(to="second@example.com", subject="Ваш пароль изменён", text="текст", html="<p>текст</p>")
    mailer.send(second)
    raw = path.read_text(encoding="utf-8")
    # Russian is written as is, not as \\u escapes: the outbox is read by people during development.
    assert "Восстановление доступа" in raw
    lines = [json.loads(line) for line in raw.splitlines()]
    assert [sorted(m) for m in lines] == [["html", "sent_at", "subject", "text", "to"]] * 2
    assert (lines[0]["to"], lines[0]["subject"], lines[0]["text"], lines[0]["html"]) == (
        MAIL.to,
        MAIL.subject,
        MAIL.text,
        MAIL.html,
    )
    assert [m["to"] for m in lines] == ["alisher@example.com", "second@example.com"]
    assert all(m["sent_at"].endswith("+00:00") for m in lines)


def test_file_backend_that_cannot_write_raises_a_delivery_error(tmp_path):
    (tmp_path / "mail.jsonl").mkdir()
    with pytest.raises(MailDeliveryError):
        FileMailer(MailSettings(backend="file", file_path=str(tmp_path / "mail.jsonl"))).send(MAIL)


# --- SMTP -----------------------------------------------------------------------------------------


def test_make_mailer_picks_smtp():
    assert isinstance(make_mailer(smtp_settings(25)), SmtpMailer)


def test_plain_smtp_to_a_loopback_relay_delivers_a_multipart_message():
    with smtp_server() as (received, port, _):
        SmtpMailer(smtp_settings(port)).send(MAIL)
    [envelope] = received.envelopes
    assert (envelope.mail_from, envelope.rcpt_tos) == (FROM, [MAIL.to])
    assert received.tls == [False]
    [message] = received.messages()
    assert (message["From"], message["To"], str(message["Subject"])) == (FROM, MAIL.to, MAIL.subject)
    assert message["Message-ID"].endswith("@mmc.example>")
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content().replace("\r\n", "\n").rstrip("\n") == MAIL.text
    assert parts[1].get_content().replace("\r\n", "\n").rstrip("\n") == MAIL.html
    assert all(p.get_content_charset() == "utf-8" for p in parts)


def test_starttls_delivers_over_a_verified_certificate(trust):
    with smtp_server(starttls=True) as (received, port, ca_path):
        trust(ca_path)
        SmtpMailer(smtp_settings(port, security="starttls")).send(MAIL)
    assert received.tls == [True]
    assert str(received.messages()[0]["Subject"]) == MAIL.subject


def test_starttls_with_login(trust, caplog):
    caplog.set_level(logging.DEBUG)
    with smtp_server(starttls=True, password=SECRET) as (received, port, ca_path):
        trust(ca_path)
        SmtpMailer(smtp_settings(port, security="starttls", username=USER, password=SECRET)).send(MAIL)
    assert received.logins == [USER] and received.tls == [True]
    assert SECRET not in caplog.text


def test_implicit_tls_delivers(trust):
    with smtp_server(implicit_tls=True) as (received, port, ca_path):
        trust(ca_path)
        SmtpMailer(smtp_settings(port, security="ssl")).send(MAIL)
    assert received.tls == [True] and len(received.envelopes) == 1


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_an_untrusted_certificate_is_refused(trust, security):
    with smtp_server(starttls=security == "starttls", implicit_tls=security == "ssl") as (received, port, _):
        trust(_self_signed(tempfile.mkdtemp(prefix="other-ca-"))[0])
        with pytest.raises(MailDeliveryError):
            SmtpMailer(smtp_settings(port, security=security)).send(MAIL)
    assert received.envelopes == []


def test_starttls_never_falls_back_to_plain_text():
    # The server offers no STARTTLS: the message must not go out in clear.
    with smtp_server() as (received, port, _), pytest.raises(MailDeliveryError):
        SmtpMailer(smtp_settings(port, security="starttls")).send(MAIL)
    assert received.envelopes == []


def test_wrong_password_is_a_delivery_error_and_is_never_logged(trust, caplog):
    caplog.set_level(logging.DEBUG)
    with smtp_server(starttls=True, password=SECRET) as (received, port, ca_path):
        trust(ca_path)
        wrong = SECRET + "-wrong"
        with pytest.raises(MailDeliveryError) as raised:
            SmtpMailer(smtp_settings(port, security="starttls", username=USER, password=wrong)).send(MAIL)
    assert received.envelopes == [] and received.logins == []
    assert raised.value.args == ("SMTPAuthenticationError",)
    assert wrong not in caplog.text and SECRET not in caplog.text
    assert "SMTP delivery failed: SMTPAuthenticationError" in caplog.text


def test_refused_connection_is_a_delivery_error(caplog):
    started = time.monotonic()
    with pytest.raises(MailDeliveryError) as raised:
        SmtpMailer(smtp_settings(closed_port())).send(MAIL)
    assert time.monotonic() - started < 1
    assert raised.value.args == ("ConnectionRefusedError",)
    assert [r.levelno for r in caplog.records if r.name == "idp.services.mail"] == [logging.ERROR]
    assert MAIL.to not in caplog.text


def test_a_server_that_never_answers_is_given_up_after_the_timeout():
    # The kernel accepts the connection (backlog), but no greeting ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        started = time.monotonic()
        with pytest.raises(MailDeliveryError):
            SmtpMailer(smtp_settings(silent.getsockname()[1], timeout=1)).send(MAIL)
        took = time.monotonic() - started
    assert 0.9 <= took < 2.5, took
