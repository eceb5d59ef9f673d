"""Submit → approve → lock (上报 → 审核 → 锁定): filings with their snapshot, an append-only trail of every step,
and the adjustments (late corrections) that changed a locked filing's live figures.

`filing.figures` is the filed snapshot: a trigger refuses to change it (or the filing's identity) while the
filing is approved, and the trail (`filing_step`, one row per step with the figures filed at each submission)
refuses updates and deletes, so what was filed can always be shown.

Revision ID: i0004
"""
from alembic import op
from kit.alembic_env import sql

revision = "i0004"
down_revision = "i0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sql("""
    create table filing (
        report text collate "C" not null,
        period text collate "C" not null,
        unit text collate "C" not null,
        state text not null check (state in ('submitted', 'approved', 'returned')),
        figures jsonb not null,
        catalogue_digest text not null,
        submitted_by text not null,
        submitted_by_name text not null,
        submitted_at timestamptz not null,
        approved_by text,
        approved_by_name text,
        approved_at timestamptz,
        filed_count integer not null default 1,
        primary key (report, period, unit)
    );

    create table filing_step (
        id bigserial primary key,
        report text collate "C" not null,
        period text collate "C" not null,
        unit text collate "C" not null,
        action text not null check (action in ('submit', 'approve', 'unapprove')),
        actor text not null,
        actor_name text not null,
        reason text,
        figures jsonb,
        request_id text not null default '',
        at timestamptz not null default now()
    );
    create index filing_step_of on filing_step (report, period, unit, id);

    create table adjustment (
        id bigserial primary key,
        report text collate "C" not null,
        period text collate "C" not null,
        unit text collate "C" not null,
        engine_unit text not null,
        measure text not null,
        delta bigint not null,
        records text[] not null,
        request_ids text[] not null,
        applied_at timestamptz not null default now()
    );
    create index adjustment_of on adjustment (report, period, unit, id);

    """)
    # function bodies hold semicolons at line ends: one statement each, not through sql()'s splitter
    op.execute("""
    create function filing_locked() returns trigger language plpgsql as $$
    begin
        if tg_op = 'DELETE' then
            raise exception 'a filing is never deleted';
        end if;
        if old.state = 'approved' and (new.figures is distinct from old.figures
                or new.report <> old.report or new.period <> old.period or new.unit <> old.unit
                or new.submitted_at is distinct from old.submitted_at) then
            raise exception 'filing % % % is approved: its filed figures never change',
                old.report, old.period, old.unit;
        end if;
        return new;
    end $$""")
    op.execute("create trigger filing_locked before update or delete on filing for each row "
               "execute function filing_locked()")
    op.execute("create function append_only() returns trigger language plpgsql as $$ "
               "begin raise exception '% is append-only', tg_table_name; end $$")
    op.execute("create trigger filing_step_append_only before update or delete on filing_step "
               "for each row execute function append_only()")


def downgrade() -> None:
    sql("""
    drop table adjustment;
    drop table filing_step;
    drop table filing;
    drop function filing_locked();
    drop function append_only();
    """)
