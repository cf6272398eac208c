"""authorization_codes.resources, tokens.resources: resource indicators granted at /authorize (RFC 8707)

Revision ID: c7d2a9e4f1b8
Revises: b3e8f1a2c4d6
Create Date: 2026-12-07 16:00:00.000000

The ``resource`` values of an authorization request (space-separated absolute URIs): the code carries
them to the token endpoint, where they are the token's audience and bound what a ``resource`` there may
name (§2.2); the tokens of the family keep them for refreshes. Existing rows have none: their tokens
follow the rules of the token endpoint alone, as before.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c7d2a9e4f1b8'
down_revision = 'b3e8f1a2c4d6'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resources', sa.Text(), nullable=True))
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resources', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_column('resources')
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_column('resources')
