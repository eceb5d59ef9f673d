"""Counts stored per measure at month grain (`tally`), rolled up to quarter, half, year and statistical year at
read time.

A measure is one distinct count of the catalogue (live births are the denominator of a dozen rates: stored
once). A dated contribution is stored once per region level and institution under its month; a contribution
that belongs to one period only (the latest check in a period, what a child had in a period) under
`@<period key>`; a standing quantity (a population at a period end, the blank-certificate stock) in `standing`
under `^<month>`, summed up to a period's last month. `period_key` maps every stored key to the reporting
periods it counts in, `period_end` gives each period's months, `indicator_part`
(written by the consumer from the catalogue it runs) maps indicator parts to measures, and the `counter` view
presents the old shape (period, region, institution, code, part, n) for SQL readers such as Grafana.

The old `counter` table cannot be split back into months, so every unit is marked to be recomputed: the
consumer's start-up back-fill (units whose catalogue digest differs) re-adds all contributions to the empty
tally.

Revision ID: i0002
"""
from kit.alembic_env import sql

revision = "i0002"
down_revision = "i0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    create table period_key (
        stored text collate "C" not null,
        period text collate "C" not null,
        primary key (period, stored)
    );
    insert into period_key (stored, period)
    select m.key, p.key
    from (select y, mo, to_char(y, 'FM0000') || '-' || to_char(mo, 'FM00') as key
          from generate_series(1950, 2100) y, generate_series(1, 12) mo) m,
    lateral (values (m.key),
                    (to_char(m.y, 'FM0000') || 'Q' || ((m.mo - 1) / 3 + 1)),
                    (to_char(m.y, 'FM0000') || 'H' || (case when m.mo <= 6 then 1 else 2 end)),
                    (to_char(m.y, 'FM0000')),
                    (to_char(m.y + (case when m.mo >= 10 then 1 else 0 end), 'FM0000') || 'SY')) as p(key);
    insert into period_key (stored, period)
    select distinct '@' || period, period from period_key;

    create table tally (
        period text collate "C" not null,
        region text collate "C" not null,
        institution text collate "C" not null,
        measure text collate "C" not null,
        n bigint not null,
        primary key (period, region, institution, measure)
    );

    -- standing quantities (populations at a period end, stock): summed from the beginning up to a period's
    -- last month, so the region leads the key and the month range is one index range
    create table standing (
        region text collate "C" not null,
        institution text collate "C" not null,
        measure text collate "C" not null,
        period text collate "C" not null,
        n bigint not null,
        primary key (region, institution, measure, period)
    );

    create table period_end (
        period text collate "C" primary key,
        start_month text collate "C" not null,
        last_month text collate "C" not null
    );
    insert into period_end (period, start_month, last_month)
    select period, min(stored), max(stored) from period_key where stored not like '@%' group by period;

    create table indicator_part (
        code text collate "C" not null,
        part text collate "C" not null,
        measure text collate "C" not null,
        primary key (code, part)
    );

    drop table counter;
    create view counter as
    select c.period, c.region, c.institution, p.code, p.part, sum(c.n)::bigint as n
    from (select k.period, t.region, t.institution, t.measure, t.n
          from tally t join period_key k on k.stored = t.period
          union all
          select e.period, s.region, s.institution, s.measure, s.n
          from standing s join period_end e on s.period > '^' and s.period <= '^' || e.last_month
          where e.start_month <= to_char(now() at time zone 'Asia/Shanghai', 'YYYY-MM')) c
    join indicator_part p on p.measure = c.measure
    group by c.period, c.region, c.institution, p.code, p.part;

    update unit set contributions = '[]'::jsonb, catalogue_digest = 'i0002: recompute into tally';
    """)


def downgrade() -> None:
    # the old layout is refilled the same way: every unit recomputed by the consumer's start-up back-fill
    sql("""
    drop view counter;
    create table counter (
        period text not null, region text not null, institution text not null, code text not null,
        part char(1) not null, n bigint not null,
        primary key (period, region, institution, code, part)
    );
    update unit set contributions = '[]'::jsonb, catalogue_digest = 'i0002 downgrade: recompute';
    drop table tally, standing, period_end, period_key, indicator_part;
    """)
