"""device_codes: the device authorization grant (RFC 8628)

Revision ID: d7c3e91a5f42
Revises: 5d0e6c3a9b21
Create Date: 2026-12-07 13:55:00.000000

One row per device authorization request, with the device_code and the user_code as SHA-256 digests,
its polling interval and state (pending, approved, denied, used) and, once approved, the account and
SSO session it was approved in.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd7c3e91a5f42'
down_revision = '5d0e6c3a9b21'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'device_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('device_code_hash', sa.String(length=64), nullable=False),
        sa.Column('user_code_hash', sa.String(length=64), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('scope', sa.Text(), nullable=False),
        sa.Column('created_at', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.Integer(), nullable=False),
        sa.Column('interval', sa.Integer(), nullable=False),
        sa.Column('last_polled_at', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=True),
        sa.Column('sid', sa.String(length=64), nullable=True),
        sa.Column('auth_time', sa.Integer(), nullable=True),
        sa.Column('amr', sa.String(length=64), nullable=True),
        sa.Column('decided_at', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('device_code_hash'),
        sa.UniqueConstraint('user_code_hash'),
    )
    with op.batch_alter_table('device_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_device_codes_client_id'), ['client_id'], unique=False)


def downgrade():
    with op.batch_alter_table('device_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_codes_client_id'))
    op.drop_table('device_codes')
