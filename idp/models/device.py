"""Device authorization grant (RFC 8628): one row per device authorization request. Both codes are
stored as SHA-256 digests (RFC 8628 §5.1/§5.2: the device_code is a bearer credential; the user_code is
short but lives minutes and its guessing is rate-limited at /device)."""

import time

from authlib.oauth2.rfc8628 import DeviceCredentialMixin
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from ..extensions import Model

# States: pending → approved | denied (the person at /device), approved → used (tokens issued once).
PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
USED = "used"


class DeviceCode(Model, DeviceCredentialMixin):
    __tablename__ = "device_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_code_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_code_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    scope: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[int] = mapped_column(Integer, nullable=False)
    # RFC 8628 §3.5: the polling interval, raised by 5 s at each slow_down.
    interval: Mapped[int] = mapped_column(Integer, nullable=False)
    last_polled_at: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=PENDING)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # The SSO session that approved it: the tokens belong to it (logout revokes them).
    sid: Mapped[str | None] = mapped_column(String(64))
    auth_time: Mapped[int | None] = mapped_column(Integer)
    amr: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[int | None] = mapped_column(Integer)
    # RFC 8707: the resource indicators of the request (space-separated), the audience of its tokens.
    resources: Mapped[str | None] = mapped_column(Text)

    def get_client_id(self) -> str:
        return self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_user_code(self) -> str:
        # Only its digest is kept; the grant looks the row up by device_code instead.
        return ""

    def is_expired(self, now: int | None = None) -> bool:
        return self.expires_at <= (now or time.time())
