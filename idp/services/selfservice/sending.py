"""How the outbox sends what a self-service flow has just made: the SMS reset's temporary password, the
access recovery's SMS code and e-mailed link (issue 10).

A request only counts and writes an outbox message, so its answer is immediate and the same whatever
matched; the outbox handler makes the secret at sending time (no secret ever waits in the outbox, only
its digest is stored), commits, and then calls ``send_made``:

* sent, or **no definite answer** (a timeout, a garbled reply: the message may well arrive): what it
  carries stays valid and every count stays taken — unknown is not failed. Otherwise a gateway
  answering after its timeout would deliver unlimited messages, each carrying something that no longer
  works;
* a **definite refusal**: ``refused`` undoes what was made and gives the allowance back, that is
  committed, and the outbox is told (``OutboxRefusedError``: no retry; a retry would take the allowance
  again for a destination that is refused).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from ...config import Settings
from ...errors import DeliveryError
from ...errors import OutboxRefusedError
from ..sms import SmsSender
from . import limits

log = logging.getLogger(__name__)


def send_made(db: Session, send: Callable[[], None], *, refused: Callable[[], None], what: str) -> None:
    """Commit what was made, then ``send`` it (see above). ``what`` names the message in the log and in
    the outbox row's error (no secret in it)."""
    # Committed before the gateway is called: no row stays locked during the wait, and what was made is
    # valid from here whatever the gateway answers, short of a refusal.
    db.commit()
    try:
        send()
    except DeliveryError as error:
        if error.unknown:
            log.warning("%s: no definite answer; what it carries stays valid", what)
            return
        refused()
        db.commit()
        raise OutboxRefusedError(f"{what}: refused ({error})") from error


def send_sms(
    db: Session,
    sender: SmsSender,
    phone: str,
    text: str,
    *,
    taken_at: int,
    settings: Settings,
    refused: Callable[[], None],
    what: str,
) -> None:
    """``send_made`` for an SMS whose allowance ``limits.take_sms`` took at ``taken_at``: a refusal
    gives the phone's and the budget's counts back besides what ``refused`` undoes."""

    def undo() -> None:
        refused()
        limits.give_back_sms(db, phone, taken_at=taken_at, settings=settings)

    send_made(db, lambda: sender.send(phone, text), refused=undo, what=what)
