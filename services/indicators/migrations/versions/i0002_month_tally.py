"""Counts stored per measure at month grain (`tally`), rolled up to quarter, half, year and statistical year at
read time.

A measure is one distinct count of the catalogue (live births are the denominator of a dozen rates: stored
once). A dated contribution is stored once per region level and institution under its month; a contribution
that belongs to one period only (a population at a period end, the latest check in a period) under
`@<period key>`. `period_key` maps every stored key to the reporting periods it counts in, `indicator_part`
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

    create table indicator_part (
        code text collate "C" not null,
        part text collate "C" not null,
        measure text collate "C" not null,
        primary key (code, part)
    );

    drop table counter;
    create view counter as
    select k.period, t.region, t.institution, p.code, p.part, sum(t.n)::bigint as n
    from tally t join period_key k on k.stored = t.period join indicator_part p on p.measure = t.measure
    group by k.period, t.region, t.institution, p.code, p.part;

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
    drop table tally, period_key, indicator_part;
    """)
