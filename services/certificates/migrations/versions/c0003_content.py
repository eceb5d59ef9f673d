"""Certificate content (the form's fields, versioned) and printed sheets (each counted, with its reason).

Revision ID: c0003
"""
from alembic import op

revision = "c0003"
down_revision = "c0002"
branch_labels = None
depends_on = None

STATEMENTS = [
    """create table certificate_content (
        serial text not null references serial (serial),
        version integer not null,
        content jsonb not null,
        recorded_by text not null,
        recorded_at timestamptz not null default now(),
        primary key (serial, version)
    )""",
    """create table certificate_print (
        serial text not null references serial (serial),
        print_no integer not null check (print_no > 0),
        reason text,
        printed_by text not null,
        printed_at timestamptz not null default now(),
        primary key (serial, print_no),
        check (print_no = 1 or reason is not null)
    )""",
]


def upgrade() -> None:
    for s in STATEMENTS:
        op.execute(s)


def downgrade() -> None:
    op.execute("drop table certificate_print")
    op.execute("drop table certificate_content")
