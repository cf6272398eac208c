"""The staff console's own tables: Migration Center staff, their sessions, the audit log, and the tokens
that admit automated client registration (RFC 7591) and management (RFC 7592).

Staff are not migrants: a separate table, separate sessions (their own cookie, limited to /admin), and
a second factor that is never optional.
"""

from sqlalchemy import JSON
from sqlalchemy import Boolean
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from ..extensions import db

ROLE_OPERATOR = "operator"
ROLE_ADMIN = "admin"
ROLES = (ROLE_OPERATOR, ROLE_ADMIN)


class StaffUser(db.Model):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    full_name: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(80), nullable=False)
    must_change_password: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
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


class StaffSession(db.Model):
    """A signed-in staff member. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    last_seen_at: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[int] = mapped_column(Integer, nullable=False)
    ended_at: Mapped[int | None] = mapped_column(Integer)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(200))

    staff: Mapped[StaffUser] = relationship(lazy="joined")


class AuditEvent(db.Model):
    """Who did what, when, from where, and why. Never a password, token, secret or SNILS: the columns
    hold identifiers, and ``details`` is checked by ``services.audit.record``.

    No foreign keys: the log outlives what it mentions (a deleted client, a removed staff member), so
    the actor's name is copied in."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    event: Mapped[str] = mapped_column(String(48), nullable=False, index=True)
    actor_type: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str | None] = mapped_column(String(64), index=True)
    account_id: Mapped[int | None] = mapped_column(Integer, index=True)
    client_id: Mapped[str | None] = mapped_column(String(64), index=True)
    ip: Mapped[str | None] = mapped_column(String(45))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)


class InitialAccessToken(db.Model):
    """Admits one or more dynamic client registrations (RFC 7591 §3: "initial access token")."""

    __tablename__ = "initial_access_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # SHA-256 of a 256-bit random token, shown once to the admin who issued it.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    label: Mapped[str] = mapped_column(String(100), nullable=False)
    single_use: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[int] = mapped_column(Integer, nullable=False)
    used_at: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    revoked_at: Mapped[int | None] = mapped_column(Integer)


class RegistrationAccessToken(db.Model):
    """The bearer token a dynamically registered client manages its registration with (RFC 7592 §1.2)."""

    __tablename__ = "registration_access_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    # SHA-256 of a 256-bit random token, returned once in the registration response.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    issued_at: Mapped[int] = mapped_column(Integer, nullable=False)
    revoked_at: Mapped[int | None] = mapped_column(Integer)

    def check_client(self, client) -> bool:
        # authlib's ClientConfigurationEndpoint: the token is valid for its own client only.
        return self.client_id == client.get_client_id()
