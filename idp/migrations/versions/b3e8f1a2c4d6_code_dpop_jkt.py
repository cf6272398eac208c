"""authorization_codes.dpop_jkt: the DPoP key a code is bound to (RFC 9449 §10)

Revision ID: b3e8f1a2c4d6
Revises: d7c3e91a5f42
Create Date: 2026-12-07 15:50:00.000000

The RFC 7638 thumbprint named by ``dpop_jkt`` at /authorize, or of the key of the DPoP proof sent to
/par (§10.1): only a token request with a proof by that key redeems the code. Existing codes are bound
to no key.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b3e8f1a2c4d6'
down_revision = 'd7c3e91a5f42'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dpop_jkt', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_column('dpop_jkt')
