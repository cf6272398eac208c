"""Protocol state beyond codes and tokens: the replay cache of one-time JWT ids (client assertions,
RFC 7523 §3; DPoP proofs, RFC 9449 §11.1) and pushed authorization requests (RFC 9126)."""

from sqlalchemy import JSON
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from ..extensions import Model


class UsedJti(Model):
    """A JWT id seen once. The key is a digest of its kind, its issuer and the ``jti`` (so a row says
    nothing of whose it was); a second insert of the same key fails on the unique index, which is the
    replay check, atomic across processes and hosts. Rows are kept until the JWT could not be accepted
    anyway (its ``exp`` or the proof's ``iat`` window), then purged."""

    __tablename__ = "used_jtis"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    expires_at: Mapped[int] = mapped_column(Integer, nullable=False, index=True)


class PushedRequest(Model):
    """A pushed authorization request (RFC 9126 §2): its parameters, as the client posted them, behind a
    one-time ``request_uri`` of which only the digest is stored."""

    __tablename__ = "pushed_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_uri_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    client_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    params: Mapped[list] = mapped_column(JSON, nullable=False)
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    used_at: Mapped[int | None] = mapped_column(Integer)
