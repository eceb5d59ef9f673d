"""Certificates persistence: raw asyncpg on the unit of work's connection (one round trip per statement)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
from kit.db import Database, from_json, raw
from kit.outbox import OutboxColumns, columns, insert_sql
from kit.settings import Settings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from certificates.domain.rules import CertificateFacts, ChildFacts, Custodian, SerialRange

#: a connection of a unit of work: from the API's pool, or under a SQLAlchemy connection (the consumer)
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


async def c(conn: AsyncConnection) -> Conn:
    return await raw(conn)


async def _no_reset(_: Conn) -> None:
    """Units of work keep no session state (no SET, LISTEN or session advisory lock), and a transaction left
    open is rolled back by the pool anyway: skip the reset query's round trip on every release."""


async def pool(settings: Settings) -> asyncpg.Pool:
    """The API's connection pool: at most twice `pool_size` connections, opened when first needed (the service
    starts while the database is down, and answers 503 until it is back).

    Twice: an issue is two short transactions of four or five round trips each, and on a busy box each round trip
    waits for a core; more of them in flight keep Postgres busy (50 clerks: ~200 issues/s with 10, ~255 with 20)."""
    dsn = settings.dsn(settings.database(), settings.role()).replace("postgresql+asyncpg://", "postgresql://", 1)
    # a connection idle longer than MCH_POOL_IDLE_S is closed: the pool shrinks back after a burst (decision 56)
    return await asyncpg.create_pool(dsn, min_size=0, max_size=2 * settings.pool_size, reset=_no_reset, timeout=3,
                                     command_timeout=60, max_inactive_connection_lifetime=settings.pool_idle_s,
                                     server_settings={"application_name": settings.process_name[:63]})


def _uuid(v: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(v)
    except ValueError:
        return None


# ------------------------------------------------------------------ registry facts
async def institution_region(db: Conn, code: str) -> str | None:
    r: str | None = await db.fetchval("select region_code from institution where code = $1", code)
    return r


async def child_facts(db: Conn, child_id: str) -> ChildFacts:
    cid = _uuid(child_id)
    r = await db.fetchrow(
        "select c.birth_date, b.institution_code, b.place, i.region_code from (select $1::uuid as id) q "
        "left join child c on c.child_id = q.id "
        "left join child_birth b on b.child_id = q.id and not b.voided "
        "left join institution i on i.code = b.institution_code", cid) if cid else None
    if r is None:
        return ChildFacts(child_id, None, None, None)
    return ChildFacts(child_id, r["birth_date"], r["institution_code"], r["place"], r["region_code"])


async def upsert_institution(db: Conn, code: str, region: str, kind: str, version: int) -> None:
    await db.execute(
        "insert into institution (code, region_code, kind, version) values ($1, $2, $3, $4) "
        "on conflict (code) do update set region_code = excluded.region_code, kind = excluded.kind, "
        "version = excluded.version where institution.version < excluded.version", code, region, kind, version)


async def upsert_child(db: Conn, child_id: str, birth_date: date, sex: str, mother_id: str, born_in: str,
                       version: int) -> None:
    await db.execute(
        "insert into child (child_id, birth_date, sex, mother_id, born_in_pregnancy_id, version) "
        "values ($1, $2, $3, $4, $5, $6) on conflict (child_id) do update set birth_date = excluded.birth_date, "
        "sex = excluded.sex, mother_id = excluded.mother_id, born_in_pregnancy_id = excluded.born_in_pregnancy_id, "
        "version = excluded.version where child.version < excluded.version",
        uuid.UUID(child_id), birth_date, sex, mother_id, born_in, version)


async def upsert_birth(db: Conn, rows: list[tuple[uuid.UUID, str, int, bool, str, str, date]]) -> None:
    """(child, encounter key, version, voided, institution, place, born on): the highest version wins."""
    await db.executemany(
        "insert into child_birth (child_id, encounter_key, version, voided, institution_code, place, born_on) "
        "values ($1, $2, $3, $4, $5, $6, $7) on conflict (child_id) do update set "
        "encounter_key = excluded.encounter_key, version = excluded.version, voided = excluded.voided, "
        "institution_code = excluded.institution_code, place = excluded.place, born_on = excluded.born_on "
        "where child_birth.encounter_key <> excluded.encounter_key or child_birth.version < excluded.version", rows)


async def retract_births(db: Conn, encounter_key: str, version: int, keep: list[uuid.UUID]) -> None:
    """A newer version of a delivery no longer naming a child (or voided) retracts that child's birth."""
    await db.execute("update child_birth set voided = true, version = $2 where encounter_key = $1 "
                     "and version < $2 and not (child_id = any($3::uuid[]))", encounter_key, version, keep)


# ------------------------------------------------------------------ stock
async def get_batch(db: Conn, batch_no: str) -> Any:
    return await db.fetchrow("select * from stock_batch where batch_no = $1", batch_no)


async def receive_batch(db: Conn, batch_no: str, r: SerialRange, received_on: date, by: str, region: str) -> int:
    """Insert the batch (held by the receiving office's `region`) and its serials; returns how many serials were
    new (fewer: some existed already)."""
    await db.execute("insert into stock_batch (batch_no, serial_from, serial_to, quantity, received_on, recorded_by, "
                     "region_code) values ($1, $2, $3, $4, $5, $6, $7)", batch_no, r.serial_from, r.serial_to,
                     r.quantity, received_on, by, region)
    status = await db.execute(
        "insert into serial (serial, batch_no, changed_by) select $1 || lpad(n::text, 9, '0'), $2, $5 "
        "from generate_series($3::bigint, $4::bigint) n on conflict (serial) do nothing",
        r.prefix, batch_no, r.first, r.last, by)
    return int(status.split()[-1])


async def confirm_batch(db: Conn, batch_no: str, by: str) -> Any:
    """The second person's confirmation (双人验收); None when the batch was confirmed already."""
    return await db.fetchrow("update stock_batch set confirmed_by = $2, confirmed_at = now() where batch_no = $1 "
                             "and confirmed_by is null returning *", batch_no, by)


async def batches(db: Conn, region_prefix: str, awaiting_only: bool) -> list[Any]:
    """The batches the caller's region holds, newest first (those awaiting confirmation only, if asked)."""
    return list(await db.fetch(
        "select batch_no, serial_from, serial_to, quantity, received_on, region_code, recorded_by, created_at, "
        "confirmed_by, confirmed_at from stock_batch where starts_with(region_code, $1) "
        "and (not $2 or confirmed_by is null) order by created_at desc limit 200", region_prefix, awaiting_only))


async def first_existing(db: Conn, r: SerialRange) -> Any:
    return await db.fetchrow("select s.serial, s.batch_no, b.region_code from serial s join stock_batch b "
                             "using (batch_no) where s.serial between $1 and $2 order by s.serial limit 1",
                             r.serial_from, r.serial_to)


async def allocate(db: Conn, allocation_id: uuid.UUID, institution: str, region: str, r: SerialRange,
                   on: date, by: str, caller_region: str) -> int:
    """Move the range from the bureau's stock to the institution: only serials of batches the caller's region
    holds, and whose region holds the institution (a bureau hands blanks to its own institutions)."""
    await db.execute(
        "insert into allocation (allocation_id, institution_code, institution_region, serial_from, serial_to, "
        "quantity, allocated_on, recorded_by) values ($1, $2, $3, $4, $5, $6, $7, $8)",
        allocation_id, institution, region, r.serial_from, r.serial_to, r.quantity, on, by)
    status = await db.execute(
        "update serial s set state = 'in_stock', institution_code = $1, institution_region = $2, "
        "allocation_id = $3, changed_by = $6 from stock_batch b where b.batch_no = s.batch_no "
        "and s.serial between $4 and $5 and s.state = 'bureau' and b.received_on <= $7 and b.confirmed_by is not null "
        "and starts_with(b.region_code, $8) and starts_with($2, b.region_code)",
        institution, region, allocation_id, r.serial_from, r.serial_to, by, on, caller_region)
    return int(status.split()[-1])


async def first_unavailable(db: Conn, r: SerialRange, on: date, caller_region: str,
                            institution_region: str) -> tuple[str, str]:
    """Why a range could not be allocated: its first serial that is missing (or held by a batch outside the
    caller's region: the same answer), not in bureau stock, later, or of a batch the institution is outside."""
    rows = await db.fetch("select s.serial, s.state, s.institution_code, b.received_on, b.region_code, b.batch_no, "
                          "b.confirmed_by from serial s "
                          "join stock_batch b using (batch_no) where s.serial between $1 and $2 "
                          "and starts_with(b.region_code, $3) order by s.serial",
                          r.serial_from, r.serial_to, caller_region)
    expect = r.first
    for row in rows:
        if int(row["serial"][1:]) != expect:
            return f"{r.prefix}{expect:09d}", "was never received"
        if row["state"] != "bureau":
            where = f" at {row['institution_code']}" if row["institution_code"] else ""
            return row["serial"], f"is {row['state']}{where}, not in the bureau's stock"
        if row["confirmed_by"] is None:
            return row["serial"], (f"is in batch {row['batch_no']}, which awaits a custodian's confirmation "
                                   "(双人验收)")
        if row["received_on"] > on:
            return row["serial"], f"was received on {row['received_on']}, after allocated_on {on}"
        if not institution_region.startswith(row["region_code"]):
            return row["serial"], f"is stock of region {row['region_code']}, which the institution is outside"
        expect += 1
    return f"{r.prefix}{expect:09d}", "was never received"


async def serial_row(db: Conn, serial: str, for_update: bool = False) -> Any:
    """The serial with `region`: its institution's region, or for the bureau's stock the receiving office's."""
    return await db.fetchrow("select s.*, coalesce(s.institution_region, b.region_code) as region, "
                             "b.region_code as batch_region from serial s "
                             "join stock_batch b using (batch_no) where s.serial = $1"
                             + (" for update of s" if for_update else ""), serial)


async def void_serial(db: Conn, serial: str, on: date, reason: str, by: str) -> Any:
    return await db.fetchrow(
        "update serial set state = 'voided', voided_on = $2, void_reason = $3, voided_by = $4, changed_by = $4 "
        "where serial = $1 returning *", serial, on, reason, by)


async def serial_history(db: Conn, serial: str) -> list[Any]:
    return list(await db.fetch("select version, state, changed_by, changed_at, detail from serial_history "
                               "where serial = $1 order by version", serial))


async def add_movements(db: Conn, rows: list[tuple[uuid.UUID, str | None, str, str, str | None, date, int, str,
                                                   str]]) -> None:
    """(movement id, institution or None = bureau, region, kind, certificate kind, on, signed quantity, from, to)"""
    await db.executemany(
        "insert into stock_movement (movement_id, institution_code, institution_region, kind, certificate_kind, "
        "on_date, quantity, serial_from, serial_to) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)", rows)


async def movements(db: Conn, institution: str | None, start: date, end: date,
                    region: str = "") -> list[tuple[str, str | None, bool, int]]:
    """An institution's movements, or (institution None) those of the bureaus' stock held within `region`."""
    rows = await db.fetch(
        "select kind, certificate_kind, on_date < $2 as before, sum(quantity)::int as qty from stock_movement "
        "where institution_code is not distinct from $1 and on_date <= $3 "
        "and ($1 is not null or starts_with(institution_region, $4)) group by 1, 2, 3", institution, start, end,
        region)
    return [(r["kind"], r["certificate_kind"], r["before"], r["qty"]) for r in rows]


async def institutions_in(db: Conn, region: str) -> list[tuple[str, str]]:
    rows = await db.fetch("select distinct institution_code, institution_region from stock_movement "
                          "where institution_code is not null and institution_region like $1 || '%' order by 1",
                          region)
    return [(r["institution_code"], r["institution_region"]) for r in rows]


async def stock_institution_region(db: Conn, code: str) -> str | None:
    r: str | None = await db.fetchval(
        "select coalesce((select region_code from institution where code = $1), "
        "(select institution_region from allocation where institution_code = $1 limit 1))", code)
    return r


# ------------------------------------------------------------------ custodians
async def current_custodians(db: Conn, institution: str, lock: bool = False) -> list[Custodian]:
    if lock:  # serialises assignments at one institution (a role change is end + insert)
        await db.execute("select pg_advisory_xact_lock(hashtext('custodian:' || $1))", institution)
    rows = await db.fetch("select institution_code, account_id, staff_id, name, role from custodian "
                          "where institution_code = $1 and ended_at is null", institution)
    return [Custodian(r["institution_code"], r["account_id"], r["staff_id"], r["name"], r["role"]) for r in rows]


async def assign_custodian(db: Conn, cu: Custodian, by: str) -> Any:
    await db.execute("update custodian set ended_at = now(), ended_by = $3 where institution_code = $1 "
                     "and role = $2 and ended_at is null", cu.institution_code, cu.role, by)
    return await db.fetchrow("insert into custodian (institution_code, account_id, staff_id, name, role, "
                             "assigned_by) values ($1, $2, $3, $4, $5, $6) returning *", cu.institution_code,
                             cu.account_id, cu.staff_id, cu.name, cu.role, by)


async def custodian_history(db: Conn, institution: str) -> list[Any]:
    return list(await db.fetch("select account_id, staff_id, name, role, assigned_at, assigned_by, ended_at, ended_by "
                               "from custodian where institution_code = $1 order by id", institution))


async def custodian_of(db: Conn, institution: str, role: str) -> str | None:
    r: str | None = await db.fetchval("select account_id from custodian where institution_code = $1 "
                                      "and role = $2 and ended_at is null", institution, role)
    return r


# ------------------------------------------------------------------ certificates
def facts(r: Any) -> CertificateFacts:
    return CertificateFacts(r["serial"], r["state"], r["kind"] or "", str(r["child_id"] or ""),
                            r["institution_code"] or "", r["prepared_by"] or "")


async def certificates_of_child(db: Conn, child_id: str, region: str) -> list[CertificateFacts]:
    """The child's certificates issued by institutions within `region`."""
    cid = _uuid(child_id)
    if cid is None:
        return []
    # a merged child's certificates are the child's, whichever of its records they were issued for (合并)
    return [facts(r) for r in await db.fetch("select * from serial where child_id in (select child_records($1)) "
                                             "and starts_with(institution_region, $2) order by serial", cid, region)]


@dataclass(frozen=True)
class PrepareFacts:
    """Everything a preparation is decided on, read in one round trip (the hot path of issuing)."""

    keeper: str | None                # the institution's current certificate custodian (an account id)
    region: str | None                # the institution's region (None: unknown institution)
    child: ChildFacts
    certificates: list[CertificateFacts]
    previous: CertificateFacts | None


def _cert(a: list[Any]) -> CertificateFacts:
    return CertificateFacts(a[0], a[1], a[2] or "", a[3] or "", a[4] or "", a[5] or "")


async def prepare_facts(db: Conn, institution: str, child_id: str, previous_serial: str | None) -> PrepareFacts:
    cid = _uuid(child_id)
    r = await db.fetchrow(
        "select (select account_id from custodian k where k.institution_code = $1 and k.role = 'certificate' "
        "        and k.ended_at is null) as keeper, "
        "  (select region_code from institution where code = $1) as region, "
        "  c.birth_date, b.institution_code as born_at, b.place, bi.region_code as child_region, "
        "  (select coalesce(json_agg(json_build_array(serial, state, kind, child_id, institution_code, "
        "          prepared_by) order by serial), '[]') from serial "
        "   where child_id in (select child_records($2))) as certs, "
        "  (select json_build_array(serial, state, kind, child_id, institution_code, prepared_by) "
        "   from serial where serial = $3 and child_id is not null) as previous "
        "from (select 1) q left join child c on c.child_id = $2 "
        "left join child_birth b on b.child_id = $2 and not b.voided "
        "left join institution bi on bi.code = b.institution_code", institution, cid, previous_serial)
    assert r is not None
    prev = from_json(r["previous"]) if r["previous"] else None
    return PrepareFacts(r["keeper"], r["region"],
                        ChildFacts(child_id, r["birth_date"], r["born_at"], r["place"], r["child_region"]),
                        [_cert(a) for a in from_json(r["certs"])], _cert(prev) if prev else None)


async def draw_and_prepare(db: Conn, institution: str, kind: str, child_id: str, child_name: str,
                           evidence_ref: str | None, previous_serial: str | None, prepared_by: str,
                           on: date, movement_id: uuid.UUID) -> Any:
    """Take the institution's lowest blank that no other transaction holds, make it this certificate, and
    record its move out of the stock (one statement).

    `skip locked` lets concurrent clerks draw different serials; a rolled-back draw leaves its serial in
    stock for the next one, so serials are never skipped and never drawn twice.
    """
    return await db.fetchrow(
        "with d as (update serial set state = 'prepared', kind = $2, child_id = $3, child_name = $4, "
        "  evidence_ref = $5, previous_serial = $6, prepared_by = $7, prepared_on = $8, changed_by = $7 "
        "  where serial = (select serial from serial where institution_code = $1 and state = 'in_stock' "
        "  order by serial limit 1 for update skip locked) returning *), "
        "m as (insert into stock_movement (movement_id, institution_code, institution_region, kind, "
        "  certificate_kind, on_date, quantity, serial_from, serial_to) select $9, institution_code, "
        "  coalesce(institution_region, ''), 'issued', kind, prepared_on, -1, serial, serial from d) "
        "select * from d",
        institution, kind, uuid.UUID(child_id), child_name, evidence_ref, previous_serial, prepared_by, on,
        movement_id)


async def certificate_for_seal(db: Conn, serial: str) -> Any:
    """The certificate (locked) and its institution's current seal custodian (an account id)."""
    return await db.fetchrow(
        "select s.*, (select account_id from custodian k where k.institution_code = s.institution_code "
        "and k.role = 'seal' and k.ended_at is null) as seal_keeper from serial s where s.serial = $1 "
        "for update of s", serial)


def sealed(row: Any, sealed_by: str, on: date) -> dict[str, Any]:
    """The locked prepared `row` as `seal` will leave it (the trigger `serial_guard` adds one to the version)."""
    return {**dict(row), "state": "issued", "sealed_by": sealed_by, "issued_on": on, "changed_by": sealed_by,
            "version": row["version"] + 1}


async def seal(db: Conn, serial: str, sealed_by: str, on: date, outbox: OutboxColumns,
               audit: tuple[str, str, str, str, str]) -> Any:
    """Seal, write its events and append the audit row: one statement (one round trip)."""
    return await db.fetchrow(
        "with s as (update serial set state = 'issued', sealed_by = $2, issued_on = $3, changed_by = $2 "
        "  where serial = $1 returning *), "
        f"o as ({insert_sql(4, 'where exists (select from s)')}), "
        f"a as ({_audit_sql(9)} where exists (select from s)) "
        "select * from s", serial, sealed_by, on, *outbox, *audit)


async def supersede(db: Conn, serial: str, by_serial: str, on: date, actor: str) -> Any:
    return await db.fetchrow("update serial set state = 'superseded', superseded_by = $2, superseded_on = $3, "
                             "changed_by = $4 where serial = $1 returning *", serial, by_serial, on, actor)


async def register(db: Conn, institution: str, start: date, end: date) -> list[Any]:
    return list(await db.fetch(
        "select s.*, c.birth_date, "
        "(select array[name, staff_id] from custodian k where k.institution_code = s.institution_code "
        " and k.account_id = s.prepared_by order by id desc limit 1) as preparer, "
        "(select array[name, staff_id] from custodian k where k.institution_code = s.institution_code "
        " and k.account_id = s.sealed_by order by id desc limit 1) as sealer "
        "from serial s left join child c on c.child_id = s.child_id "
        "where s.institution_code = $1 and s.prepared_on between $2 and $3 order by s.serial",
        institution, start, end))


async def verify_row(db: Conn, serial: str) -> Any:
    return await db.fetchrow("select s.state, s.child_name, c.birth_date from serial s "
                             "left join child c on c.child_id = s.child_id where s.serial = $1", serial)


# ------------------------------------------------------------------ events and audit
def _audit_sql(i: int) -> str:
    """Append an audit row (parameters $i..$i+4: actor, client id, action, subject, details)."""
    return (f"insert into audit_log (actor, client_id, action, subject, details) "
            f"select ${i}, ${i + 1}, ${i + 2}, ${i + 3}, ${i + 4}")


async def audit(db: Conn, actor: str, client_id: str, action: str, subject: str, details: str,
                outbox: OutboxColumns | None = None) -> None:
    """Write the unit of work's events to the outbox and append to the audit hash chain (the insert trigger
    numbers and chains the row), in one statement. Call it last in a unit of work: it holds the chain's head
    until commit."""
    await db.execute(
        f"with o as ({insert_sql(1)}) {_audit_sql(6)}", *(outbox or columns([])), actor, client_id, action,
        subject, details)


async def pii_read(db: Conn, client_id: str, request_id: str, kind: str, subject: str, fields: list[str],
                   unmasked: bool) -> None:
    await db.execute("insert into pii_audit (client_id, request_id, subject_kind, subject_id, fields, unmasked) "
                     "values ($1, $2, $3, $4, $5, $6)", client_id, request_id, kind, subject, fields, unmasked)


# ------------------------------------------------------------------ person accounts (the shared credential database)
async def account(auth: Database, account_id: str) -> dict[str, Any] | None:
    """A person or system account as the credential database holds it (every service reads it; decisions.md:
    one identity store), or None when it does not exist or is disabled."""
    async with auth.connect() as conn:
        row = (await conn.execute(text(
            "select client_id, name, kind, roles, institution_code, staff_id, region_prefix from api_client "
            "where client_id = :id and disabled_at is null"), {"id": account_id})).mappings().first()
    return dict(row) if row else None


async def save_merge(db: Conn, merge_id: str, survivor: str, duplicate: str, version: int, unmerged: bool) -> None:
    """A registry merge (合并) as certificates keeps it: the newest version wins."""
    await db.execute(
        "insert into person_merge (merge_id, survivor_id, duplicate_id, version, unmerged) "
        "values ($1, $2, $3, $4, $5) on conflict (merge_id) do update set version = excluded.version, "
        "unmerged = excluded.unmerged where person_merge.version < excluded.version",
        merge_id, uuid.UUID(survivor), uuid.UUID(duplicate), version, unmerged)
