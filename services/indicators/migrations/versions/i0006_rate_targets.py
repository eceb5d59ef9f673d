"""Targets (任务/目标) for rates as well as counts: a comparison (`>=`: at least, e.g. 孕产妇系统管理率 ≥ 85 %;
`<=`: at most, e.g. 剖宫产率 ≤ 40 %), so that the tables and dashboards colour a value red / amber / green.

Revision ID: i0006
"""
from kit.alembic_env import sql

revision = "i0006"
down_revision = "i0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    alter table target add column comparison text not null default '>=' check (comparison in ('>=', '<='));
    alter table target add constraint target_positive check (target > 0)
    """)


def downgrade() -> None:
    sql("alter table target drop constraint target_positive; alter table target drop column comparison")
