"""What the model modules share: the lifecycle columns of a server-side session, and the count of rows
a bulk UPDATE or DELETE touched.

May import: SQLAlchemy. Must not import: anything of idp above the models.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from typing import cast

from sqlalchemy import CursorResult
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import Session
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import scoped_session


class SessionMixin:
    """A signed-in browser (a migrant's SSO session, a staff member's console session). The cookie holds
    a random token; only its SHA-256 is stored, so a stolen database yields no live cookie
    (``services.credentials``)."""

    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    last_seen_at: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[int] = mapped_column(Integer, nullable=False)
    ended_at: Mapped[int | None] = mapped_column(Integer)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(200))


def affected_rows(db: Session, statement: Any) -> int:
    """Execute an UPDATE or DELETE and return how many rows it matched. A conditional UPDATE that
    matched one row is how a claim (a code, a challenge, a counter slot) is won exactly once."""
    return cast(CursorResult[Any], db.execute(statement)).rowcount


@contextmanager
def keeping_loaded(db: Session | scoped_session) -> Iterator[None]:
    """Commits inside leave the rows this request has loaded or written as they are, instead of expiring
    them (SQLAlchemy's default), so what the request goes on to read of them costs no new SELECT.

    For a request that commits and then reads rows it has just read or written itself: the session, the
    account and the code of a sign-in were re-read after each commit, 9 of a code flow's 19 statements
    (issue 12). What another transaction changes after the commit is not seen, as it would not be a moment
    earlier; a request that must see it reads the row again on purpose."""
    session = db() if isinstance(db, scoped_session) else db
    expire = session.expire_on_commit
    session.expire_on_commit = False
    try:
        yield
    finally:
        session.expire_on_commit = expire
