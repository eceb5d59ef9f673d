"""Quality tables: the records quality knows from the other services' events (latest version each), the
queries (one per finding) with their history, and when each evaluation unit must be looked at again.

Revision ID: q0001_h2
"""
from kit.alembic_env import sql

revision = "q0001_h2"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    create table known_institution (
        code text primary key,
        name text not null default '',
        region_code text not null,
        version integer not null
    );

    create table rec_pregnancy (
        pregnancy_id text primary key,
        mother_id text not null,
        lmp date not null,
        booked_on date not null,
        institution_code text not null,
        voided boolean not null default false,
        posted_on date,
        version integer not null
    );
    create index rec_pregnancy_mother on rec_pregnancy (mother_id);
    create index rec_pregnancy_inst on rec_pregnancy (institution_code, booked_on);

    create table rec_encounter (
        encounter_key text primary key,
        type text not null,
        occurred_on date not null,
        institution_code text not null,
        pregnancy_id text not null default '',
        person_id text not null default '',
        voided boolean not null default false,
        live_births integer not null default 0,
        caesarean boolean not null default false,
        posted_on date,
        facts jsonb not null,
        version integer not null
    );
    create index rec_encounter_pregnancy on rec_encounter (pregnancy_id) where pregnancy_id <> '';
    create index rec_encounter_person on rec_encounter (person_id);
    create index rec_encounter_inst on rec_encounter (institution_code, occurred_on);

    create table rec_person (
        person_id text primary key,
        birth_date date not null,
        born_in_pregnancy_id text not null default '',
        version integer not null
    );

    create table child_link (
        child_id text primary key,
        pregnancy_id text not null
    );

    create table rec_certificate (
        serial text primary key,
        child_id text not null,
        kind text not null,
        status text not null,
        institution_code text not null,
        version integer not null
    );
    create index rec_certificate_child on rec_certificate (child_id);

    create table rec_case (
        case_id text primary key,
        case_type text not null,
        status text not null,
        due_on date not null,
        institution_code text not null,
        version integer not null
    );

    create table rec_screening (
        screening_key text primary key,
        type text not null,
        hiv_test boolean not null,
        performed_on date not null,
        institution_code text not null,
        voided boolean not null default false,
        version integer not null
    );
    create index rec_screening_inst on rec_screening (institution_code, performed_on);

    create table quality_query (
        key text primary key,
        id uuid not null unique,
        unit text not null,
        rule_id text not null,
        record_key text not null,
        institution_code text not null,
        detail text not null,
        period text not null,
        status text not null,
        opened_on date not null,
        due_on date not null,
        closed_on date,
        comment text,
        answered_by text,
        version integer not null,
        updated_at timestamptz not null default now()
    );
    create index quality_query_unit on quality_query (unit);
    create index quality_query_inst on quality_query (institution_code, status);

    create table quality_query_history (
        key text not null,
        version integer not null,
        status text not null,
        comment text,
        actor text not null,
        recorded_at timestamptz not null default now(),
        primary key (key, version)
    );

    -- when a unit's time-based rules (28 days after birth, a case's due date) may change: the sweep's list
    create table unit_due (
        unit text primary key,
        due_on date not null
    );
    create index unit_due_on on unit_due (due_on);
    """)


def downgrade() -> None:
    sql("drop table unit_due, quality_query_history, quality_query, rec_screening, rec_case, rec_certificate, "
        "child_link, rec_person, rec_encounter, rec_pregnancy, known_institution")
