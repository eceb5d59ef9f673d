"""Who posted the records behind an adjustment (a late correction of an approved filing): the actors of the events
(the person or the named system of the token that caused them), beside the request ids.

Revision ID: i0008_h9
"""
from kit.alembic_env import sql

revision = "i0008_h9"
down_revision = "i0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("alter table adjustment add column actors text[] not null default '{}'")


def downgrade() -> None:
    sql("alter table adjustment drop column actors")
