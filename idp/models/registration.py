"""The tokens that admit automated client registration (RFC 7591) and management (RFC 7592)."""

from sqlalchemy import Boolean
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from ..extensions import Model


class InitialAccessToken(Model):
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


class RegistrationAccessToken(Model):
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
