"""Mechanism tables present in every service database: outbox, relay state, consumer dedup and
checkpoints, dead letters, personal-data read audit.

Revision ID: k0001
"""
from kit.alembic_env import sql

revision = "k0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    create table outbox (
        id bigserial primary key,
        event_id uuid not null unique,
        topic text not null,
        key text not null,
        event_type text not null,
        envelope bytea not null,
        created_at timestamptz not null default now(),
        published_at timestamptz
    );
    create index outbox_unpublished on outbox (id) where published_at is null;

    create table relay_state (
        topic text primary key,
        topic_id text not null,
        resets integer not null default 0,
        updated_at timestamptz not null default now()
    );

    create table consumed_event (
        event_id uuid primary key,
        consumed_at timestamptz not null default now()
    );

    create table consumer_offset (
        consumer text not null,
        topic text not null,
        partition integer not null,
        topic_id text not null,
        next_offset bigint not null,
        updated_at timestamptz not null default now(),
        primary key (consumer, topic, partition)
    );

    create table dead_letter (
        event_id uuid not null,
        consumer text not null,
        topic text not null,
        partition integer not null,
        record_offset bigint not null,
        envelope bytea not null,
        error text not null,
        created_at timestamptz not null default now(),
        primary key (consumer, event_id)
    );

    create table pii_audit (
        id bigserial primary key,
        at timestamptz not null default now(),
        client_id text not null,
        request_id text not null,
        subject_kind text not null,
        subject_id text not null,
        fields text[] not null,
        unmasked boolean not null
    );
    """)


def downgrade() -> None:
    sql("drop table pii_audit, dead_letter, consumer_offset, consumed_event, relay_state, outbox")
