"""The score parts quality last published per institution and month (its `quality.score_parts.changed` events):
an event goes out only when the parts differ from these, with the next version.

Revision ID: q0002_h10
"""
from kit.alembic_env import sql

revision = "q0002_h10"
down_revision = "q0001_h2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    create table score_published (
        institution_code text not null,
        month text not null,
        institution_region text not null,
        records integer not null,
        timely integer not null,
        followups_expected integer not null,
        followups_present integer not null,
        open_queries integer not null,
        version integer not null,
        primary key (institution_code, month)
    );
    """)


def downgrade() -> None:
    sql("drop table score_published")
