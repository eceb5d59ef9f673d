"""Certificates: registry facts (institutions, children, births), the blank stock ledger (batches, allocations,
one row per serial with its state and history, stock movements), custodians, and the hash-chained audit log.

The rules that must never break are enforced by the database, not only by code:
- a serial exists once (primary key), has exactly one state, moves only along the allowed transitions, and a
  voided or superseded serial never changes again (trigger `serial_guard`); serials are never deleted;
- one issued certificate per child, one in preparation per child, one first issue per child, a certificate
  superseded at most once (unique partial indexes);
- the sealer is never the preparer (check); one current custodian per role and institution, and one current
  role per person and institution (unique partial indexes);
- the audit log, stock movements and serial history are append-only (triggers refuse update/delete/truncate);
  every audit row is chained to the previous by sha256 inside the insert trigger.

Revision ID: c0001
"""
from alembic import op

revision = "c0001"
down_revision = None
branch_labels = None
depends_on = None

KINDS = "('first', 'first_out_of_institution', 'reissue', 'replacement')"

STATEMENTS = [
    # ------------------------------------------------------------ registry facts (from registry events)
    """create table institution (
        code text primary key,
        region_code text not null,
        kind text not null,
        version integer not null
    )""",
    """create table child (
        child_id uuid primary key,
        birth_date date not null,
        sex text not null,
        mother_id text not null default '',
        born_in_pregnancy_id text not null default '',
        version integer not null
    )""",
    """create table child_birth (
        child_id uuid primary key,
        encounter_key text not null,
        version integer not null,
        voided boolean not null,
        institution_code text not null,
        place text not null,
        born_on date not null
    )""",
    # ------------------------------------------------------------ stock
    """create table stock_batch (
        batch_no text primary key,
        serial_from text not null,
        serial_to text not null,
        quantity integer not null check (quantity > 0),
        received_on date not null,
        recorded_by text not null,
        created_at timestamptz not null default now()
    )""",
    """create table allocation (
        allocation_id uuid primary key,
        institution_code text not null,
        institution_region text not null,
        serial_from text not null,
        serial_to text not null,
        quantity integer not null check (quantity > 0),
        allocated_on date not null,
        recorded_by text not null,
        created_at timestamptz not null default now()
    )""",
    f"""create table serial (
        serial text primary key check (serial ~ '^[A-Z][0-9]{{9}}$'),
        batch_no text not null references stock_batch (batch_no),
        state text not null default 'bureau'
            check (state in ('bureau', 'in_stock', 'prepared', 'issued', 'superseded', 'voided')),
        institution_code text,
        institution_region text,
        allocation_id uuid references allocation (allocation_id),
        kind text check (kind in {KINDS}),
        child_id uuid,
        child_name text,
        evidence_ref text,
        previous_serial text references serial (serial),
        prepared_by text,
        prepared_on date,
        sealed_by text,
        issued_on date,
        voided_on date,
        void_reason text,
        voided_by text,
        superseded_on date,
        superseded_by text,
        version integer not null default 1,
        changed_by text not null,
        changed_at timestamptz not null default now(),
        constraint bureau_stock_has_no_institution check (state <> 'bureau' or institution_code is null),
        constraint institution_states_have_institution
            check (state not in ('in_stock', 'prepared', 'issued', 'superseded') or institution_code is not null),
        constraint certificate_has_child_kind_preparer check (
            state not in ('prepared', 'issued', 'superseded')
            or (child_id is not null and kind is not null and prepared_by is not null and prepared_on is not null)),
        constraint issued_is_sealed check (state not in ('issued', 'superseded') or sealed_by is not null),
        constraint seal_apart_from_certificate check (sealed_by is null or sealed_by <> prepared_by),
        constraint reissue_names_previous
            check (kind is null or kind not in ('reissue', 'replacement') or previous_serial is not null),
        constraint out_of_institution_has_evidence
            check (kind is null or kind <> 'first_out_of_institution' or coalesce(evidence_ref, '') <> ''),
        constraint void_has_reason check (state <> 'voided' or (coalesce(void_reason, '') <> '' and voided_on is not null)),
        constraint superseded_has_successor check (state <> 'superseded' or superseded_by is not null)
    )""",
    "create unique index one_valid_certificate_per_child on serial (child_id) where state = 'issued'",
    "create unique index one_certificate_in_preparation_per_child on serial (child_id) where state = 'prepared'",
    "create unique index one_first_issue_per_child on serial (child_id) "
    "where kind in ('first', 'first_out_of_institution') and state <> 'voided'",
    "create unique index superseded_at_most_once on serial (previous_serial) "
    "where previous_serial is not null and state <> 'voided'",
    "create index serial_in_stock on serial (institution_code, serial) where state = 'in_stock'",
    "create index serial_bureau on serial (serial) where state = 'bureau'",
    "create index serial_child on serial (child_id) where child_id is not null",
    "create index serial_register on serial (institution_code, prepared_on) where prepared_on is not null",
    """create table serial_history (
        id bigserial primary key,
        serial text not null,
        version integer not null,
        state text not null,
        changed_by text not null,
        changed_at timestamptz not null,
        detail text not null default '',
        unique (serial, version)
    )""",
    # the allowed life of a serial; anything else is refused whatever code runs
    """create function serial_guard() returns trigger language plpgsql as $$
    begin
        if tg_op = 'DELETE' then
            raise exception 'serial % cannot be deleted: every serial is accounted for for life', old.serial
                using errcode = 'P0001';
        end if;
        if new.serial <> old.serial or new.batch_no <> old.batch_no then
            raise exception 'serial % cannot change its number or batch', old.serial using errcode = 'P0001';
        end if;
        if old.state in ('voided', 'superseded') then
            raise exception 'serial % is % and can never change again', old.serial, old.state using errcode = 'P0001';
        end if;
        if (old.state, new.state) not in (('bureau', 'in_stock'), ('bureau', 'voided'), ('in_stock', 'prepared'),
                ('in_stock', 'voided'), ('prepared', 'issued'), ('prepared', 'voided'), ('issued', 'superseded'),
                ('issued', 'voided')) then
            raise exception 'serial %: % -> % is not an allowed transition', old.serial, old.state, new.state
                using errcode = 'P0001';
        end if;
        if old.institution_code is not null and new.institution_code is distinct from old.institution_code then
            raise exception 'serial % belongs to %; it cannot move to another institution', old.serial,
                old.institution_code using errcode = 'P0001';
        end if;
        if old.state in ('prepared', 'issued') and (new.child_id, new.kind, new.child_name, new.prepared_by,
                new.prepared_on, new.previous_serial, new.evidence_ref)
                is distinct from (old.child_id, old.kind, old.child_name, old.prepared_by, old.prepared_on,
                old.previous_serial, old.evidence_ref) then
            raise exception 'certificate % cannot be rewritten; void it and issue another', old.serial
                using errcode = 'P0001';
        end if;
        if old.state = 'issued' and (new.sealed_by, new.issued_on) is distinct from (old.sealed_by, old.issued_on) then
            raise exception 'certificate % was sealed; the seal cannot be rewritten', old.serial using errcode = 'P0001';
        end if;
        new.version := old.version + 1;
        new.changed_at := now();
        return new;
    end $$""",
    "create trigger serial_guard before update or delete on serial for each row execute function serial_guard()",
    """create function serial_history_append() returns trigger language plpgsql as $$
    begin
        insert into serial_history (serial, version, state, changed_by, changed_at, detail)
        values (new.serial, new.version, new.state, new.changed_by, new.changed_at,
                coalesce(new.void_reason, ''));
        return null;
    end $$""",
    "create trigger serial_history after insert or update on serial for each row "
    "execute function serial_history_append()",
    """create table stock_movement (
        id bigserial primary key,
        movement_id uuid not null unique,
        institution_code text,
        institution_region text not null default '',
        kind text not null check (kind in ('received', 'allocated', 'issued', 'voided')),
        certificate_kind text check (certificate_kind in {KINDS}),
        on_date date not null,
        quantity integer not null check (quantity <> 0),
        serial_from text not null,
        serial_to text not null,
        created_at timestamptz not null default now()
    )""".replace("{KINDS}", KINDS),
    "create index stock_movement_institution on stock_movement (institution_code, on_date)",
    "create index stock_movement_region on stock_movement (institution_region, on_date)",
    # ------------------------------------------------------------ custodians (专人管理, 证章分离)
    """create table custodian (
        id bigserial primary key,
        institution_code text not null,
        staff_id text not null,
        name text not null,
        role text not null check (role in ('certificate', 'seal')),
        assigned_at timestamptz not null default now(),
        assigned_by text not null,
        ended_at timestamptz,
        ended_by text
    )""",
    "create unique index one_custodian_per_role on custodian (institution_code, role) where ended_at is null",
    "create unique index one_role_per_person on custodian (institution_code, staff_id) where ended_at is null",
    """create function custodian_guard() returns trigger language plpgsql as $$
    begin
        if tg_op = 'DELETE' or old.ended_at is not null or new.ended_at is null
                or (new.institution_code, new.staff_id, new.name, new.role, new.assigned_at, new.assigned_by)
                is distinct from (old.institution_code, old.staff_id, old.name, old.role, old.assigned_at,
                old.assigned_by) then
            raise exception 'custodian history is append-only: an assignment can only be ended, once'
                using errcode = 'P0001';
        end if;
        return new;
    end $$""",
    "create trigger custodian_guard before update or delete on custodian for each row "
    "execute function custodian_guard()",
    # ------------------------------------------------------------ audit (终身责任追究)
    # 16 independent chains (lanes): a transaction chains its row onto any lane no other one holds, so
    # concurrent clerks do not queue on one chain head until commit; each lane is a complete hash chain
    """create table audit_head (
        lane integer primary key check (lane between 0 and 15),
        seq bigint not null,
        hash text not null
    )""",
    "insert into audit_head select lane, 0, repeat('0', 64) from generate_series(0, 15) lane",
    """create table audit_log (
        id bigserial unique,
        lane integer not null,
        seq bigint not null,
        at timestamptz not null,
        actor text not null,
        client_id text not null,
        action text not null,
        subject text not null,
        details text not null,
        prev_hash text not null,
        hash text not null,
        primary key (lane, seq)
    )""",
    """create function audit_canonical(a audit_log) returns text language sql immutable as $$
        select json_build_array(a.lane, a.seq, to_char(a.at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                                a.actor, a.client_id, a.action, a.subject, a.details)::text
    $$""",
    """create function audit_chain() returns trigger language plpgsql as $$
    declare
        head audit_head;
    begin
        select * into head from audit_head order by random() limit 1 for update skip locked;
        if not found then
            select * into head from audit_head where lane = pg_backend_pid() % 16 for update;
        end if;
        new.lane := head.lane;
        new.seq := head.seq + 1;
        new.at := clock_timestamp();
        new.prev_hash := head.hash;
        new.hash := encode(sha256(convert_to(new.prev_hash || audit_canonical(new), 'UTF8')), 'hex');
        update audit_head set seq = new.seq, hash = new.hash where lane = head.lane;
        return new;
    end $$""",
    "create trigger audit_chain before insert on audit_log for each row execute function audit_chain()",
    """create function append_only() returns trigger language plpgsql as $$
    begin
        raise exception '% is append-only: % refused', tg_table_name, tg_op using errcode = 'P0001';
    end $$""",
    "create trigger audit_append_only before update or delete on audit_log for each row "
    "execute function append_only()",
    "create trigger audit_no_truncate before truncate on audit_log for each statement execute function append_only()",
    "create trigger movement_append_only before update or delete on stock_movement for each row "
    "execute function append_only()",
    "create trigger history_append_only before update or delete on serial_history for each row "
    "execute function append_only()",
    "create trigger serial_no_truncate before truncate on serial for each statement execute function append_only()",
]


def upgrade() -> None:
    for stmt in STATEMENTS:
        op.execute(stmt)


def downgrade() -> None:
    op.execute("drop table audit_log, audit_head, custodian, stock_movement, serial_history, serial, allocation, "
               "stock_batch, child_birth, child, institution cascade")
    for fn in ("serial_guard", "serial_history_append", "custodian_guard", "audit_chain", "append_only"):
        op.execute(f"drop function if exists {fn}() cascade")
    op.execute("drop function if exists audit_canonical(audit_log)")
