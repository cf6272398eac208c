"""reset decoy flows: reset_flows.account_id may be NULL

Revision ID: c3e9a7d41b62
Revises: a5f1c8e3d2b9
Create Date: 2026-12-07 17:05:00.000000

Issue 10: a reset request writes one flow row whether or not the login and phone matched; a miss's row
(a decoy) belongs to no account, so no password can ever be redeemed through it.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c3e9a7d41b62'
down_revision = 'a5f1c8e3d2b9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('reset_flows', schema=None) as batch_op:
        batch_op.alter_column('account_id', existing_type=sa.Integer(), nullable=True)


def downgrade():
    # Decoys carry nothing: they go rather than block the NOT NULL.
    op.execute('DELETE FROM reset_flows WHERE account_id IS NULL')
    with op.batch_alter_table('reset_flows', schema=None) as batch_op:
        batch_op.alter_column('account_id', existing_type=sa.Integer(), nullable=False)
