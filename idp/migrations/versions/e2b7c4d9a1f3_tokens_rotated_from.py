"""tokens.rotated_from: the refresh token a token was rotated from (the refresh-token grace, RFC 9700 §4.14.2)

Revision ID: e2b7c4d9a1f3
Revises: c3f1a9d27e40
Create Date: 2026-12-07 07:10:00.000000

With it, a rotated-out refresh token presented again within [oauth] refresh_grace finds the token it was
rotated into, and whether that one has been used. Existing rows have none: their old tokens are treated as
before (reuse).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e2b7c4d9a1f3'
down_revision = 'c3f1a9d27e40'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rotated_from', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_tokens_rotated_from'), ['rotated_from'], unique=False)


def downgrade():
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tokens_rotated_from'))
        batch_op.drop_column('rotated_from')
