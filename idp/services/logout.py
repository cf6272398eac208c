"""Back-channel logout delivery: one attempt to POST one logout token to one relying party (OpenID
Connect Back-Channel Logout 1.0 §2.5), and what its answer means for the outbox (``services.outbox``):
delivered, worth another attempt, or refused for good.

The token is signed from the stored claims just before the attempt (``idp.oauth.logout``); retries and
their backoff are the outbox's. The attempt goes through ``outbound_http.OutboundClient``: a URI or an
address the outbound rules refuse is never contacted, and the attempt has a total deadline and a
response size cap. The token is a bearer credential for ending the user's sessions at that relying
party: it is never logged, and the errors raised here (stored as the row's ``last_error``) never hold it.
"""

from __future__ import annotations

import logging

from ..errors import OutboxRefusedError
from ..errors import OutboxRetryError
from .outbound_http import OutboundClient
from .outbound_http import OutboundError
from .outbound_http import OutboundRefusedError

log = logging.getLogger(__name__)

# Answers that say "not now" rather than "no": the relying party is overloaded or restarting.
RETRY_STATUSES = frozenset({408, 425, 429})


def post(uri: str, logout_token: str, *, client: OutboundClient) -> None:
    """POST ``logout_token`` to ``uri`` once; return when the relying party answered 2xx (§2.8: 200 OK),
    else raise ``OutboxRetryError`` or ``OutboxRefusedError``."""
    try:
        # §2.5: form-encoded, one parameter. A redirect is not followed: the URI was registered exactly.
        status = client.post_form(uri, {"logout_token": logout_token}).status
    except OutboundRefusedError as error:
        log.error("back-channel logout to %s: refused by the outbound rules: %s", uri, error)
        raise OutboxRefusedError(f"{uri}: refused by the outbound rules: {error}") from error
    except OutboundError as error:
        failure = f"{type(error).__name__}: {error}"
        log.warning("back-channel logout to %s: %s", uri, failure)
        raise OutboxRetryError(f"{uri}: {failure}") from error
    if 200 <= status < 300:
        return
    if status >= 500 or status in RETRY_STATUSES:
        log.warning("back-channel logout to %s: HTTP %d", uri, status)
        raise OutboxRetryError(f"{uri}: HTTP {status}")
    # §2.8: 400 means the relying party refused this token; sending it again changes nothing.
    log.warning("back-channel logout to %s: refused with HTTP %d", uri, status)
    raise OutboxRefusedError(f"{uri}: refused with HTTP {status}")
