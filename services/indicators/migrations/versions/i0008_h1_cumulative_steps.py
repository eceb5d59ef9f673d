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
down_revision = "i0008_h5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    delete from period_key where period like '%..%' and stored = '@' || period;
    -- a cumulative period that is not an ordinary one: the last ordinary one before it in its window (1–2月:
    -- January, 1–4/5月: Q1, 1–7..11月: H1; 10–11月: October, 10–1..8月: Q4) and the window's steps after it
    with c as (
        select distinct period, split_part(period, '..', 1) as w, split_part(period, '..', 2)::int as n,
               left(period, 4)::int as y, period like '%SY..%' as sy
        from period_key k where period like '%..%'
        and not exists (select 1 from period_key a where a.period = k.period and a.stored like '@%'))
    insert into period_key (stored, period)
    select '@' || case when not sy then to_char(y, 'FM0000') ||
                                        case when n < 3 then '-01' when n < 6 then 'Q1' else 'H1' end
                       when n = 11 then to_char(y - 1, 'FM0000') || '-10'
                       else to_char(y - 1, 'FM0000') || 'Q4' end, period
    from c
    union all
    select '+' || w || '..' || to_char(m, 'FM00'), period
    from c, generate_series(1, 12) m
    where case when not sy then m > (case when n < 3 then 1 when n < 6 then 3 else 6 end) and m <= n
               when n = 11 then m = 11
               else m <= n end;

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
    create temporary table stepped as select distinct period from period_key where stored like '+%';
    delete from period_key where period in (select period from stepped) and stored like any('{@%,+%}');
    insert into period_key (stored, period) select '@' || period, period from stepped;
    drop table stepped;
    update unit set catalogue_digest = 'i0008_h1 downgraded';
    """)
