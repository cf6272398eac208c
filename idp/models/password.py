"""Forced password changes (``services.selfservice.password``): a row for each temporary password a
migrant or a staff member was given, until they choose their own.

    (temporary password issued) ──▶ required ──own password chosen──▶ done
                                       └──another temporary password──▶ superseded

Past ``expires_at`` the temporary password no longer signs in; the row stays ``required`` until an
operator issues another one (which supersedes it). Staff temporary passwords have no ``expires_at``.
"""

from typing import ClassVar

from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import declared_attr
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from ..extensions import Model

REQUIRED, DONE, SUPERSEDED = "required", "done", "superseded"
# Why a temporary password was given: an operator or `idp accounts create` (issued), an SMS reset that
# signed in (reset), a new staff member or new staff credentials (enrolled).
ISSUED, RESET, ENROLLED = "issued", "reset", "enrolled"


class PasswordChangeFlow(Model):
    __tablename__ = "password_change_flows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Exactly one of the two is set.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(16), nullable=False)
    state: Mapped[str] = mapped_column(String(10), nullable=False, default=REQUIRED)
    created_at: Mapped[int] = mapped_column(Integer, nullable=False)
    expires_at: Mapped[int | None] = mapped_column(Integer)
    # Wrong current passwords typed into the change form.
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    done_at: Mapped[int | None] = mapped_column(Integer)


class OwesPasswordChange:
    """What an account and a staff member share: the forced password change they may still owe, read
    from their open flow (``PASSWORD_CHANGE_COLUMN`` names their column of ``PasswordChangeFlow``)."""

    PASSWORD_CHANGE_COLUMN: ClassVar[str]

    @declared_attr
    def password_change(cls: type["OwesPasswordChange"]) -> Mapped[PasswordChangeFlow | None]:
        return relationship(
            PasswordChangeFlow,
            primaryjoin=(
                f"and_({cls.__name__}.id == foreign(PasswordChangeFlow.{cls.PASSWORD_CHANGE_COLUMN}), "
                f"PasswordChangeFlow.state == '{REQUIRED}')"
            ),
            viewonly=True,
            uselist=False,
            lazy="joined",
        )

    @property
    def must_change_password(self) -> bool:
        return self.password_change is not None and self.password_change.state == REQUIRED

    @property
    def temporary_password_expires_at(self) -> int | None:
        """When the temporary password stops signing in; None once the holder has their own."""
        flow = self.password_change
        return flow.expires_at if flow is not None and flow.state == REQUIRED else None
