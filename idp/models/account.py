"""A foreign citizen's account: identified by the opaque ``sub``, signed in by ``login``."""

import secrets
import unicodedata

from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import validates

from ..extensions import Model
from .password import OwesPasswordChange

STATUS_ACTIVE = "active"
STATUS_BLOCKED = "blocked"


def fold_name(name: str | None) -> str:
    """A name as people type it: case, ё/е and extra spaces do not matter (staff search by it, access
    recovery compares surnames by it). Kept in a column because SQLite's lower() folds ASCII only."""
    folded = unicodedata.normalize("NFC", name or "").casefold().replace("ё", "е")
    return " ".join(folded.split())


class AccountRules:
    """What the provider reads of an account beyond its columns, from its columns alone: shared by the
    row (``Account``) and the read-only copy that introspection and UserInfo load (``idp.oauth.live``)."""

    __slots__ = ()
    sub: str
    status: str
    surname: str
    given_name: str
    middle_name: str | None

    def get_user_id(self) -> str:
        # authlib's user protocol (RFC 9068 generator, introspection): the public subject, never the row id.
        return self.sub

    @property
    def is_active(self) -> bool:
        return self.status == STATUS_ACTIVE

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.surname, self.given_name, self.middle_name) if part)


def new_sub() -> str:
    # OIDC Core §8: a locally unique, never reassigned identifier. Random, so it reveals nothing
    # (not the login, phone, e-mail or SNILS) and survives a change of login.
    return secrets.token_urlsafe(24)


class Account(OwesPasswordChange, Model, AccountRules):
    __tablename__ = "accounts"
    PASSWORD_CHANGE_COLUMN = "account_id"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sub: Mapped[str] = mapped_column(String(64), unique=True, nullable=False, default=new_sub)
    login: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    surname: Mapped[str] = mapped_column(String(100), nullable=False)
    surname_folded: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    given_name: Mapped[str] = mapped_column(String(100), nullable=False)
    middle_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    snils: Mapped[str | None] = mapped_column(String(11), index=True)
    locale: Mapped[str] = mapped_column(String(10), nullable=False, default="ru")
    password_hash: Mapped[str] = mapped_column(String(80), nullable=False)
    password_changed_at: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=STATUS_ACTIVE)
    failed_logins: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[int] = mapped_column(Integer, nullable=False)

    @validates("surname")
    def _fold_surname(self, key: str, value: str) -> str:
        self.surname_folded = fold_name(value)
        return value

    def __repr__(self) -> str:
        return f"<Account {self.sub}>"
