"""Protocol features: replay cache of JWT ids, pushed authorization requests, DPoP and JWT access tokens
on tokens, the sealed secret of client_secret_jwt clients

Revision ID: f4a8d2c61b90
Revises: f4a8d2c61b57
Create Date: 2026-12-07 13:00:00.000000

* used_jtis: a client assertion's jti (RFC 7523 §3) and a DPoP proof's jti (RFC 9449 §11.1) are accepted
  once; the unique key is the replay check.
* pushed_requests: PAR (RFC 9126), a one-time request_uri stored as a digest.
* tokens.jkt: the DPoP key thumbprint a token is bound to (RFC 9449 §6); tokens.jti: a JWT access
  token's id (RFC 9068 §2.2); tokens.audience: the resource
  (RFC 8707) it was issued for.
* oauth2_clients.secret_sealed: client_secret_jwt needs the secret itself (OIDC Core §9).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f4a8d2c61b90'
down_revision = 'f4a8d2c61b57'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'used_jtis',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('expires_at', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key_hash'),
    )
    with op.batch_alter_table('used_jtis', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_jtis_expires_at'), ['expires_at'], unique=False)
    op.create_table(
        'pushed_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_uri_hash', sa.String(length=64), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.Integer(), nullable=False),
        sa.Column('used_at', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('request_uri_hash'),
    )
    with op.batch_alter_table('pushed_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pushed_requests_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pushed_requests_expires_at'), ['expires_at'], unique=False)
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('jkt', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('jti', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('audience', sa.Text(), nullable=True))
    with op.batch_alter_table('oauth2_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret_sealed', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('oauth2_clients', schema=None) as batch_op:
        batch_op.drop_column('secret_sealed')
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_column('audience')
        batch_op.drop_column('jti')
        batch_op.drop_column('jkt')
    with op.batch_alter_table('pushed_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pushed_requests_expires_at'))
        batch_op.drop_index(batch_op.f('ix_pushed_requests_client_id'))
    op.drop_table('pushed_requests')
    with op.batch_alter_table('used_jtis', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_jtis_expires_at'))
    op.drop_table('used_jtis')
