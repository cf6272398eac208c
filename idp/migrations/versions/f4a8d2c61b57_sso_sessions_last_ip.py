"""sso_sessions.last_ip: the address a session was last seen from («Мой профиль», issue 14)

Revision ID: f4a8d2c61b57
Revises: f4a8d2c61b07
Create Date: 2026-12-07 12:50:00.000000

The account page shows each live session's device (from the user agent kept at sign-in) and its
approximate place, from the address it was last used from; ``ip`` keeps the address it began at.
Existing rows have none: the page falls back to ``ip``.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f4a8d2c61b57'
down_revision = 'f4a8d2c61b07'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sso_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_ip', sa.String(length=45), nullable=True))


def downgrade():
    with op.batch_alter_table('sso_sessions', schema=None) as batch_op:
        batch_op.drop_column('last_ip')
