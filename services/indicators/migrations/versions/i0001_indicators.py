"""Indicator engine state: facts, units with their current contributions, dependency links, counters.

Revision ID: i0001
"""
from kit.alembic_env import sql

revision = "i0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    create table fact (
        record_key text primary key,
        subject_key text not null,
        version integer not null,
        voided boolean not null,
        body jsonb not null,
        updated_at timestamptz not null default now()
    );
    create index fact_subject on fact (subject_key);

    create table unit (
        unit_key text primary key,
        contributions jsonb not null,
        deps text[] not null default '{}',
        catalogue_digest text not null,
        updated_at timestamptz not null default now()
    );

    create table unit_link (
        subject_key text not null,
        unit_key text not null,
        primary key (subject_key, unit_key)
    );

    create table counter (
        period text not null,
        region text not null,
        institution text not null,
        code text not null,
        part char(1) not null,
        n bigint not null,
        primary key (period, region, institution, code, part)
    );

    create table target (
        code text not null,
        region text not null,
        year integer not null,
        target numeric not null,
        set_by text not null,
        updated_at timestamptz not null default now(),
        primary key (code, region, year)
    )
    """)


def downgrade() -> None:
    sql("drop table target, counter, unit_link, unit, fact")
