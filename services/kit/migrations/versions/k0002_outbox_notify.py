"""The outbox wakes its relay: every statement that inserts outbox rows sends a notification on channel
`outbox` (delivered when its transaction commits, one per transaction however many rows), so an idle relay
waits on LISTEN instead of polling the table.

Revision ID: k0002
"""
from kit.alembic_env import sql

revision = "k0002"
down_revision = "k0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    create function outbox_notify() returns trigger language plpgsql as
        $$ begin perform pg_notify('outbox', ''); return null; end $$;
    create trigger outbox_notify after insert on outbox for each statement execute function outbox_notify()
    """)


def downgrade() -> None:
    sql("drop trigger outbox_notify on outbox; drop function outbox_notify()")
