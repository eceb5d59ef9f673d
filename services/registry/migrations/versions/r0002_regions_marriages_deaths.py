"""Region table (GB/T 2260 + township/village levels, loaded from the shipped data file), deaths on persons,
marriage registrations with history.

Revision ID: r0002
"""
from pathlib import Path

from alembic import op
from kit.alembic_env import sql

revision = "r0002"
down_revision = "r0001"
branch_labels = None
depends_on = None

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "regions.csv"


def _shipped_rows() -> list[tuple[str, str]]:
    from registry.domain.regions import parse_csv

    return parse_csv(SHIPPED.read_text(encoding="utf-8"))


def upgrade() -> None:
    sql("""
    create table region (
        code text primary key check (code ~ '^[0-9]+$' and length(code) in (2, 4, 6, 9, 12)),
        name text not null
    );

    alter table person add column died_on date;
    alter table person add column death_key text;

    create table marriage (
        source text not null,
        registration_id text not null,
        version integer not null,
        registered_on date not null,
        region_code char(12) not null,
        person_ids uuid[] not null,
        content_hash text not null,
        voided boolean not null default false,
        void_reason text,
        updated_at timestamptz not null default now(),
        primary key (source, registration_id)
    );

    create table marriage_history (
        source text not null,
        registration_id text not null,
        version integer not null,
        registered_on date not null,
        region_code char(12) not null,
        person_ids uuid[] not null,
        voided boolean not null,
        reason text,
        recorded_at timestamptz not null default now(),
        primary key (source, registration_id, version)
    )
    """)
    rows = _shipped_rows()
    values = ", ".join("('{}', '{}')".format(c, n.replace("'", "''")) for c, n in rows)
    op.execute(f"insert into region (code, name) values {values}")


def downgrade() -> None:
    sql("""
    drop table marriage_history, marriage, region;
    alter table person drop column died_on;
    alter table person drop column death_key
    """)
