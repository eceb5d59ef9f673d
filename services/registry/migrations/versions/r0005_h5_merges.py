"""Merges of person records (合并 / 撤销合并, issue 19): which record is a duplicate of which, the pregnancies that
are one episode, who merged and unmerged them, when and why. A merge is never deleted: an unmerge closes it.

Revision ID: r0005_h5
"""
from kit.alembic_env import sql

revision = "r0005_h5"
down_revision = "r0005_h4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    create table person_merge (
        merge_id uuid primary key,
        survivor_id uuid not null references person(person_id),
        duplicate_id uuid not null references person(person_id),
        -- [[duplicate pregnancy id, survivor pregnancy id], ...]: the same episode registered twice
        pregnancies jsonb not null default '[]',
        version integer not null default 1,
        reason text not null,
        merged_by text not null,
        merged_at timestamptz not null default now(),
        unmerge_reason text,
        unmerged_by text,
        unmerged_at timestamptz,
        check (survivor_id <> duplicate_id)
    );
    -- a record is the duplicate of at most one survivor at a time
    create unique index person_merge_active on person_merge (duplicate_id) where unmerged_at is null;
    create index person_merge_survivor on person_merge (survivor_id)
    """)


def downgrade() -> None:
    sql("drop table person_merge")
