"""The durable outbox: messages the provider owes to someone outside (a back-channel logout to a relying
party, a notification to a person), written in the transaction that caused them and delivered later by
the server processes (``services.outbox``).

A row is ``pending`` until a delivery succeeds (``delivered``) or gives up (``failed``). While a process
works on it, ``claimed_until`` holds the end of its lease: no other process claims it before then, and a
process that died mid-delivery only delays it until the lease runs out. ``payload`` is JSON and never
holds a secret in the clear (see ``services.outbox``).
"""

from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from ..extensions import Model

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
STATUSES = (PENDING, DELIVERED, FAILED)


class OutboxMessage(Model):
    __tablename__ = "outbox_messages"
    # What a claim scans: pending rows by due time.
    __table_args__ = (Index("ix_outbox_messages_status_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=PENDING)
    # Attempts started: counted when a row is claimed, so a delivery that kills its process still counts.
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[int] = mapped_column(Integer, nullable=False)
    claimed_until: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    delivered_at: Mapped[int | None] = mapped_column(Integer)
