"""Cumulative periods (累计, 截止N月底): `YYYY-01..MM` of the calendar year and `YYYYSY..MM` of the statistical
year, for SQL readers of the `counter` view (Grafana): each maps to its months and to its own per-period counts
(`@` key), or to those of the ordinary period it equals (1–3月 is Q1: `periods.canonical`).

Every unit is marked to be recomputed (not emptied: its stored contributions are right, it only lacks the
per-period counts of the new cumulative periods), which the consumer's start-up back-fill does.

Revision ID: i0003
"""
from kit.alembic_env import sql

revision = "i0003"
down_revision = "i0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    create temporary table cumulative (period text, canon text, y int, mo int);
    -- calendar year to the end of month n
    insert into cumulative
    select to_char(y, 'FM0000') || '-01..' || to_char(n, 'FM00'),
           case n when 1 then to_char(y, 'FM0000') || '-01' when 3 then to_char(y, 'FM0000') || 'Q1'
                  when 6 then to_char(y, 'FM0000') || 'H1' when 12 then to_char(y, 'FM0000')
                  else to_char(y, 'FM0000') || '-01..' || to_char(n, 'FM00') end,
           y, mo
    from generate_series(1950, 2100) y, generate_series(1, 12) n, generate_series(1, 12) mo
    where mo <= n;
    -- statistical year y (October of y-1 to September of y) to the end of its k-th month
    insert into cumulative
    select to_char(y, 'FM0000') || 'SY..' || to_char(m_end, 'FM00'),
           case m_end when 10 then to_char(y - 1, 'FM0000') || '-10' when 12 then to_char(y - 1, 'FM0000') || 'Q4'
                      when 9 then to_char(y, 'FM0000') || 'SY'
                      else to_char(y, 'FM0000') || 'SY..' || to_char(m_end, 'FM00') end,
           case when m >= 10 then y - 1 else y end, m
    from generate_series(1950, 2100) y, generate_series(1, 12) k, generate_series(1, 12) j,
         lateral (select (k + 8) % 12 + 1 as m_end, (j + 8) % 12 + 1 as m) x
    where j <= k;

    insert into period_key (stored, period)
    select distinct to_char(y, 'FM0000') || '-' || to_char(mo, 'FM00'), period from cumulative
    union
    select distinct '@' || canon, period from cumulative;

    insert into period_end (period, start_month, last_month)
    select period, min(stored), max(stored) from period_key
    where period like '%..%' and stored not like '@%' group by period;

    drop table cumulative;
    update unit set catalogue_digest = 'i0003: cumulative periods';
    """)


def downgrade() -> None:
    sql("""
    delete from period_end where period like '%..%';
    delete from period_key where period like '%..%';
    """)
