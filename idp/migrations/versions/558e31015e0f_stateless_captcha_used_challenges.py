"""stateless captcha: a row per answered challenge instead of one per image

Revision ID: 558e31015e0f
Revises: 7d98fbb7cc03
Create Date: 2026-11-24 10:00:00.000000

Challenges now travel signed with the page, so captcha_challenges goes; captcha_uses records the ids of
the answered ones (single use). Challenges live for minutes: the old rows are dropped, not converted, and
a page opened before the upgrade simply gets a new image.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '558e31015e0f'
down_revision = '7d98fbb7cc03'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('captcha_uses',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('expires_at', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('captcha_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_captcha_uses_expires_at'), ['expires_at'], unique=False)

    with op.batch_alter_table('captcha_challenges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_captcha_challenges_expires_at'))

    op.drop_table('captcha_challenges')


def downgrade():
    op.create_table('captcha_challenges',
    sa.Column('id', sa.String(length=43), nullable=False),
    sa.Column('answer_digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.Integer(), nullable=False),
    sa.Column('used_at', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('captcha_challenges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_captcha_challenges_expires_at'), ['expires_at'], unique=False)

    with op.batch_alter_table('captcha_uses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_captcha_uses_expires_at'))

    op.drop_table('captcha_uses')
