"""Probabilistic person matching (issue 19): each person's match keys, and the matches found — automatic links
(audit) and pairs waiting for a reviewer (the review queue, 待审核疑似重复).

Revision ID: r0005_h4
"""
from alembic import op
from kit.alembic_env import sql

revision = "r0005_h4"
down_revision = "r0005_h3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    create table person_match_key (
        person_id uuid primary key references person(person_id),
        name text not null,
        name_py text not null,
        surname_py text not null,
        given_py text not null,
        birth_date date not null,
        birth_year integer not null,
        sex char(1) not null,
        phone text,
        residence char(12) not null,
        mother_id uuid,
        document text
    );
    create index person_match_key_name_year on person_match_key (name_py, birth_year);
    create index person_match_key_name_county on person_match_key (name_py, substr(residence, 1, 6));
    create index person_match_key_date_surname on person_match_key (birth_date, surname_py);
    create index person_match_key_date_given on person_match_key (birth_date, given_py);
    create index person_match_key_phone on person_match_key (phone) where phone is not null;
    create index person_match_key_document on person_match_key (document) where document is not null;

    create table person_match (
        match_id bigserial primary key,
        person_id uuid references person(person_id),
        candidate_id uuid not null references person(person_id),
        region_code char(12) not null,
        match_weight double precision not null,
        probability double precision not null,
        levels jsonb not null,
        model_version text not null,
        status text not null check (status in ('linked', 'pending', 'confirmed', 'rejected')),
        created_by text not null,
        created_at timestamptz not null default now(),
        decided_by text,
        decided_at timestamptz,
        reason text,
        check ((status = 'linked') = (person_id is null))
    );
    create index person_match_queue on person_match (region_code, match_id) where status = 'pending';
    create unique index person_match_pair on person_match (person_id, candidate_id) where person_id is not null
    """)
    _backfill()


def _backfill() -> None:
    """Match keys of the persons registered before matching existed (pinyin is computed in Python)."""
    from registry.domain import matching

    conn = op.get_bind()
    rows = conn.exec_driver_sql(
        "select p.person_id, p.name, p.sex, p.birth_date, p.phone, p.mother_id, p.id_number, "
        "(select r.region_code from person_residence r where r.person_id = p.person_id order by r.since desc "
        "limit 1) as residence from person p").fetchall()
    for r in rows:
        f = matching.features(r.name, r.sex, r.birth_date, r.residence, r.phone,
                              str(r.mother_id) if r.mother_id else None, r.id_number)
        conn.exec_driver_sql(
            "insert into person_match_key values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            (r.person_id, f.name, f.name_py, f.surname_py, f.given_py, r.birth_date, f.birth_year, f.sex, f.phone,
             f.residence, r.mother_id, f.document))


def downgrade() -> None:
    sql("""
    drop table person_match;
    drop table person_match_key
    """)
