"""Certificate use cases: each is one unit of work holding the state change, its events and its audit row.

The audit row is appended last: its insert trigger holds the chain's head until the commit, so the shorter
the time after it, the more clerks can issue at once.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import asyncpg
import orjson
from kit import outbox
from kit.auth import Principal
from kit.errors import Problem, conflict, invalid, not_found

from certificates.domain import rules
from certificates.domain.rules import Custodian
from certificates.events import publish
from certificates.store import sql
from certificates.store.sql import Conn

CHINA = timezone(timedelta(hours=8))


def today() -> date:
    """Certificates are dated in China time (签发日期)."""
    return datetime.now(CHINA).date()


@dataclass(frozen=True)
class Actor:
    """Who acts: the API client (with its region), and the named person the request names (终身责任追究)."""

    principal: Principal

    @property
    def client_id(self) -> str:
        return self.principal.client_id

    @property
    def client_name(self) -> str:
        return self.principal.name

    def require_region(self, region: str | None, field: str = "institution_code") -> None:
        self.principal.require_region(region or "", field)


def _details(**kw: Any) -> str:
    return orjson.dumps({k: v for k, v in kw.items() if v is not None}, default=str,
                        option=orjson.OPT_SORT_KEYS).decode()


def _unique_violation(e: asyncpg.UniqueViolationError) -> Problem:
    """A race another transaction won: the database's unique indexes said no (the rules' last line)."""
    what = {
        "one_valid_certificate_per_child": ("child_id", "the child already has a valid certificate"),
        "one_certificate_in_preparation_per_child": ("child_id", "a certificate is already being prepared for "
                                                                 "this child"),
        "one_first_issue_per_child": ("child_id", "the child already has a first issue"),
        "superseded_at_most_once": ("previous_serial", "the previous certificate was already reissued or "
                                                       "replaced"),
        "one_custodian_per_role": ("role", "another assignment of this role happened at the same time"),
        "one_role_per_person": ("staff_id", "the person already holds the other role at this institution "
                                            "(证章分离)"),
    }.get(getattr(e, "constraint_name", "") or "", ("body", str(e)))
    return conflict(what[1], what[0])


# ------------------------------------------------------------------ stock
async def receive_batch(db: Conn, actor: Actor, batch_no: str, serial_from: str, serial_to: str,
                        received_on: date, by: str | None) -> tuple[int, dict[str, Any]]:
    """申领入库: a numbered batch of blanks enters the bureau's central stock."""
    r = rules.parse_range(serial_from, serial_to)
    rules.check_not_future(received_on, today(), "received_on")
    who = by or actor.client_name
    old = await sql.get_batch(db, batch_no)
    out = {"batch_no": batch_no, "serial_from": r.serial_from, "serial_to": r.serial_to, "quantity": r.quantity,
           "received_on": received_on.isoformat()}
    if old is not None:
        if (old["serial_from"], old["serial_to"], old["received_on"]) == (r.serial_from, r.serial_to, received_on):
            return 200, out
        raise conflict(f"batch {batch_no} was received with {old['serial_from']}–{old['serial_to']} on "
                       f"{old['received_on']}", "batch_no")
    new = await sql.receive_batch(db, batch_no, r, received_on, who)
    if new != r.quantity:
        clash = await sql.first_existing(db, r)
        raise conflict(f"serial {clash['serial']} was already received in batch {clash['batch_no']}: a serial "
                       "exists once", "serial_from")
    mid = uuid.uuid4()
    await sql.add_movements(db, [(mid, None, "", "received", None, received_on, r.quantity, r.serial_from,
                                  r.serial_to)])
    await sql.audit(db, who, actor.client_id, "stock.receive", f"batch:{batch_no}", _details(**out),
                    outbox.columns([publish.stock_moved(mid, None, "", "received", received_on, r.quantity,
                                                             r.serial_from, r.serial_to)]))
    return 201, out


async def allocate(db: Conn, actor: Actor, institution: str, serial_from: str, serial_to: str,
                   allocated_on: date, by: str | None) -> dict[str, Any]:
    """A range of the bureau's blanks goes to an issuing institution."""
    r = rules.parse_range(serial_from, serial_to)
    rules.check_not_future(allocated_on, today(), "allocated_on")
    region = await sql.institution_region(db, institution)
    if region is None:
        raise invalid("institution_code", f"unknown institution {institution}: it is registered in the registry "
                                          "(PUT /v1/institutions/{code}) and known here from its event")
    actor.require_region(region)
    who = by or actor.client_name
    aid = uuid.uuid4()
    moved = await sql.allocate(db, aid, institution, region, r, allocated_on, who)
    if moved != r.quantity:
        serial, why = await sql.first_unavailable(db, r, allocated_on)
        raise conflict(f"serial {serial} {why}; nothing was allocated", "serial_from")
    out_id, in_id = uuid.uuid4(), uuid.uuid4()
    await sql.add_movements(db, [
        (out_id, None, "", "allocated", None, allocated_on, -r.quantity, r.serial_from, r.serial_to),
        (in_id, institution, region, "allocated", None, allocated_on, r.quantity, r.serial_from, r.serial_to)])
    events = [
        publish.stock_moved(out_id, None, "", "allocated", allocated_on, -r.quantity, r.serial_from, r.serial_to),
        publish.stock_moved(in_id, institution, region, "allocated", allocated_on, r.quantity, r.serial_from,
                            r.serial_to)]
    out = {"allocation_id": str(aid), "institution_code": institution, "serial_from": r.serial_from,
           "serial_to": r.serial_to, "quantity": r.quantity, "allocated_on": allocated_on.isoformat()}
    await sql.audit(db, who, actor.client_id, "stock.allocate", f"allocation:{aid}", _details(**out),
                    outbox.columns(events))
    return out


async def void_blank(db: Conn, actor: Actor, serial: str, reason: str, by: str) -> dict[str, Any]:
    """废证: a spoiled blank (in the bureau's or an institution's stock) is voided, kept and never reused."""
    rules.check_serial(serial)
    row = await sql.serial_row(db, serial, for_update=True)
    rules.check_void_blank(serial, row["state"] if row else None)
    on = today()
    inst = row["institution_code"]
    if inst is not None:  # the bureau's central stock has no region: the scope certificates:stock suffices
        actor.require_region(row["institution_region"], "serial")
        keeper = await sql.custodian_of(db, inst, "certificate")
        if keeper != by:
            raise invalid("by", f"{by} is not the certificate custodian of {inst}, who keeps its blanks"
                          + (f" (it is {keeper})" if keeper else " (none is assigned)"))
    new = await sql.void_serial(db, serial, on, reason, by)
    mid = uuid.uuid4()
    region = new["institution_region"] or ""
    await sql.add_movements(db, [(mid, inst, region, "voided", None, on, -1, serial, serial)])
    await sql.audit(db, by, actor.client_id, "stock.void", f"serial:{serial}", _details(reason=reason),
                    outbox.columns([publish.stock_moved(mid, inst, region, "voided", on, -1, serial, serial)]))
    return view(new)


# ------------------------------------------------------------------ custodians
async def assign_custodian(db: Conn, actor: Actor, cu: Custodian) -> tuple[int, dict[str, Any]]:
    if cu.role not in rules.ROLES:
        raise invalid("role", f"role is certificate or seal, not {cu.role!r}")
    region = await sql.institution_region(db, cu.institution_code)
    if region is None:
        raise invalid("institution_code", f"unknown institution {cu.institution_code}")
    actor.require_region(region)
    current = await sql.current_custodians(db, cu.institution_code, lock=True)
    if rules.check_assignment(cu, current) == "unchanged":
        return 200, {**cu.__dict__, "status": "current"}
    try:
        await sql.assign_custodian(db, cu, actor.client_name)
    except asyncpg.UniqueViolationError as e:
        raise _unique_violation(e) from e
    await sql.audit(db, actor.client_name, actor.client_id, "custodian.assign",
                    f"custodian:{cu.institution_code}:{cu.role}", _details(staff_id=cu.staff_id, name=cu.name))
    return 201, {**cu.__dict__, "status": "current"}


# ------------------------------------------------------------------ certificates
async def prepare(db: Conn, actor: Actor, kind: str, child_id: str, child_name: str,
                  prepared_by: str, institution: str | None, previous_serial: str | None,
                  evidence_ref: str | None) -> tuple[int, dict[str, Any]]:
    """Step one of an issue: the certificate custodian draws the institution's next blank (state prepared).
    The same preparation sent again while it is still prepared is answered with it (200), not drawn twice."""
    if previous_serial is not None:
        rules.check_serial(previous_serial, "previous_serial")
    facts = await sql.prepare_facts(db, prepared_by, child_id, previous_serial)
    keeps = dict(facts.keeps)
    if institution is None:
        if len(keeps) != 1:
            raise invalid("prepared_by", f"{prepared_by} is not the certificate custodian of any institution"
                          if not keeps else f"{prepared_by} keeps certificates at {', '.join(keeps)}: name "
                          "institution_code")
        institution = next(iter(keeps))
    elif institution not in keeps:
        actor.require_region(await sql.institution_region(db, institution))
        keeper = await sql.custodian_of(db, institution, "certificate")
        raise invalid("prepared_by", f"{prepared_by} is not the certificate custodian of {institution}"
                      + (f" (it is {keeper})" if keeper else " (none is assigned)"))
    actor.require_region(keeps[institution])
    again = rules.replayed_preparation(kind, prepared_by, institution, facts.certificates)
    if again is not None:
        row = await sql.serial_row(db, again.serial)
        if rules.same_preparation((row["child_name"], row["previous_serial"], row["evidence_ref"]),
                                  (child_name, previous_serial, evidence_ref)):
            return 200, view(row)
    rules.check_prepare(kind, facts.child, institution, evidence_ref, facts.previous, previous_serial,
                        facts.certificates)
    mid = uuid.uuid4()
    try:
        row = await sql.draw_and_prepare(db, institution, kind, child_id, child_name.strip(), evidence_ref,
                                         previous_serial, prepared_by, today(), mid)
    except asyncpg.UniqueViolationError as e:
        raise _unique_violation(e) from e
    if row is None:
        raise conflict(f"no blank certificates left in the stock of {institution}: ask the bureau for an "
                       "allocation", "institution_code")
    region = row["institution_region"] or ""
    await sql.audit(db, prepared_by, actor.client_id, "certificate.prepare", f"serial:{row['serial']}",
                    _details(kind=kind, child_id=child_id, previous_serial=previous_serial,
                             evidence_ref=evidence_ref),
                    outbox.columns([publish.certificate_changed(row),
                                         publish.stock_moved(mid, institution, region, "issued", row["prepared_on"],
                                                             -1, row["serial"], row["serial"])]))
    return 201, view(row)


async def seal(db: Conn, actor: Actor, serial: str, sealed_by: str) -> dict[str, Any]:
    """Step two: the seal custodian, another person, seals it (签发); a reissue or replacement then
    invalidates the certificate it supersedes."""
    rules.check_serial(serial)
    row = await sql.certificate_for_seal(db, serial)
    if row is None or row["child_id"] is None:
        raise not_found("certificate", serial)
    actor.require_region(row["institution_region"], "serial")
    cert = sql.facts(row)
    rules.check_seal(cert, sealed_by, row["seal_keeper"])
    on = today()
    events = []
    try:
        if row["previous_serial"]:
            prev = await sql.serial_row(db, row["previous_serial"], for_update=True)
            if prev["state"] == "issued":
                old = await sql.supersede(db, row["previous_serial"], serial, on, sealed_by)
                events.append(publish.certificate_changed(old))
            elif prev["state"] != "superseded":  # superseded already: by a successor since voided
                raise conflict(f"certificate {prev['serial']} is {prev['state']}; it cannot be superseded",
                               "previous_serial")
        # the certificate is locked: its sealed state is known before the update, so the update, its event and
        # the audit row go in one statement; the event is checked against the row the database returns
        changed = publish.certificate_changed(sql.sealed(row, sealed_by, on))
        events.append(changed)
        new = await sql.seal(db, serial, sealed_by, on, outbox.columns(events),
                             (sealed_by, actor.client_id, "certificate.seal", f"serial:{serial}",
                              _details(supersedes=row["previous_serial"])))
    except asyncpg.UniqueViolationError as e:
        raise _unique_violation(e) from e
    if publish.certificate_changed(new) != changed:
        raise RuntimeError(f"sealing {serial}: the stored row differs from its event; nothing was committed")
    return view(new)


async def void_certificate(db: Conn, actor: Actor, serial: str, reason: str, by: str) -> dict[str, Any]:
    """废证: a prepared (spoiled in printing) or issued (wrongly issued) certificate is voided; its blank moves
    from issued to voided in the stock (issued +1, voided −1 on the void date)."""
    rules.check_serial(serial)
    row = await sql.serial_row(db, serial, for_update=True)
    if row is None or row["child_id"] is None:
        raise not_found("certificate", serial)
    actor.require_region(row["institution_region"], "serial")
    cert = sql.facts(row)
    rules.check_void_certificate(cert)
    custodians = {c.staff_id for c in await sql.current_custodians(db, cert.institution_code)}
    if by not in custodians:
        raise invalid("by", f"{by} is not a custodian of {cert.institution_code}")
    on = today()
    new = await sql.void_serial(db, serial, on, reason, by)
    inst, region = new["institution_code"], new["institution_region"] or ""
    a, b = uuid.uuid4(), uuid.uuid4()
    await sql.add_movements(db, [(a, inst, region, "issued", new["kind"], on, 1, serial, serial),
                                 (b, inst, region, "voided", None, on, -1, serial, serial)])
    await sql.audit(db, by, actor.client_id, "certificate.void", f"serial:{serial}", _details(reason=reason),
                    outbox.columns([publish.certificate_changed(new),
                                         publish.stock_moved(a, inst, region, "issued", on, 1, serial, serial),
                                         publish.stock_moved(b, inst, region, "voided", on, -1, serial, serial)]))
    return view(new)


async def verify(db: Conn, actor: Actor, serial: str, child_name: str,
                 birth_date: date) -> dict[str, Any]:
    """For public security (落户): is `serial` a valid certificate of this child? `{valid, status}` only."""
    row = await sql.verify_row(db, serial) if rules.SERIAL_RE.match(serial) else None
    valid, status = rules.verify(row["state"] if row else None, row["child_name"] if row else None,
                                 row["birth_date"] if row else None, child_name, birth_date)
    await sql.audit(db, actor.client_name, actor.client_id, "certificate.verify", f"serial:{serial}",
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


async def stock_report(db: Conn, start: date, end: date, institution: str | None,
                       region: str | None) -> dict[str, Any]:
    if end < start:
        raise invalid("to", f"{end} is before from {start}")

    async def one(code: str | None, reg: str) -> dict[str, Any]:
        f = rules.figures(await sql.movements(db, code, start, end))
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
        return {**period, "rows": [await one(institution, await sql.stock_institution_region(db, institution)
                                              or "")]}
    insts = await sql.institutions_in(db, region or "")
    rows = [await one(code, reg) for code, reg in insts]
    total = {k: sum(r[k] for r in rows) for k in ("opening", "received", "issued", "voided", "closing")}
    total["issued_by_kind"] = {k: sum(r["issued_by_kind"][k] for r in rows) for k in rules.KINDS}
    return {**period, "region": region or "", "rows": rows, "total": total, "bureau": await one(None, "")}
