"""Merged person records (合并, issue 19): screening's view of the registry's merges, and the person a case was
recorded for when it now follows the survivor (so that an unmerge gives it back).

Revision ID: s0003_h5
"""
from kit.alembic_env import sql

revision = "s0003_h5"
down_revision = "s0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    create table person_merge (
        merge_id text primary key,
        survivor_id text not null,
        duplicate_id text not null,
        -- [[duplicate pregnancy id, survivor pregnancy id], ...]
        pregnancies jsonb not null,
        version integer not null,
        unmerged boolean not null
    );
    create index person_merge_duplicate on person_merge (duplicate_id);
    alter table followup_case add column merged_from text
    """)


def downgrade() -> None:
    sql("""
    alter table followup_case drop column merged_from;
    drop table person_merge
    """)
