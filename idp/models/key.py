"""Signing keys, kept in the database so that every worker and host signs and publishes the same set.

A key is published in JWKS from its creation, signs from ``activates_at`` (so relying parties have
fetched it before they meet it: OIDC Core §10.1.1), and leaves JWKS at ``expires_at``, after the last
token it signed has expired."""

from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from ..extensions import Model


class SigningKey(Model):
    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    alg: Mapped[str] = mapped_column(String(16), nullable=False)
    private_jwk: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    activates_at: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[int | None] = mapped_column(Integer)
