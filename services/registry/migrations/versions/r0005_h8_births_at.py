"""The deliveries of an institution, by day: what a certificate office searches its newborns in (待签发 search).

Revision ID: r0005_h8
"""
from kit.alembic_env import sql

revision = "r0005_h8"
down_revision = "r0005_h6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("create index encounter_deliveries_at on encounter (institution_code, occurred_on) "
        "where type = 'delivery' and not voided")


def downgrade() -> None:
    sql("drop index encounter_deliveries_at")
