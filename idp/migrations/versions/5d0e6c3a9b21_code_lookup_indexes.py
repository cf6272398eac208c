"""authorization_codes: indexes for the nonce replay check and for the session's relying parties

Revision ID: 5d0e6c3a9b21
Revises: f4a8d2c61b90
Create Date: 2026-12-07 13:00:00.000000

Issue 12: with a day of codes (what ``idp purge`` keeps, 300,000 rows at the expected peak) both lookups
scanned the whole table on every sign-in: ``OpenIDCode.exists_nonce`` (by nonce) and
``services.sessions.session_clients`` (by sid). The nonce index is a hash index on PostgreSQL (equality
only, and no length limit on the value); SQLite gets an ordinary one.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '5d0e6c3a9b21'
down_revision = 'f4a8d2c61b90'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.create_index('ix_authorization_codes_nonce', ['nonce'], unique=False, postgresql_using='hash')
        batch_op.create_index(batch_op.f('ix_authorization_codes_sid'), ['sid'], unique=False)


def downgrade():
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_codes_sid'))
        batch_op.drop_index('ix_authorization_codes_nonce')
