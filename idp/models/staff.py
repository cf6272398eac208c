"""Migration Center staff and their console sessions.

Staff are not migrants: a separate table, separate sessions (their own cookie, limited to /admin), and
a second factor that is never optional.
"""

from sqlalchemy import Boolean
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from ..extensions import Model
from .base import SessionMixin
from .password import OwesPasswordChange

ROLE_OPERATOR = "operator"
ROLE_ADMIN = "admin"
ROLES = (ROLE_OPERATOR, ROLE_ADMIN)


class StaffUser(OwesPasswordChange, Model):
    __tablename__ = "staff_users"
    PASSWORD_CHANGE_COLUMN = "staff_id"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    full_name: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(80), nullable=False)
    # The RFC 6238 shared secret, sealed with AES-GCM under [staff] totp_key (see services/staff.py):
    # a copy of the database alone does not let anyone compute the codes.
    totp_secret_encrypted: Mapped[str] = mapped_column(String(200), nullable=False)
    # The last RFC 6238 time step a code was accepted for; a code for it or an earlier step is refused,
    # so an observed code cannot be replayed (RFC 6238 §5.2).
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[int] = mapped_column(Integer, nullable=False)
    last_sign_in_at: Mapped[int | None] = mapped_column(Integer)

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    def __repr__(self) -> str:
        return f"<StaffUser {self.username}>"


class StaffSession(SessionMixin, Model):
    """A signed-in staff member. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False, index=True
    )

    staff: Mapped[StaffUser] = relationship(lazy="joined")
