"""self-service flows as rows: forced password changes and SMS resets leave the accounts and staff tables

Revision ID: b7e4c2d91f05
Revises: 558e31015e0f
Create Date: 2026-12-07 05:00:00

A forced password change was a flag (accounts.must_change_password with
accounts.temporary_password_expires_at, staff_users.must_change_password); a pending SMS reset was two
columns (accounts.reset_password_hash, accounts.reset_password_expires_at). Each becomes a row of its
flow's table, carrying the same values, and the columns go. Batch mode, so SQLite can drop columns.
"""

import sqlalchemy as sa
from alembic import op

revision = "b7e4c2d91f05"
down_revision = "558e31015e0f"
branch_labels = None
depends_on = None

accounts = sa.table(
    "accounts",
    sa.column("id", sa.Integer),
    sa.column("password_changed_at", sa.Integer),
    sa.column("updated_at", sa.Integer),
    sa.column("must_change_password", sa.Boolean),
    sa.column("temporary_password_expires_at", sa.Integer),
    sa.column("reset_password_hash", sa.String),
    sa.column("reset_password_expires_at", sa.Integer),
)
staff_users = sa.table(
    "staff_users",
    sa.column("id", sa.Integer),
    sa.column("updated_at", sa.Integer),
    sa.column("must_change_password", sa.Boolean),
)
changes = sa.table(
    "password_change_flows",
    sa.column("account_id", sa.Integer),
    sa.column("staff_id", sa.Integer),
    sa.column("reason", sa.String),
    sa.column("state", sa.String),
    sa.column("created_at", sa.Integer),
    sa.column("expires_at", sa.Integer),
    sa.column("attempts", sa.Integer),
    sa.column("done_at", sa.Integer),
)
resets = sa.table(
    "reset_flows",
    sa.column("account_id", sa.Integer),
    sa.column("state", sa.String),
    sa.column("password_hash", sa.String),
    sa.column("created_at", sa.Integer),
    sa.column("expires_at", sa.Integer),
    sa.column("attempts", sa.Integer),
    sa.column("done_at", sa.Integer),
)


def upgrade():
    op.create_table(
        "password_change_flows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("password_change_flows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_password_change_flows_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_password_change_flows_staff_id"), ["staff_id"], unique=False)
    op.create_table(
        "reset_flows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("password_hash", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reset_flows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reset_flows_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reset_flows_expires_at"), ["expires_at"], unique=False)

    conn = op.get_bind()
    owed = conn.execute(
        sa.select(accounts.c.id, accounts.c.password_changed_at, accounts.c.temporary_password_expires_at).where(
            accounts.c.must_change_password == sa.true()
        )
    ).all()
    for account_id, issued_at, expires_at in owed:
        conn.execute(
            changes.insert().values(
                account_id=account_id,
                reason="issued",
                state="required",
                created_at=issued_at,
                expires_at=expires_at,
                attempts=0,
            )
        )
    pending = conn.execute(
        sa.select(
            accounts.c.id, accounts.c.updated_at, accounts.c.reset_password_hash, accounts.c.reset_password_expires_at
        ).where(accounts.c.reset_password_hash.is_not(None))
    ).all()
    for account_id, updated_at, password_hash, expires_at in pending:
        conn.execute(
            resets.insert().values(
                account_id=account_id,
                state="sent",
                password_hash=password_hash,
                created_at=updated_at,
                expires_at=expires_at if expires_at is not None else updated_at,
                attempts=0,
            )
        )
    staff_owed = conn.execute(
        sa.select(staff_users.c.id, staff_users.c.updated_at).where(staff_users.c.must_change_password == sa.true())
    ).all()
    for staff_id, updated_at in staff_owed:
        conn.execute(
            changes.insert().values(
                staff_id=staff_id, reason="enrolled", state="required", created_at=updated_at, attempts=0
            )
        )

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("reset_password_expires_at")
        batch_op.drop_column("reset_password_hash")
        batch_op.drop_column("temporary_password_expires_at")
        batch_op.drop_column("must_change_password")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_column("must_change_password")


def downgrade():
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("temporary_password_expires_at", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reset_password_hash", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("reset_password_expires_at", sa.Integer(), nullable=True))

    conn = op.get_bind()
    owed = conn.execute(
        sa.select(changes.c.account_id, changes.c.staff_id, changes.c.expires_at).where(
            changes.c.state == "required"
        )
    ).all()
    for account_id, staff_id, expires_at in owed:
        if account_id is not None:
            conn.execute(
                accounts.update()
                .where(accounts.c.id == account_id)
                .values(must_change_password=True, temporary_password_expires_at=expires_at)
            )
        else:
            conn.execute(staff_users.update().where(staff_users.c.id == staff_id).values(must_change_password=True))
    pending = conn.execute(
        sa.select(resets.c.account_id, resets.c.password_hash, resets.c.expires_at).where(resets.c.state == "sent")
    ).all()
    for account_id, password_hash, expires_at in pending:
        conn.execute(
            accounts.update()
            .where(accounts.c.id == account_id)
            .values(reset_password_hash=password_hash, reset_password_expires_at=expires_at)
        )

    with op.batch_alter_table("reset_flows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reset_flows_expires_at"))
        batch_op.drop_index(batch_op.f("ix_reset_flows_account_id"))
    op.drop_table("reset_flows")
    with op.batch_alter_table("password_change_flows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_change_flows_staff_id"))
        batch_op.drop_index(batch_op.f("ix_password_change_flows_account_id"))
    op.drop_table("password_change_flows")
