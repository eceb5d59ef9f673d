"""Registry tables: institutions, persons with residence history, pregnancies, encounters with history.

Revision ID: r0001
"""
from kit.alembic_env import sql

revision = "r0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    create table institution (
        code text primary key,
        name text not null,
        region_code char(12) not null,
        kind text not null check (kind in ('hospital', 'health_centre', 'mch_centre', 'agency')),
        midwifery_licensed boolean not null,
        version integer not null default 1,
        updated_at timestamptz not null default now()
    );

    create table person (
        person_id uuid primary key,
        id_number text unique,
        name text not null,
        sex char(1) not null check (sex in ('F', 'M')),
        birth_date date not null,
        phone text,
        mother_id uuid references person(person_id),
        born_in_pregnancy_id text,
        version integer not null default 1,
        created_at timestamptz not null default now()
    );

    create table person_residence (
        person_id uuid not null references person(person_id),
        since date not null,
        region_code char(12) not null,
        recorded_at timestamptz not null default now(),
        primary key (person_id, since)
    );

    create table pregnancy (
        pregnancy_id text primary key,
        source text not null,
        mother_id uuid not null references person(person_id),
        lmp_date date not null,
        registered_on date not null,
        institution_code text not null references institution(code),
        residence_code char(12) not null,
        content_hash text not null,
        version integer not null default 1,
        delivered_on date,
        created_at timestamptz not null default now()
    );
    create index pregnancy_mother on pregnancy (mother_id);

    create table encounter (
        source text not null,
        encounter_id text not null,
        version integer not null,
        type text not null,
        subject_id text not null,
        pregnancy_id text references pregnancy(pregnancy_id),
        person_id uuid references person(person_id),
        occurred_on date not null,
        institution_code text not null references institution(code),
        body jsonb not null,
        content_hash text not null,
        voided boolean not null default false,
        void_reason text,
        updated_at timestamptz not null default now(),
        primary key (source, encounter_id)
    );
    create index encounter_pregnancy on encounter (pregnancy_id) where pregnancy_id is not null;
    create index encounter_person on encounter (person_id) where person_id is not null;
    create unique index one_delivery_per_pregnancy on encounter (pregnancy_id)
        where type = 'delivery' and not voided;

    create table encounter_history (
        source text not null,
        encounter_id text not null,
        version integer not null,
        body jsonb not null,
        voided boolean not null,
        reason text,
        recorded_at timestamptz not null default now(),
        primary key (source, encounter_id, version)
    )
    """)


def downgrade() -> None:
    sql("drop table encounter_history, encounter, pregnancy, person_residence, person, institution")
