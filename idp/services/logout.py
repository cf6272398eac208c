"""Back-channel logout delivery: one logout token POSTed to one relying party (OpenID Connect
Back-Channel Logout 1.0 §2.5), with a bounded time per attempt and a few retries.

The token is built and the job scheduled by ``idp.oauth.logout``; this module only talks HTTP. The
token is a bearer credential for ending the user's sessions at that relying party: it is never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliverySettings:
    timeout: int
    retries: int
    # Seconds before the n-th retry: backoff * n. A relying party that is restarting gets a moment.
    backoff: float = 0.5


def deliver(
    uri: str,
    logout_token: str,
    *,
    settings: DeliverySettings,
    post: Callable[..., requests.Response] = requests.post,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """POST ``logout_token`` to ``uri``; True once the relying party answered 2xx (§2.8: 200 OK)."""
    attempts = settings.retries + 1
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            sleep(settings.backoff * (attempt - 1))
        try:
            # §2.5: form-encoded, one parameter. A redirect is not followed: the URI was registered exactly.
            response = post(
                uri,
                data={"logout_token": logout_token},
                timeout=(settings.timeout, settings.timeout),
                allow_redirects=False,
            )
        except requests.RequestException as error:
            failure = type(error).__name__
            log.warning("back-channel logout to %s: attempt %d/%d: %s", uri, attempt, attempts, failure)
            continue
        status = response.status_code
        response.close()
        if 200 <= status < 300:
            return True
        if status < 500:
            # §2.8: 400 means the relying party refused this token; sending it again changes nothing.
            log.warning("back-channel logout to %s: refused with HTTP %d", uri, status)
            return False
        log.warning("back-channel logout to %s: attempt %d/%d got HTTP %d", uri, attempt, attempts, status)
    log.error("back-channel logout to %s: gave up after %d attempts", uri, attempts)
    return False
