"""Voided pregnancy registrations (a void keeps the record, as for encounters).

Revision ID: r0003
"""
from kit.alembic_env import sql

revision = "r0003"
down_revision = "r0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    alter table pregnancy add column voided boolean not null default false;
    alter table pregnancy add column void_reason text
    """)


def downgrade() -> None:
    sql("alter table pregnancy drop column voided, drop column void_reason")
