"""Identity documents of every kind on the person, and what searching persons needs (issue 19).

`document_type` + `document_number` (one per person, unique per kind: the dedup key of a registration made with a
passport or a permit as `id_number` is of one made with a resident identity card); `name_pinyin` (the name in
toneless pinyin, pypinyin, so that 王晓丽 finds 王小丽 and a search typed in pinyin finds both). Resident
identity numbers already stored are copied as documents; the pinyin of stored names is computed here.

Revision ID: r0005_h3
"""
from alembic import op
from kit.alembic_env import sql
from sqlalchemy import text

revision = "r0005_h3"
down_revision = "r0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    alter table person add column document_type text;
    alter table person add column document_number text;
    alter table person add column name_pinyin text;
    update person set document_type = 'resident_id', document_number = id_number where id_number is not null;
    create unique index person_document on person (document_type, document_number)
        where document_number is not null;
    create index person_document_number on person (document_number) where document_number is not null;
    create index person_name on person (name) where name <> '';
    create index person_name_pinyin on person (name_pinyin text_pattern_ops) where name_pinyin is not null;
    create index person_birth_date on person (birth_date);
    create index person_phone on person (phone) where phone is not null;
    create index person_mother on person (mother_id) where mother_id is not null
    """)
    _pinyin_of_stored_names()


def _pinyin_of_stored_names() -> None:
    from registry.domain.names import pinyin_key

    bind = op.get_bind()
    rows = bind.execute(text("select person_id, name from person where name <> ''")).fetchall()
    for i in range(0, len(rows), 10_000):  # one statement per 10,000 persons (a registry of millions migrates)
        chunk = rows[i:i + 10_000]
        bind.execute(text("update person p set name_pinyin = x.py from unnest(cast(:ids as uuid[]), "
                          "cast(:pys as text[])) as x(id, py) where p.person_id = x.id"),
                     {"ids": [pid for pid, _ in chunk], "pys": [pinyin_key(name) for _, name in chunk]})


def downgrade() -> None:
    sql("""
    drop index person_mother;
    drop index person_phone;
    drop index person_birth_date;
    drop index person_name_pinyin;
    drop index person_name;
    drop index person_document_number;
    drop index person_document;
    alter table person drop column name_pinyin;
    alter table person drop column document_number;
    alter table person drop column document_type
    """)
