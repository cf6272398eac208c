"""Flow errors: what a service raises for a view (or a CLI command) to turn into a message.

Each error names what went wrong with a ``reason`` (and a ``field`` where a form has one); the words a
person reads are in ``idp.messages``, keyed by class and reason. Protocol errors are authlib's
``OAuth2Error`` subclasses and never pass through here.

May import: the standard library only.
"""

from __future__ import annotations


class IdpError(Exception):
    """Base of the errors a service raises for a view to turn into a message."""


class FieldError(IdpError):
    """Data for a form does not validate: ``field`` names the culprit and ``reason`` says why."""

    def __init__(self, field: str, reason: str, value: str | None = None):
        super().__init__(f"{field}: {reason}" + (f" ({value!r})" if value else ""))
        self.field = field
        self.reason = reason
        self.value = value


# -- signing in -------------------------------------------------------------------------------------------


class InvalidCredentialsError(IdpError):
    """Unknown login, wrong or expired password, blocked or locked account: one error for all, so the
    answer does not tell which (OWASP ASVS 2.2 / 3.2). ``reason`` ("wrong" or "locked") is for the
    operators' metrics only, never for the person signing in.

    For the audit log only (staff read it, the person never sees it): ``subject_id``, the account or
    staff member the login named (None when it named nobody); ``result``, what exactly failed
    ("unknown", "wrong_password", "locked", "inactive", "expired", "wrong_code"); ``locked_now``, this
    failure is the one that locked it."""

    def __init__(
        self,
        reason: str = "wrong",
        *,
        subject_id: int | None = None,
        result: str = "unknown",
        locked_now: bool = False,
    ):
        super().__init__(reason)
        self.reason = reason
        self.subject_id = subject_id
        self.result = result
        self.locked_now = locked_now


class PasswordPolicyError(IdpError):
    """A new password is refused; ``reason`` is one of ``services.credentials.PASSWORD_REASONS``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# -- data typed by staff, a CLI user or a registering client ---------------------------------------------


class AccountDataError(FieldError):
    """A new or changed account does not validate (``reason`` is a short English phrase, which the CLI
    prints as it is)."""


class StaffDataError(FieldError):
    """A new or changed staff member does not validate."""


class ClientDataError(FieldError):
    """A relying party's metadata does not validate (RFC 7591 §2); ``value`` is the URI at fault, if any."""


# Why the provider will not call a URL (``services.outbound``), in the English of the CLI, the RFC 7591
# error_description and the logs; the console words the same reasons in ``messages``.
UNSAFE_URL_EXPLANATIONS = {
    "syntax": "is not an absolute URL without a fragment",
    "userinfo": "must not contain a user name or password (user@host)",
    "scheme": "must use https (http only to a loopback host, in development or listed in [outbound] "
    "http_allowed_hosts)",
    "numeric_host": "spells an IP address in a non-standard numeric form",
    "host": "has a host name that is not a plain DNS name (percent-encoding, trailing dot, zone, IDNA)",
    "address": "points to a non-public address",
    "internal_name": "points to an internal host name (localhost, .local, .internal, ...)",
}


class UnsafeURLError(IdpError):
    """A URL the provider will not call; ``reason`` is a key of ``UNSAFE_URL_EXPLANATIONS``, ``network`` the
    non-public range an address fell in (for ``address``)."""

    def __init__(self, reason: str, message: str | None = None, *, network: str | None = None):
        explanation = UNSAFE_URL_EXPLANATIONS[reason] + (f" ({network})" if network else "")
        super().__init__(message or explanation)
        self.reason = reason
        self.network = network
        self.explanation = explanation

    def about(self, kind: str, url: str) -> UnsafeURLError:
        """The same refusal, with the field and the URL in its message (for the CLI and the logs)."""
        return UnsafeURLError(self.reason, f"{kind} {url!r} {self.explanation}", network=self.network)


# -- self-service flows -----------------------------------------------------------------------------------


class LimitError(IdpError):
    """A daily limit of the reset and recovery forms is reached (for this identifier, address or day)."""


class RecoveryInputError(FieldError):
    """What was typed into the recovery form is no identifier."""


class FlowExpiredError(IdpError):
    """The flow is unknown, used, failed or past its time; the user starts again."""


class CodeMismatchError(IdpError):
    """A wrong code; ``attempts_left`` more may be tried in this flow."""

    def __init__(self, attempts_left: int):
        super().__init__(f"{attempts_left} attempts left")
        self.attempts_left = attempts_left


class ResendLimitError(IdpError):
    """This flow has sent all the codes it may."""


# -- messages that could not leave ------------------------------------------------------------------------


class DeliveryError(IdpError):
    """A message was not accepted for delivery; the caller changes nothing and says «попробуйте позже».

    ``unknown``: no definite answer came (a timeout, a dropped connection, a garbled reply): the message
    may well arrive, so whatever it carries stays valid and every limit it counted against stays counted
    (issue 10: "unknown is not failed"); only a definite refusal gives the allowance back."""

    def __init__(self, message: str = "", *, unknown: bool = False):
        super().__init__(message)
        self.unknown = unknown


class SmsDeliveryError(DeliveryError):
    """The SMS gateway (or the file outbox) did not take the message."""


class MailDeliveryError(DeliveryError):
    """The SMTP server (or the file outbox) did not take the message."""


# -- the durable outbox (services.outbox) -----------------------------------------------------------------


class OutboxRetryError(IdpError):
    """An attempt to deliver an outbox message failed in a way another attempt may mend (no answer, a
    timeout, 5xx). Its message is stored as the row's ``last_error``: it must hold no secret."""


class OutboxRefusedError(IdpError):
    """The receiver refused the message, or may never be called: it fails at once, without retries. Its
    message is stored as the row's ``last_error``: it must hold no secret."""


class OutboxKindError(IdpError):
    """A message of a kind no handler is registered for."""
