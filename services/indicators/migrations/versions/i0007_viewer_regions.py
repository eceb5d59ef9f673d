"""Region scoping for Grafana (and any SQL reader): a read-only login role per region sees only the rows of its
region and below — Postgres row-level security on the counts, targets, filings and follow-up facts, keyed by
`grafana_viewer(role_name, region_prefix)`. The service's own role owns the tables and is not subject to it (no
cost on the engine's paths); the `counter` view reads as its caller (security_invoker), so the policies apply
through it. Roles are created by `python -m indicators.admin viewer ROLE REGION` (an administrator's connection).

Revision ID: i0007
"""
from kit.alembic_env import sql

revision = "i0007"
down_revision = "i0006"
branch_labels = None
depends_on = None

SCOPED = (("tally", "region"), ("standing", "region"), ("target", "region"), ("filing", "unit"),
          ("filing_step", "unit"), ("adjustment", "unit"))


def upgrade() -> None:
    sql("""
    create table grafana_viewer (
        role_name text primary key,
        region_prefix text not null check (region_prefix ~ '^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12})$'),
        created_at timestamptz not null default now()
    );
    alter table grafana_viewer enable row level security;
    create policy own_row on grafana_viewer for select using (role_name = current_user);
    alter view counter set (security_invoker = true)
    """)
    prefix = "(select v.region_prefix from grafana_viewer v where v.role_name = current_user) || '%'"
    for table, column in SCOPED:
        sql(f"""
        alter table {table} enable row level security;
        create policy viewer_region on {table} for select using ({column} like {prefix})
        """)
    # follow-up cases only (the overdue panel), by the residence they were opened for
    sql(f"""
    alter table fact enable row level security;
    create policy viewer_region on fact for select
        using (record_key like 'followup:%' and body->>'region_code' like {prefix})
    """)


def downgrade() -> None:
    for table, _ in (*SCOPED, ("fact", "")):
        sql(f"drop policy viewer_region on {table}; alter table {table} disable row level security")
    sql("alter view counter reset (security_invoker); drop table grafana_viewer")
