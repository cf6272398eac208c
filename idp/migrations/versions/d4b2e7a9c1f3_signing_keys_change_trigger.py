"""signing_keys: a trigger announces every change of the key set (PostgreSQL)

Revision ID: d4b2e7a9c1f3
Revises: c3e9a7d41b62
Create Date: 2026-12-07 19:20:00.000000

Each worker keeps the key set in memory and reloads it when a notification arrives on the channel
``idp_signing_keys`` (``idp.oauth.key_changes``). Until now only the ``idp keys`` commands and the
console sent it, so a key retired by hand in SQL during an incident (``UPDATE signing_keys SET
expires_at = …``) kept signing in every running worker until it restarted. A statement-level trigger
sends it for any change, whoever makes it; PostgreSQL folds the notifications of one transaction into
one and delivers it at the commit, none on a rollback. SQLite has no notifications: there each request
reads the key stamp, and nothing is needed.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd4b2e7a9c1f3'
down_revision = 'c3e9a7d41b62'
branch_labels = None
depends_on = None

# The channel's name as ``idp.services.keys.CHANGED_CHANNEL`` had it when this was written; a migration
# keeps its own copy, so that renaming the constant later takes a migration of its own.
CHANNEL = 'idp_signing_keys'


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(
        "CREATE FUNCTION idp_signing_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN PERFORM pg_notify('{CHANNEL}', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER signing_keys_changed "
        "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON signing_keys "
        "FOR EACH STATEMENT EXECUTE FUNCTION idp_signing_keys_changed()"
    )


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("DROP TRIGGER signing_keys_changed ON signing_keys")
    op.execute("DROP FUNCTION idp_signing_keys_changed()")
