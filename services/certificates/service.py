"""Certificate use cases: each opens its own unit of work (`Unit`: the connection and transaction, the caller's
scope, one China-time clock), checks every object it touches against the caller's region before anything is
written or returned, and commits the state change, its events (outbox) and its audit row together.

Who acts is the authenticated person (`Principal.actor`, an account id): prepared_by, sealed_by, voided_by,
recorded_by and every audit row record it; nothing in a request body names an actor. The audit row is appended
last: its insert trigger holds the chain's head until the commit, so the shorter the time after it, the more
clerks can issue at once.
"""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg
import orjson
from kit import outbox
from kit.auth import Principal
from kit.clock import Clock, today_cn
from kit.db import Database
from kit.records import DomainError

from certificates.domain import content as form
from certificates.domain import rules
from certificates.domain.rules import Custodian, conflict, invalid
from certificates.events import publish
from certificates.store import sql
from certificates.store.sql import Conn


def today() -> date:
    """Certificates are dated in China time (签发日期)."""
    return today_cn()


@dataclass
class Unit:
    """A use case's unit of work: where it reads and writes (the service's pool: one connection, one
    transaction), who asks (the caller's scope: person or system, roles, institution, region) and when (one
    China-time clock). Object-level authorisation happens here, in one place: `see`."""

    pool: asyncpg.Pool
    scope: Principal
    auth: Database | None = None   # the shared credential database (person accounts), for custodian assignment
    clock: Clock = field(default_factory=Clock)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[Conn]:
        async with self.pool.acquire() as db, db.transaction():
            yield db

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Conn]:
        async with self.pool.acquire() as db:
            yield db

    @property
    def actor(self) -> str:
        return self.scope.actor

    def today(self) -> date:
        return self.clock.today()

    def see(self, region: str | None, what: str, key: str) -> None:
        """The object's current region is the caller's, or it does not exist for them (404, nothing revealed)."""
        self.scope.require_object(region, what, key)

    def known(self, region: str | None, field_name: str, what: str, key: str) -> str:
        """A referenced object (in a body or a query) outside the caller's region is unknown, exactly as a missing
        one: 422 naming the field."""
        if region is None or not self.scope.sees_region(region):
            raise invalid(field_name, f"unknown {what} {key}")
        return region


def _details(**kw: Any) -> str:
    return orjson.dumps({k: v for k, v in kw.items() if v is not None}, default=str,
                        option=orjson.OPT_SORT_KEYS).decode()


def _unique_violation(e: asyncpg.UniqueViolationError) -> DomainError:
    """A race another transaction won: the database's unique indexes said no (the rules' last line)."""
    what = {
        "one_valid_certificate_per_child": ("child_id", "the child already has a valid certificate"),
        "one_certificate_in_preparation_per_child": ("child_id", "a certificate is already being prepared for "
                                                                 "this child"),
        "one_first_issue_per_child": ("child_id", "the child already has a first issue"),
        "superseded_at_most_once": ("previous_serial", "the previous certificate was already reissued or "
                                                       "replaced"),
        "one_custodian_per_role": ("role", "another assignment of this role happened at the same time"),
        "one_role_per_person": ("account_id", "the person already holds the other role at this institution "
                                              "(证章分离)"),
    }.get(getattr(e, "constraint_name", "") or "", ("body", "another request changed the same record at the "
                                                             "same time; retry"))
    return conflict(what[1], what[0])


# ------------------------------------------------------------------ stock
async def receive_batch(u: Unit, batch_no: str, serial_from: str, serial_to: str,
                        received_on: date) -> tuple[int, dict[str, Any]]:
    """申领入库, first of two: the office head records a numbered batch of blanks for the central stock of the
    receiving office's region. It is not usable (nor counted as received) until a custodian confirms it."""
    r = rules.parse_range(serial_from, serial_to)
    rules.check_not_future(received_on, u.today(), "received_on")
    region = u.scope.region_prefix
    out = {"batch_no": batch_no, "serial_from": r.serial_from, "serial_to": r.serial_to, "quantity": r.quantity,
           "received_on": received_on.isoformat()}
    async with u.begin() as db:
        old = await sql.get_batch(db, batch_no)
        if old is not None:
            if not u.scope.sees_region(old["region_code"]):
                raise conflict(f"batch number {batch_no} is already used: batch numbers are unique", "batch_no")
            if (old["serial_from"], old["serial_to"], old["received_on"]) == (r.serial_from, r.serial_to,
                                                                              received_on):
                return 200, batch_view(old)
            raise conflict(f"batch {batch_no} was received with {old['serial_from']}–{old['serial_to']} on "
                           f"{old['received_on']}", "batch_no")
        new = await sql.receive_batch(db, batch_no, r, received_on, u.actor, region)
        if new != r.quantity:
            clash = await sql.first_existing(db, r)
            where = f" in batch {clash['batch_no']}" if u.scope.sees_region(clash["region_code"]) else ""
            raise conflict(f"serial {clash['serial']} was already received{where}: a serial exists once",
                           "serial_from")
        await sql.audit(db, u.actor, u.scope.client_id, "stock.receive", f"batch:{batch_no}",
                        _details(**out, region=region))
        row = await sql.get_batch(db, batch_no)
    return 201, batch_view(row)


async def confirm_batch(u: Unit, batch_no: str) -> dict[str, Any]:
    """申领入库, second of two (双人验收): a certificate custodian of the region, another person than the office
    head who recorded it, confirms the batch counted and sealed as delivered. Only then do its serials enter the
    stock (the received movement, dated the day it was received) and can be allocated."""
    rules.check_confirmer(u.scope.is_person and u.scope.has_role("certificate_custodian"))
    async with u.begin() as db:
        old = await sql.get_batch(db, batch_no)
        u.see(old["region_code"] if old else None, "batch", batch_no)
        rules.check_batch_confirmation(u.actor, old["recorded_by"], old["confirmed_by"])
        if old["confirmed_by"] == u.actor:
            return batch_view(old)  # the same confirmation sent again
        row = await sql.confirm_batch(db, batch_no, u.actor)
        if row is None:
            raise conflict(f"batch {batch_no} was confirmed at the same time by another person", "batch_no")
        r = rules.parse_range(row["serial_from"], row["serial_to"])
        region, on, mid = row["region_code"], row["received_on"], uuid.uuid4()
        await sql.add_movements(db, [(mid, None, region, "received", None, on, r.quantity, r.serial_from,
                                      r.serial_to)])
        await sql.audit(db, u.actor, u.scope.client_id, "stock.confirm", f"batch:{batch_no}",
                        _details(recorded_by=row["recorded_by"], quantity=r.quantity),
                        outbox.columns([publish.stock_moved(mid, None, region, "received", on, r.quantity,
                                                            r.serial_from, r.serial_to)]))
    return batch_view(row)


async def batches(u: Unit, awaiting_only: bool) -> dict[str, Any]:
    """The batches of the caller's region (the stock page's list of those awaiting a second confirmation)."""
    async with u.read() as db:
        rows = await sql.batches(db, u.scope.region_prefix, awaiting_only)
    return {"batches": [batch_view(r) for r in rows]}


def batch_view(row: Any) -> dict[str, Any]:
    return {"batch_no": row["batch_no"], "serial_from": row["serial_from"], "serial_to": row["serial_to"],
            "quantity": row["quantity"], "received_on": row["received_on"].isoformat(),
            "region_code": row["region_code"], "recorded_by": row["recorded_by"],
            "confirmed_by": row["confirmed_by"],
            "status": "confirmed" if row["confirmed_by"] else "awaiting_confirmation"}


async def allocate(u: Unit, institution: str, serial_from: str, serial_to: str,
                   allocated_on: date) -> dict[str, Any]:
    """A range of the region's central stock goes to one of its issuing institutions."""
    r = rules.parse_range(serial_from, serial_to)
    rules.check_not_future(allocated_on, u.today(), "allocated_on")
    async with u.begin() as db:
        region = u.known(await sql.institution_region(db, institution), "institution_code", "institution",
                         institution)
        aid = uuid.uuid4()
        moved = await sql.allocate(db, aid, institution, region, r, allocated_on, u.actor, u.scope.region_prefix)
        if moved != r.quantity:
            serial, why = await sql.first_unavailable(db, r, allocated_on, u.scope.region_prefix, region)
            raise conflict(f"serial {serial} {why}; nothing was allocated", "serial_from")
        batch_region = (await sql.serial_row(db, r.serial_from))["batch_region"]
        out_id, in_id = uuid.uuid4(), uuid.uuid4()
        await sql.add_movements(db, [
            (out_id, None, batch_region, "allocated", None, allocated_on, -r.quantity, r.serial_from, r.serial_to),
            (in_id, institution, region, "allocated", None, allocated_on, r.quantity, r.serial_from, r.serial_to)])
        events = [
            publish.stock_moved(out_id, None, batch_region, "allocated", allocated_on, -r.quantity, r.serial_from,
                                r.serial_to),
            publish.stock_moved(in_id, institution, region, "allocated", allocated_on, r.quantity, r.serial_from,
                                r.serial_to)]
        out = {"allocation_id": str(aid), "institution_code": institution, "serial_from": r.serial_from,
               "serial_to": r.serial_to, "quantity": r.quantity, "allocated_on": allocated_on.isoformat()}
        await sql.audit(db, u.actor, u.scope.client_id, "stock.allocate", f"allocation:{aid}", _details(**out),
                        outbox.columns(events))
    return out


async def void_blank(u: Unit, serial: str, reason: str) -> dict[str, Any]:
    """废证: a spoiled blank (in a bureau's or an institution's stock) is voided, kept and never reused."""
    rules.check_serial(serial)
    on = u.today()
    async with u.begin() as db:
        row = await sql.serial_row(db, serial, for_update=True)
        u.see(row["region"] if row else None, "serial", serial)
        rules.check_void_blank(serial, row["state"])
        new = await sql.void_serial(db, serial, on, reason, u.actor)
        mid = uuid.uuid4()
        inst, region = row["institution_code"], row["region"]
        await sql.add_movements(db, [(mid, inst, region, "voided", None, on, -1, serial, serial)])
        await sql.audit(db, u.actor, u.scope.client_id, "stock.void", f"serial:{serial}", _details(reason=reason),
                        outbox.columns([publish.stock_moved(mid, inst, region, "voided", on, -1, serial, serial)]))
    return view(new)


# ------------------------------------------------------------------ custodians (专人管理)
async def assign_custodian(u: Unit, institution: str, account_id: str, role: str) -> tuple[int, dict[str, Any]]:
    """An office head assigns a person account of the institution to keep its blanks or its seal; the previous
    holder's assignment ends (history kept). One person never holds both at one institution (证章分离)."""
    assert u.auth is not None, "assigning custodians reads the person accounts"
    account = await sql.account(u.auth, account_id)
    async with u.begin() as db:
        u.known(await sql.institution_region(db, institution), "institution_code", "institution", institution)
        rules.check_assignable(role, account, institution)
        assert account is not None
        cu = Custodian(institution, account_id, str(account["staff_id"]), str(account["name"]), role)
        current = await sql.current_custodians(db, institution, lock=True)
        out = {"institution_code": institution, "account_id": account_id, "staff_id": cu.staff_id,
               "name": cu.name, "role": role, "status": "current"}
        if rules.check_assignment(cu, current) == "unchanged":
            return 200, out
        try:
            await sql.assign_custodian(db, cu, u.actor)
        except asyncpg.UniqueViolationError as e:
            raise _unique_violation(e) from e
        await sql.audit(db, u.actor, u.scope.client_id, "custodian.assign", f"custodian:{institution}:{role}",
                        _details(account_id=account_id, staff_id=cu.staff_id, name=cu.name))
    return 201, out


async def custodians(u: Unit, institution: str) -> dict[str, Any]:
    async with u.read() as db:
        u.see(await sql.institution_region(db, institution), "institution", institution)
        rows = await sql.custodian_history(db, institution)
    return {"institution_code": institution, "custodians": [dict(r) for r in rows]}


# ------------------------------------------------------------------ certificates
async def prepare(u: Unit, kind: str, child_id: str, child_name: str, institution: str | None,
                  previous_serial: str | None, evidence_ref: str | None,
                  content: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    """Step one of an issue: the institution's certificate custodian (the person logged in) draws its next blank
    (state prepared). The same preparation sent again while it is still prepared is answered with it (200), not
    drawn twice."""
    if previous_serial is not None:
        rules.check_serial(previous_serial, "previous_serial")
    institution = institution or u.scope.institution_code
    if institution != u.scope.institution_code or not institution:
        rules.check_preparer(u.actor, institution or "", u.scope.institution_code, None)
    async with u.begin() as db:
        facts = await sql.prepare_facts(db, institution, child_id, previous_serial)
        u.known(facts.region, "institution_code", "institution", institution)
        rules.check_preparer(u.actor, institution, u.scope.institution_code, facts.keeper)
        child, certs = facts.child, facts.certificates
        if child.region is None or not u.scope.sees_region(child.region):
            child, certs = rules.ChildFacts(child_id, None, None, None), []  # outside: as if never born
        again = rules.replayed_preparation(kind, u.actor, institution, certs)
        if again is not None:
            row = await sql.serial_row(db, again.serial)
            if rules.same_preparation((row["child_name"], row["previous_serial"], row["evidence_ref"]),
                                      (child_name, previous_serial, evidence_ref)):
                return 200, view(row)
        rules.check_prepare(kind, child, institution, evidence_ref, facts.previous, previous_serial, certs)
        if content is not None:
            content = form.checked(content, form.Facts(child_name, child.birth_date, child.region, u.today()))
        mid = uuid.uuid4()
        try:
            row = await sql.draw_and_prepare(db, institution, kind, child_id, child_name.strip(), evidence_ref,
                                             previous_serial, u.actor, u.today(), mid)
        except asyncpg.UniqueViolationError as e:
            raise _unique_violation(e) from e
        if row is None:
            raise conflict(f"no blank certificates left in the stock of {institution}: ask the bureau for an "
                           "allocation", "institution_code")
        region = row["institution_region"] or ""
        if content is not None:
            await db.execute("insert into certificate_content (serial, version, content, recorded_by) "
                             "values ($1, 1, $2::jsonb, $3)", row["serial"], orjson.dumps(content).decode(), u.actor)
        await sql.audit(db, u.actor, u.scope.client_id, "certificate.prepare", f"serial:{row['serial']}",
                        _details(kind=kind, child_id=child_id, previous_serial=previous_serial,
                                 evidence_ref=evidence_ref),
                        outbox.columns([publish.certificate_changed(row),
                                        publish.stock_moved(mid, institution, region, "issued", row["prepared_on"],
                                                            -1, row["serial"], row["serial"])]))
    return 201, view(row)


async def seal(u: Unit, serial: str) -> dict[str, Any]:
    """Step two: the institution's seal custodian (the person logged in), never the preparer, seals it (签发);
    a reissue or replacement then invalidates the certificate it supersedes."""
    rules.check_serial(serial)
    on = u.today()
    async with u.begin() as db:
        row = await sql.certificate_for_seal(db, serial)
        u.see(row["institution_region"] if row and row["child_id"] is not None else None, "certificate", serial)
        cert = sql.facts(row)
        rules.check_seal(cert, u.actor, u.scope.institution_code, row["seal_keeper"])
        events = []
        try:
            if row["previous_serial"]:
                prev = await sql.serial_row(db, row["previous_serial"], for_update=True)
                if prev["state"] == "issued":
                    old = await sql.supersede(db, row["previous_serial"], serial, on, u.actor)
                    events.append(publish.certificate_changed(old))
                elif prev["state"] != "superseded":  # superseded already: by a successor since voided
                    raise conflict(f"certificate {prev['serial']} is {prev['state']}; it cannot be superseded",
                                   "previous_serial")
            # the certificate is locked: its sealed state is known before the update, so the update, its event
            # and the audit row go in one statement; the event is checked against the row the database returns
            changed = publish.certificate_changed(sql.sealed(row, u.actor, on))
            events.append(changed)
            new = await sql.seal(db, serial, u.actor, on, outbox.columns(events),
                                 (u.actor, u.scope.client_id, "certificate.seal", f"serial:{serial}",
                                  _details(supersedes=row["previous_serial"], prepared_by=row["prepared_by"])))
        except asyncpg.UniqueViolationError as e:
            raise _unique_violation(e) from e
        if publish.certificate_changed(new) != changed:
            raise RuntimeError(f"sealing {serial}: the stored row differs from its event; nothing was committed")
    return view(new)


async def void_certificate(u: Unit, serial: str, reason: str) -> dict[str, Any]:
    """废证: a prepared (spoiled in printing) or issued (wrongly issued) certificate is voided; its blank moves
    from issued to voided in the stock (issued +1, voided −1 on the void date)."""
    rules.check_serial(serial)
    on = u.today()
    async with u.begin() as db:
        row = await sql.serial_row(db, serial, for_update=True)
        u.see(row["institution_region"] if row and row["child_id"] is not None else None, "certificate", serial)
        rules.check_void_certificate(sql.facts(row))
        new = await sql.void_serial(db, serial, on, reason, u.actor)
        inst, region = new["institution_code"], new["institution_region"] or ""
        a, b = uuid.uuid4(), uuid.uuid4()
        await sql.add_movements(db, [(a, inst, region, "issued", new["kind"], on, 1, serial, serial),
                                     (b, inst, region, "voided", None, on, -1, serial, serial)])
        await sql.audit(db, u.actor, u.scope.client_id, "certificate.void", f"serial:{serial}",
                        _details(reason=reason),
                        outbox.columns([publish.certificate_changed(new),
                                        publish.stock_moved(a, inst, region, "issued", on, 1, serial, serial),
                                        publish.stock_moved(b, inst, region, "voided", on, -1, serial, serial)]))
    return view(new)


async def verify(u: Unit, serial: str, child_name: str, birth_date: date) -> dict[str, Any]:
    """For public security (落户): is `serial` a valid certificate of this child? `{valid, status}` only, whatever
    the region (a child is registered where the family lives, not where it was born: decision 59)."""
    async with u.begin() as db:
        row = await sql.verify_row(db, serial) if rules.SERIAL_RE.match(serial) else None
        valid, status = rules.verify(row["state"] if row else None, row["child_name"] if row else None,
                                     row["birth_date"] if row else None, child_name, birth_date)
        await sql.audit(db, u.actor, u.scope.client_id, "certificate.verify", f"serial:{serial}",
                        _details(valid=valid, status=status))
    return {"valid": valid, "status": status}


# ------------------------------------------------------------------ reading
def view(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"serial": row["serial"], "state": row["state"], "version": row["version"],
                           "institution_code": row["institution_code"], "batch_no": row["batch_no"]}
    if row["child_id"] is not None:
        out.update(kind=row["kind"], child_id=str(row["child_id"]), child_name=row["child_name"],
                   prepared_by=row["prepared_by"], prepared_on=row["prepared_on"], sealed_by=row["sealed_by"],
                   issued_on=row["issued_on"], previous_serial=row["previous_serial"],
                   superseded_by=row["superseded_by"], superseded_on=row["superseded_on"],
                   evidence_ref=row["evidence_ref"])
    if row["state"] == "voided":
        out.update(voided_on=row["voided_on"], void_reason=row["void_reason"], voided_by=row["voided_by"])
    return out


async def serial(u: Unit, serial: str, request_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One serial and its whole history, for the region holding it (a PII read when it is a certificate)."""
    if not rules.SERIAL_RE.match(serial):
        u.see(None, "serial", serial)
    async with u.begin() as db:
        row = await sql.serial_row(db, serial)
        u.see(row["region"] if row else None, "serial", serial)
        history = await sql.serial_history(db, serial)
        if row["child_id"] is not None:
            await sql.pii_read(db, u.actor, request_id, "certificate", serial, ["child_name"],
                               u.scope.has("pii:read"))
    return view(row), [dict(h) for h in history]


async def certificate(u: Unit, serial: str, request_id: str) -> dict[str, Any]:
    if not rules.SERIAL_RE.match(serial):
        u.see(None, "certificate", serial)
    async with u.begin() as db:
        row = await sql.serial_row(db, serial)
        u.see(row["institution_region"] if row and row["child_id"] is not None else None, "certificate", serial)
        await sql.pii_read(db, u.actor, request_id, "certificate", serial, ["child_name"], u.scope.has("pii:read"))
        content = await db.fetchval("select content::text from certificate_content where serial = $1 "
                                    "order by version desc limit 1", serial)
        prints = await db.fetchval("select count(*) from certificate_print where serial = $1", serial)
    out = view(row)
    out.update(content=orjson.loads(content) if content else None, print_count=prints)
    return out


async def record_print(u: Unit, serial: str, reason: str | None) -> dict[str, Any]:
    """One printed sheet: counted and audited; the first is part of issuing, every further one needs a reason."""
    rules.check_serial(serial)
    async with u.begin() as db:
        row = await sql.serial_row(db, serial, for_update=True)
        u.see(row["institution_region"] if row and row["child_id"] is not None else None, "certificate", serial)
        if row["state"] != "issued":
            raise conflict(f"certificate {serial} is {row['state']}: only an issued certificate is printed", "serial")
        n = await db.fetchval("select count(*) from certificate_print where serial = $1", serial)
        if n and not reason:
            raise invalid("reason", f"certificate {serial} was printed {n} time(s): a reprint needs a reason")
        await db.execute("insert into certificate_print (serial, print_no, reason, printed_by) values ($1, $2, $3, "
                         "$4)", serial, n + 1, reason, u.actor)
        await sql.audit(db, u.actor, u.scope.client_id, "certificate.print", f"serial:{serial}",
                        _details(print_no=n + 1, reason=reason))
    return {"serial": serial, "print_no": n + 1}


async def worklist(u: Unit, institution: str, born_on: date | None) -> dict[str, Any]:
    """Live births at the institution without a prepared or issued certificate, oldest first."""
    async with u.begin() as db:
        region = await sql.institution_region(db, institution)
        u.see(region, "institution", institution)
        rows = await db.fetch(
            "select b.child_id::text as child_id, b.born_on, c.sex from child_birth b join child c using (child_id) "
            "where b.institution_code = $1 and not b.voided and ($2::date is null or b.born_on = $2) "
            "and not exists (select 1 from serial s where s.child_id = b.child_id and s.state in "
            "('prepared', 'issued')) order by b.born_on, b.child_id limit 200", institution, born_on)
    return {"items": [{"child_id": r["child_id"], "birth_date": r["born_on"].isoformat(), "sex": r["sex"]}
                      for r in rows]}


async def child(u: Unit, child_id: str, request_id: str) -> dict[str, Any]:
    """What the service knows of a child (birth date, place, certificates), for the region of its institution of
    birth only; its certificates are those of institutions in the caller's region."""
    async with u.begin() as db:
        c = await sql.child_facts(db, child_id)
        u.see(c.region if c.birth_date is not None else None, "child", child_id)
        certs = await sql.certificates_of_child(db, child_id, u.scope.region_prefix)
        await sql.pii_read(db, u.actor, request_id, "child", child_id, ["birth_date", "birth_place"], True)
    return {"child_id": child_id, "birth_date": c.birth_date, "born_at": c.born_at, "birth_place": c.birth_place,
            "known": c.birth_date is not None and c.born_at is not None,
            "certificates": [{"serial": x.serial, "kind": x.kind, "state": x.state} for x in certs]}


async def register(u: Unit, institution: str, start: date, end: date, request_id: str) -> list[Any]:
    """The issuance register rows (出生医学证明发放登记表) of one institution of the caller's region."""
    if end < start:
        raise invalid("to", f"{end} is before from {start}")
    async with u.begin() as db:
        u.see(await sql.stock_institution_region(db, institution), "institution", institution)
        records = await sql.register(db, institution, start, end)
        await sql.pii_read(db, u.actor, request_id, "register", f"{institution}:{start}:{end}", ["child_name"],
                           u.scope.has("pii:read"))
    return records


async def stock_report(u: Unit, start: date, end: date, institution: str | None,
                       region: str | None) -> dict[str, Any]:
    """opening + received − issued − voided = closing, for one institution (an object: 404 outside) or a region
    (a list: 403 outside), with the region's bureau stock."""
    if (institution is None) == (region is None):
        raise invalid("institution_code", "name either institution_code or region")
    if end < start:
        raise invalid("to", f"{end} is before from {start}")
    if region is not None:
        u.scope.require_region(region, "region")
    async with u.read() as db:
        if institution is not None:
            inst_region = await sql.stock_institution_region(db, institution)
            u.see(inst_region, "institution", institution)
            return await _stock_report(db, start, end, institution, inst_region or "", None)
        return await _stock_report(db, start, end, None, "", region)


async def _stock_report(db: Conn, start: date, end: date, institution: str | None, inst_region: str,
                        region: str | None) -> dict[str, Any]:
    async def one(code: str | None, reg: str) -> dict[str, Any]:
        f = rules.figures(await sql.movements(db, code, start, end, reg))
        body: dict[str, Any] = {"institution_code": code or "bureau", "region": reg, "opening": f.opening,
                                "received": f.received}
        if code is None:
            body["allocated"] = f.allocated
        else:
            body["issued"] = f.issued
            body["issued_by_kind"] = f.issued_by_kind
        body.update(voided=f.voided, closing=f.closing)
        return body

    period = {"from": start.isoformat(), "to": end.isoformat()}
    if institution is not None:
        return {**period, "rows": [await one(institution, inst_region)]}
    insts = await sql.institutions_in(db, region or "")
    rows = [await one(code, reg) for code, reg in insts]
    total = {k: sum(r[k] for r in rows) for k in ("opening", "received", "issued", "voided", "closing")}
    total["issued_by_kind"] = {k: sum(r["issued_by_kind"][k] for r in rows) for k in rules.KINDS}
    return {**period, "region": region or "", "rows": rows, "total": total, "bureau": await one(None, region or "")}
