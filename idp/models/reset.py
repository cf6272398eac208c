"""Password resets by SMS (``services.selfservice.reset``): a new temporary password that waits beside
the current one, so a stranger who knows the login and phone cannot lock the owner out.

    (request) ──limits──▶ queued ──the outbox sends the SMS──▶ sent ──its password signs in──▶ used
                            │                     └──the old password signs in, a newer reset,
                            │                        a password change, an operator──▶ void
                            └──a decoy, the phone's SMS limit or the budget spent at sending──▶ void

Every request within the limits writes one row, whatever matched (issue 10): a miss's is a decoy with no
account (``account_id`` NULL), which the outbox voids without sending anything, and which no password
can ever redeem (sign-in looks for an account's own rows only).

Past ``expires_at`` ([passwords] temporary_ttl) a ``sent`` password no longer signs in. Using it opens
a forced password change (``models.password``).
"""

from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from ..extensions import Model

# queued: asked for, its SMS not yet made (the outbox makes the password when it sends, so no password
# waits in the outbox); sent: its password works.
QUEUED, SENT, USED, VOID = "queued", "sent", "used", "void"


class ResetFlow(Model):
    __tablename__ = "reset_flows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # None for a decoy (a request that matched no account).
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True, index=True
    )
    state: Mapped[str] = mapped_column(String(10), nullable=False, default=SENT)
    # The keyed digest (services.selfservice.reset) of the password the SMS carried; "" while queued.
    password_hash: Mapped[str] = mapped_column(String(80), nullable=False)
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    # Wrong passwords tried at sign-in while this one waited.
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    done_at: Mapped[int | None] = mapped_column(Integer)
