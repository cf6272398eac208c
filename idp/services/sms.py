"""SMS delivery: a JSON-lines outbox for development, SMS Aero (``smsaero-api``) for production.

What is unsafe in smsaero-api 3.2 is neutralised here:

* its constructor validates the account e-mail with a DNS lookup, which fails offline: the check is
  switched to syntax-only and the client is built lazily, on first send;
* it puts the API key in the request URL and logs that URL at DEBUG: the ``smsaero`` logger is kept
  at INFO or above and our own messages never include the key;
* after a TLS error it retries other gateways over plain HTTP with the key in the URL: it is given a
  single https gateway, so there is nothing to fall back to.
"""

from __future__ import annotations

import logging
from typing import Protocol

from ..config import SmsSettings
from ..errors import SmsDeliveryError
from . import file_outbox

log = logging.getLogger(__name__)


class SmsSender(Protocol):
    def send(self, to: str, text: str) -> None: ...


def reachable(phone: str, allowed: tuple[str, ...]) -> bool:
    """Whether a phone (E.164) is in a country the sender may text ([sms] allowed_country_codes)."""
    return any(phone[1:].startswith(code) for code in allowed)


def _check_destination(to: str, allowed: tuple[str, ...]) -> None:
    if not to.startswith("+") or not to[1:].isdigit() or not reachable(to, allowed):
        # why: SMS pumping to premium foreign numbers is a known abuse of reset forms.
        raise SmsDeliveryError("destination country is not allowed")


class FileSender:
    """Appends ``{"to", "text", "sent_at"}`` per line; a file lock keeps lines whole across workers."""

    def __init__(self, settings: SmsSettings):
        self.settings = settings

    def send(self, to: str, text: str) -> None:
        _check_destination(to, self.settings.allowed_country_codes)
        try:
            file_outbox.append(self.settings.file_path, {"to": to, "text": text})
        except OSError as exc:
            raise SmsDeliveryError("outbox not writable") from exc


class SmsAeroSender:
    def __init__(self, settings: SmsSettings):
        self.settings = settings
        self._client = None

    def _api(self):
        if self._client is None:
            import email_validator
            from smsaero import SmsAero

            email_validator.CHECK_DELIVERABILITY = False
            logging.getLogger("smsaero").setLevel(max(logging.INFO, logging.getLogger("smsaero").level))
            self._client = SmsAero(
                self.settings.email,
                self.settings.api_key,
                signature=self.settings.signature,
                timeout=self.settings.timeout,
                url_gate=self.settings.gate,
            )
        return self._client

    def send(self, to: str, text: str) -> None:
        from smsaero import SmsAeroConnectionException
        from smsaero import SmsAeroException

        _check_destination(to, self.settings.allowed_country_codes)
        try:
            self._api().send_sms(int(to[1:]), text)
        except SmsAeroConnectionException as exc:
            # smsaero-api raises this for every requests error — a timeout, a reset connection, an
            # unreadable answer — so the gateway may have taken the message: unknown, not refused.
            log.error("SMS Aero gave no definite answer (timeout or broken reply); the SMS may arrive")
            raise SmsDeliveryError(type(exc).__name__, unknown=True) from exc
        except (SmsAeroException, ValueError, TypeError) as exc:
            # why: the class name is enough to act on; the exception text may carry gateway details.
            log.error("SMS Aero refused to deliver a message: %s", type(exc).__name__)
            raise SmsDeliveryError(type(exc).__name__) from exc


def make_sender(settings: SmsSettings) -> SmsSender:
    if settings.backend == "smsaero":
        return SmsAeroSender(settings)
    return FileSender(settings)
