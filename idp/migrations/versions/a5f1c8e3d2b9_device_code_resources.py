"""device_codes.resources: resource indicators of a device authorization request (RFC 8707)

Revision ID: a5f1c8e3d2b9
Revises: 8e2a6f0c4b19
Create Date: 2026-12-07 16:55:00.000000

The ``resource`` values sent to /device/authorize (space-separated absolute URIs): the audience of the
tokens the device gets, and the bound of a ``resource`` at their refreshes (§2.2). Existing rows have
none: their tokens follow the rules of the token endpoint alone, as before.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a5f1c8e3d2b9'
down_revision = '8e2a6f0c4b19'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('device_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resources', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('device_codes', schema=None) as batch_op:
        batch_op.drop_column('resources')
