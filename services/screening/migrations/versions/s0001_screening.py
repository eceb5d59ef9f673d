"""Screening tables: what screening knows from registry events (institutions, persons, pregnancies,
deliveries, graded prenatal visits), screening results with their history, follow-up cases and actions.

Revision ID: s0001
"""
from kit.alembic_env import sql

revision = "s0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    create table known_institution (
        code text primary key,
        region_code text not null,
        version integer not null
    );

    create table known_person (
        person_id text primary key,
        sex char(1) not null,
        birth_date date not null,
        residence jsonb not null,
        mother_id text,
        born_in_pregnancy_id text,
        version integer not null
    );

    create table known_pregnancy (
        pregnancy_id text primary key,
        mother_id text not null,
        lmp_date date not null,
        registered_on date not null,
        residence_code text not null,
        voided boolean not null default false,
        version integer not null
    );

    create table known_delivery (
        encounter_key text primary key,
        pregnancy_id text not null,
        delivered_on date not null,
        voided boolean not null,
        version integer not null
    );
    create index known_delivery_pregnancy on known_delivery (pregnancy_id);

    create table graded_visit (
        encounter_key text primary key,
        pregnancy_id text not null,
        occurred_on date not null,
        risk_grade text not null,
        institution_code text not null,
        voided boolean not null,
        version integer not null
    );
    create index graded_visit_pregnancy on graded_visit (pregnancy_id);

    create table screening (
        source text not null,
        screening_id text not null,
        version integer not null,
        type text not null,
        subject_id text not null,
        subject_key text not null,
        person_id text not null,
        pregnancy_id text,
        partner_id text,
        performed_on date not null,
        institution_code text not null,
        institution_region text not null,
        residence_code text not null,
        result jsonb not null,
        classification text not null,
        rule_version text not null,
        case_id uuid,
        content_hash text not null,
        voided boolean not null default false,
        void_reason text,
        updated_at timestamptz not null default now(),
        primary key (source, screening_id)
    );
    create index screening_person on screening (person_id);
    create index screening_pregnancy on screening (pregnancy_id) where pregnancy_id is not null;

    create table screening_history (
        source text not null,
        screening_id text not null,
        version integer not null,
        result jsonb not null,
        classification text not null,
        rule_version text not null,
        voided boolean not null,
        reason text,
        recorded_at timestamptz not null default now(),
        primary key (source, screening_id, version)
    );

    create table followup_case (
        case_id uuid primary key,
        screening_source text,
        screening_id text,
        screening_type text not null,
        reason text not null,
        subject_key text not null,
        person_id text not null,
        pregnancy_id text,
        region_code text not null,
        institution_code text not null,
        opened_on date not null,
        due_on date not null,
        status text not null check (status in ('open', 'closed')),
        closed_on date,
        outcome text,
        closed_reason text,
        version integer not null,
        updated_at timestamptz not null default now()
    );
    create index followup_region on followup_case (region_code text_pattern_ops, status, due_on);
    create index followup_open_due on followup_case (due_on) where status = 'open';
    create unique index followup_of_screening on followup_case (screening_source, screening_id)
        where screening_source is not null;
    create unique index followup_high_risk_pregnancy on followup_case (pregnancy_id)
        where screening_type = 'pregnancy_high_risk';

    create table followup_action (
        case_id uuid not null references followup_case(case_id),
        seq integer not null,
        action text not null,
        on_date date not null,
        note text,
        outcome text,
        recorded_by text not null,
        recorded_at timestamptz not null default now(),
        primary key (case_id, seq)
    )
    """)


def downgrade() -> None:
    sql("drop table followup_action, followup_case, screening_history, screening, graded_visit, known_delivery, "
        "known_pregnancy, known_person, known_institution")
