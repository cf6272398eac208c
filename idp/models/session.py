"""Server-side SSO sessions. The browser holds only a random token; its SHA-256 is stored here, so the
session can be ended on the server (logout, password change, staff action) and a stolen database
does not yield live cookies. ``sid`` is the public id that goes into ID tokens (OIDC Front/Back-Channel
Logout)."""

from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from ..extensions import Model
from .account import Account
from .base import SessionMixin


class SsoSession(SessionMixin, Model):
    __tablename__ = "sso_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True
    )
    auth_time: Mapped[int] = mapped_column(Integer, nullable=False)
    amr: Mapped[str] = mapped_column(String(64), nullable=False, default="pwd")
    # The address of the latest request (``ip`` is the one it began at): the account page's "place".
    last_ip: Mapped[str | None] = mapped_column(String(45))

    account: Mapped[Account] = relationship(lazy="joined")

    @property
    def amr_list(self) -> list[str]:
        return self.amr.split()
