"""Merged person records (合并, issue 19): a child registered twice is one child, and its certificates follow
it — one first certificate per child (一孩一证) whichever of its records it was issued for.

Revision ID: c0004_h5
"""
from kit.alembic_env import sql

revision = "c0004_h5"
down_revision = "c0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    create table person_merge (
        merge_id text primary key,
        survivor_id uuid not null,
        duplicate_id uuid not null,
        version integer not null,
        unmerged boolean not null
    );
    create index person_merge_duplicate on person_merge (duplicate_id) where not unmerged;
    create index person_merge_survivor on person_merge (survivor_id) where not unmerged;
    -- the records of one child: the survivor of a record merged away, and every record merged into it
    create function child_records(c uuid) returns setof uuid language sql stable as $$
        with s as (select coalesce((select survivor_id from person_merge where duplicate_id = c and not unmerged
                                    limit 1), c) as id)
        select id from s
        union
        select m.duplicate_id from person_merge m, s where m.survivor_id = s.id and not m.unmerged
    $$
    """)


def downgrade() -> None:
    sql("""
    drop function child_records(uuid);
    drop table person_merge
    """)
