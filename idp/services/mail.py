"""E-mail delivery: a JSON-lines outbox for development, SMTP (the standard library's smtplib) for
production. Every message has a plain-text and an HTML part."""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol

from ..config import MailSettings
from ..errors import MailDeliveryError
from . import file_outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str


class MailSender(Protocol):
    def send(self, mail: Mail) -> None: ...


class FileMailer:
    """Appends ``{"to", "subject", "text", "html", "sent_at"}`` per line, under a file lock."""

    def __init__(self, settings: MailSettings):
        self.settings = settings

    def send(self, mail: Mail) -> None:
        record = {"to": mail.to, "subject": mail.subject, "text": mail.text, "html": mail.html}
        try:
            file_outbox.append(self.settings.file_path, record)
        except OSError as exc:
            raise MailDeliveryError("outbox not writable") from exc


class SmtpMailer:
    def __init__(self, settings: MailSettings):
        self.settings = settings

    def _message(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.from_address
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Message-ID"] = make_msgid(domain=self.settings.from_address.rpartition("@")[2] or None)
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        return message

    def send(self, mail: Mail) -> None:
        s = self.settings
        context = ssl.create_default_context()
        try:
            client: smtplib.SMTP
            if s.security == "ssl":
                client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with client:
                if s.security == "starttls":
                    client.starttls(context=context)
                if s.username:
                    client.login(s.username, s.password)
                client.send_message(self._message(mail))
        except (OSError, smtplib.SMTPException) as exc:
            # why: the class is enough to act on; server replies can echo addresses or credentials.
            unknown = _unknown(exc)
            outcome = "gave no definite answer" if unknown else "failed"
            log.error("SMTP delivery %s: %s", outcome, type(exc).__name__)
            raise MailDeliveryError(type(exc).__name__, unknown=unknown) from exc


def _unknown(exc: BaseException) -> bool:
    """No definite answer: a timeout or a connection lost after it was made (the server may have taken
    the message). A refusal in an SMTP reply, a refused connection or an unknown host is definite."""
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    if isinstance(exc, smtplib.SMTPException | ConnectionRefusedError | socket.gaierror):
        return False
    return isinstance(exc, TimeoutError | ConnectionError)


def make_mailer(settings: MailSettings) -> MailSender:
    return SmtpMailer(settings) if settings.backend == "smtp" else FileMailer(settings)
