"""oauth2_clients.dynamically_registered: who registered a client (an admin, or the client itself)

Revision ID: 7d98fbb7cc03
Revises: 6bdba249b0d1
Create Date: 2026-12-07 04:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7d98fbb7cc03'
down_revision = '6bdba249b0d1'
branch_labels = None
depends_on = None


def upgrade():
    # Existing clients count as registered by an admin (console or CLI) ...
    with op.batch_alter_table('oauth2_clients', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('dynamically_registered', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # ... except those that received a registration access token: only RFC 7591 registration issues one.
    op.execute(
        "UPDATE oauth2_clients SET dynamically_registered = TRUE WHERE client_id IN "
        "(SELECT client_id FROM registration_access_tokens)"
    )


def downgrade():
    with op.batch_alter_table('oauth2_clients', schema=None) as batch_op:
        batch_op.drop_column('dynamically_registered')
