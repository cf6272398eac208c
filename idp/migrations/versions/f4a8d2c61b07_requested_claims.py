"""authorization_codes.claims, tokens.claims: the claims request parameter (OIDC Core §5.5)

Revision ID: f4a8d2c61b07
Revises: e2b7c4d9a1f3
Create Date: 2026-12-07 12:55:00.000000

The individual claims a relying party asked for with the ``claims`` parameter, as JSON
({"id_token": [...], "userinfo": [...]}): the code carries them to the token endpoint (ID token), the
token to UserInfo and through refresh. Existing rows have none: they release what their scopes do.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f4a8d2c61b07'
down_revision = 'e2b7c4d9a1f3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claims', sa.Text(), nullable=True))
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claims', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_column('claims')
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_column('claims')
