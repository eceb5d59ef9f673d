"""Who voided a result: the account of the token (issue 15: the actor comes from the token, never the body).

Revision ID: s0002
"""
from kit.alembic_env import sql

revision = "s0002"
down_revision = "s0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("alter table screening add column voided_by text")


def downgrade() -> None:
    sql("alter table screening drop column voided_by")
