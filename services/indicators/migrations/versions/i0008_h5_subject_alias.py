"""Merged subjects (issue 19): which subject is read as which, derived from the registry's merge facts.

A merged person's duplicate record (`person:<dup>`) and the duplicate's registrations of the survivor's
pregnancies (`pregnancy:<dup>`) are read as the survivor's (`canonical_key`); `merge_key` is the merge fact that
says so (`merge:<merge_id>`), so that an unmerge removes exactly its rows.

Revision ID: i0008_h5
"""
from kit.alembic_env import sql

revision = "i0008_h5"
down_revision = "i0008_h9"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    create table subject_alias (
        subject_key text primary key,
        canonical_key text not null,
        merge_key text not null
    );
    create index subject_alias_canonical on subject_alias (canonical_key);
    create index subject_alias_merge on subject_alias (merge_key)
    """)


def downgrade() -> None:
    sql("drop table subject_alias")
