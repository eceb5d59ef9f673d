"""Who voided a record: the account of the token (issue 15: the actor comes from the token, never the body).

Revision ID: r0004
"""
from kit.alembic_env import sql

revision = "r0004"
down_revision = "r0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    alter table encounter add column voided_by text;
    alter table pregnancy add column voided_by text;
    alter table marriage add column voided_by text
    """)


def downgrade() -> None:
    sql("""
    alter table encounter drop column voided_by;
    alter table pregnancy drop column voided_by;
    alter table marriage drop column voided_by
    """)
