"""authorization_codes: an index on account_id, for the sites a person uses

Revision ID: 8e2a6f0c4b19
Revises: c7d2a9e4f1b8
Create Date: 2026-12-07 16:10:00.000000

Issue 12: the landing page after sign-in lists the relying parties a person uses
(``services.sessions.account_clients``), among them those that were issued a code for the account. With a
day of codes (300,000 rows at the expected peak, what ``idp purge`` keeps) that lookup read the whole
table at every visit; EXPLAIN at 10,000 accounts and 20,000 codes showed the sequential scan.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '8e2a6f0c4b19'
down_revision = 'c7d2a9e4f1b8'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_codes_account_id'), ['account_id'], unique=False)


def downgrade():
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_codes_account_id'))
