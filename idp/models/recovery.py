"""Access recovery flows (the mos.ru way): a persisted state machine, as Ory Kratos keeps its flows.

    (start) ──▶ queued ──the outbox sends (or not)──▶ sent ──code or link──▶ verified ──new password──▶ done
                  ▲                                     │
                  └───────────── a new code ────────────┤
                                                        └──(expires_at, attempts)──▶ failed

Each recovery gives the browser a code flow (``channel`` "sms"): a real one when the account is texted,
or a decoy with no ``account_id`` that no code verifies (no match, several matches, an e-mail
delivery). It starts ``queued``: the durable outbox makes and sends its code (or, for a decoy, nothing)
and marks it ``sent``; a re-send makes it ``queued`` again. A code typed meanwhile is checked as in
``sent`` (the previous code stays valid until the new one is made). An e-mail delivery adds a link flow
(``channel`` "email"), written ``sent`` by the outbox when it makes the link, reached only through it.
The browser's pages therefore behave the same whatever matched and whichever channel was used.
"""

from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from ..extensions import Model

QUEUED, SENT, VERIFIED, DONE, FAILED = "queued", "sent", "verified", "done", "failed"
# A code flow still able to take a code: queued (its next code not yet made) or sent.
LIVE = (QUEUED, SENT)


class RecoveryFlow(Model):
    __tablename__ = "recovery_flows"

    id: Mapped[str] = mapped_column(String(43), primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str | None] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(10), nullable=False, default=SENT)
    # HMAC of the 6-digit SMS code, keyed with the server secret and the flow id; made by the outbox.
    code_hash: Mapped[str | None] = mapped_column(String(64))
    # SHA-256 of the e-mailed link token (256 bits of entropy); made by the outbox.
    link_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    codes_sent: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    verified_at: Mapped[int | None] = mapped_column(Integer)
    done_at: Mapped[int | None] = mapped_column(Integer)
