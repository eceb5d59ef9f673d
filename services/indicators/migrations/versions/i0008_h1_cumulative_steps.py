"""Per-period counts of cumulative periods as steps of their window (`+2021-01..05`: the count of 1–5月 minus
that of 1–4月), not stored once per cumulative period: that doubled the rows each event touched (bench, issue 15).
For SQL readers of the `counter` view, a cumulative period that is not also an ordinary one maps to its window's
steps up to its last month instead of its own `@` key. A back-fill progress row per catalogue digest
(`backfill`): the consumer and `python -m indicators.admin backfill` recompute stale units in chunks.

Every unit is marked to be recomputed: its stored contributions still hold the old `@<cumulative>` counts, and the
back-fill applies the difference (those go to 0, the steps come in).

Revision ID: i0008_h1
"""
from kit.alembic_env import sql

revision = "i0008_h1"
down_revision = "i0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    delete from period_key where period like '%..%' and stored = '@' || period;
    insert into period_key (stored, period)
    select '+' || split_part(c.period, '..', 1) || '..' || to_char(n, 'FM00'), c.period
    from (select distinct period from period_key k where period like '%..%'
          and not exists (select 1 from period_key a where a.period = k.period and a.stored like '@%')) c,
         generate_series(1, 12) n
    where case when c.period like '%SY..%'
               then (n + 2) % 12 <= (split_part(c.period, '..', 2)::int + 2) % 12
               else n <= split_part(c.period, '..', 2)::int end;

    create table backfill (
        digest text collate "C" primary key,
        total bigint not null,
        done bigint not null default 0,
        started_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        finished_at timestamptz
    );
    update unit set catalogue_digest = 'i0008_h1: cumulative steps';
    """)


def downgrade() -> None:
    sql("""
    drop table backfill;
    delete from period_key where stored like '+%';
    insert into period_key (stored, period)
    select distinct '@' || period, period from period_key k where period like '%..%'
    and not exists (select 1 from period_key a where a.period = k.period and a.stored like '@%');
    update unit set catalogue_digest = 'i0008_h1 downgraded';
    """)
