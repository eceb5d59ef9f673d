"""A person's registered residence (户籍地, the county of her 户口): data on the person beside the residence
history (现住址), so figures can be split 户籍 vs 常住 (decision pending-h6).

Revision ID: r0005_h6
"""
from kit.alembic_env import sql

revision = "r0005_h6"
down_revision = "r0005_h5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("alter table person add column hukou_code text")


def downgrade() -> None:
    sql("alter table person drop column hukou_code")
