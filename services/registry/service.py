"""Registry use cases: each is one unit of work (a transaction holding the state change and its events)."""
from __future__ import annotations

from datetime import date
from typing import Any

from kit import outbox
from kit.errors import field_error
from kit.events import NewEvent
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as IdError

from registry.domain import model
from registry.domain.model import (
    ENCOUNTER_TYPES,
    Baby,
    DeliveryFacts,
    DomainError,
    Institution,
    Pregnancy,
    content_hash,
    decide_version,
    fail,
)
from registry.domain.regions import region_problem
from registry.events import publish
from registry.store import sql


def pydantic_errors(e: ValidationError, prefix: str = "") -> DomainError:
    errs = []
    for x in e.errors():
        loc = ".".join(str(p) for p in x["loc"])
        msg = x["msg"].removeprefix("Value error, ")
        errs.append(field_error(f"{prefix}{loc}" if loc else prefix.rstrip(".") or "body", msg))
    return DomainError(errs)


def check_region(field_name: str, code: str) -> None:
    why = region_problem(code)
    if why:
        raise fail(field_name, why)


# ---------------------------------------------------------------- institutions
async def put_institution(conn: AsyncConnection, inst: Institution) -> tuple[int, bool]:
    check_region("region_code", inst.region_code)
    version, changed = await sql.upsert_institution(conn, inst)
    if changed:
        await outbox.append(conn, [publish.institution_upserted(inst, version)])
    return version, changed


async def known_institution(conn: AsyncConnection, code: str, field_name: str = "institution_code") -> Institution:
    inst = await sql.get_institution(conn, code)
    if inst is None:
        raise fail(field_name, f"unknown institution {code}: register it with PUT /v1/institutions/{code}")
    return inst


# ---------------------------------------------------------------- persons
def check_id_number(id_number: str, sex: str, birth_date: date, field_name: str = "id_number") -> str:
    """身份证号: GB 11643 check digit, and the embedded birth date and sex must agree with the record."""
    try:
        num = ric.validate(id_number)
    except IdError as e:
        raise fail(field_name, f"not a valid resident identity number: {e}") from e
    if ric.get_birth_date(num) != birth_date:
        raise fail(field_name, f"the birth date in the ID number ({ric.get_birth_date(num)}) is not birth_date")
    embedded_sex = "M" if int(num[16]) % 2 else "F"
    if embedded_sex != sex:
        raise fail(field_name, f"the sex digit of the ID number says {embedded_sex}, the record says {sex}")
    return str(num)


async def resolve_person(conn: AsyncConnection, p: dict[str, Any], field_name: str) -> tuple[str, list[NewEvent]]:
    """An inline person (deduplicated on ID number) or a reference to an existing one."""
    if "person_id" in p and len(p) == 1:
        row = await sql.get_person(conn, p["person_id"])
        if row is None:
            raise fail(f"{field_name}.person_id", f"unknown person {p['person_id']}")
        return str(row["person_id"]), []
    from registry.api.schemas import PersonIn  # the same validation as POST /v1/persons

    try:
        person = PersonIn.model_validate(p)
    except ValidationError as e:
        raise pydantic_errors(e, f"{field_name}.") from e
    return await create_person(conn, person, field_name + ".")


async def create_person(conn: AsyncConnection, person: BaseModel, prefix: str = "") -> tuple[str, list[NewEvent]]:
    d = person.model_dump()
    check_region(prefix + "residence_code", d["residence_code"])
    if d.get("id_number"):
        num = check_id_number(d["id_number"], d["sex"], d["birth_date"], prefix + "id_number")
        existing = await sql.person_by_id_number(conn, num)
        if existing is not None:
            return str(existing["person_id"]), []
        d["id_number"] = num
    pid = await sql.insert_person(conn, id_number=d.get("id_number"), name=d["name"], sex=d["sex"],
                                  birth_date=d["birth_date"], phone=d.get("phone"),
                                  residence_code=d["residence_code"])
    ev = publish.person_upserted(pid, d["sex"], d["birth_date"], [(d["birth_date"], d["residence_code"])], 1)
    return pid, [ev]


# ---------------------------------------------------------------- pregnancies (建册)
async def register_pregnancy(conn: AsyncConnection, body: dict[str, Any], today: date) -> tuple[int, Pregnancy]:
    from registry.api.schemas import PregnancyIn

    try:
        req = PregnancyIn.model_validate(body)
    except ValidationError as e:
        raise pydantic_errors(e) from e
    h = content_hash(body)
    stored = await sql.get_pregnancy(conn, req.pregnancy_id, for_update=True)
    decision = decide_version(stored[0].version if stored else None, stored[1] if stored else None, h, req.version)
    if stored and stored[0].source != req.source:
        raise fail("pregnancy_id", f"pregnancy {req.pregnancy_id} was registered by another source", 409)
    if decision.action == "unchanged":
        assert stored
        return 200, stored[0]
    model.check_booking(req.lmp_date, req.registered_on, today)
    await known_institution(conn, req.institution_code)
    events: list[NewEvent] = []
    if stored:
        mother_id = stored[0].mother_id
    else:
        mother_id, events = await resolve_person(conn, req.mother, "mother")
    mother = await sql.get_person(conn, mother_id)
    if mother["sex"] != "F":
        raise fail("mother", "the mother of a pregnancy must be a woman (sex F)")
    residence = req.residence_code
    if residence is None:
        hist = await sql.residence_history(conn, mother_id)
        residence = hist[-1][1]
    check_region("residence_code", residence)
    p = Pregnancy(req.pregnancy_id, req.source, mother_id, req.lmp_date, req.registered_on, req.institution_code,
                  residence, decision.version, stored[0].delivered_on if stored else None)
    if stored:
        await sql.update_pregnancy(conn, p, h)
    else:
        await sql.insert_pregnancy(conn, p, h)
    events.append(publish.pregnancy_recorded(p))
    await outbox.append(conn, events)
    return (201 if decision.action == "create" else 200), p


# ---------------------------------------------------------------- encounters
def _clinical_date(v: Any) -> date:
    from datetime import datetime, timedelta, timezone

    if isinstance(v, datetime):
        if v.tzinfo is not None:
            return v.astimezone(timezone(timedelta(hours=8))).date()
        return v.date()
    assert isinstance(v, date)
    return v


async def post_encounter(conn: AsyncConnection, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    from registry.api.schemas import DeliveryIn, EncounterIn

    try:
        req = EncounterIn.model_validate(body)
    except ValidationError as e:
        raise pydantic_errors(e) from e
    if req.type not in ENCOUNTER_TYPES:
        raise fail("type", f"unknown encounter type {req.type!r}; one of {', '.join(ENCOUNTER_TYPES)}")
    if req.type != "delivery":
        raise fail("type", f"encounter type {req.type!r} is not accepted yet by this version")
    h = content_hash(body)
    stored = await sql.get_encounter(conn, req.source, req.encounter_id, for_update=True)
    decision = decide_version(stored["version"] if stored else None, stored["content_hash"] if stored else None,
                              h, req.version)
    if decision.action == "unchanged":
        return 200, view_encounter(stored)
    if stored and stored["voided"]:
        raise fail("encounter_id", "the encounter was voided; post a new encounter id", 409)
    inst = await known_institution(conn, req.institution_code)
    occurred_on = _clinical_date(req.occurred_at)
    extra = req.model_extra or {}
    try:
        d = DeliveryIn.model_validate(extra)
    except ValidationError as e:
        raise pydantic_errors(e) from e
    found = await sql.get_pregnancy(conn, req.subject_id, for_update=True)
    if found is None:
        raise fail("subject_id", f"unknown pregnancy {req.subject_id}: register it first (POST /v1/pregnancies)")
    preg = found[0]
    if preg.delivered_on is not None and not (stored and stored["type"] == "delivery"):
        raise fail("subject_id", "the pregnancy already has a delivery: the episode is closed", 409)
    facts = DeliveryFacts(d.place, d.mode, [Baby(b.sex, b.birth_weight_g, b.outcome) for b in d.babies])
    errs = model.check_delivery(preg, occurred_on, facts)
    if errs:
        raise DomainError(errs)
    events: list[NewEvent] = []
    old_babies = stored["body"]["babies"] if stored else []
    babies_out = []
    mother_hist = await sql.residence_history(conn, preg.mother_id)
    residence = preg.residence_code if not mother_hist else mother_hist[-1][1]
    for i, b in enumerate(d.babies):
        child_id = old_babies[i].get("child_id") if i < len(old_babies) else None
        if b.outcome == "live" and not child_id:
            child_id = await sql.insert_person(conn, id_number=None, name="", sex=b.sex, birth_date=occurred_on,
                                               phone=None, residence_code=residence, mother_id=preg.mother_id,
                                               born_in=preg.pregnancy_id)
            events.append(publish.person_upserted(child_id, b.sex, occurred_on, [(occurred_on, residence)], 1,
                                                  preg.mother_id, preg.pregnancy_id))
        babies_out.append({"sex": b.sex, "birth_weight_g": b.birth_weight_g, "outcome": b.outcome,
                           "child_id": child_id if b.outcome == "live" else None})
    row = {
        "source": req.source, "encounter_id": req.encounter_id, "version": decision.version, "type": req.type,
        "subject_id": req.subject_id, "pregnancy_id": preg.pregnancy_id, "person_id": preg.mother_id,
        "occurred_on": occurred_on, "institution_code": inst.code, "content_hash": h, "voided": False,
        "body": {"place": d.place, "mode": d.mode, "babies": babies_out,
                 "gestational_days": preg.gestational_days(occurred_on),
                 "occurred_at": str(body.get("occurred_at"))},
    }
    await sql.save_encounter(conn, row, "correction" if stored else None)
    await sql.set_delivered(conn, preg.pregnancy_id, occurred_on)
    events.append(publish.encounter_recorded(row, inst, residence, preg))
    await outbox.append(conn, events)
    return (201 if decision.action == "create" else 200), view_encounter(row)


async def void_encounter(conn: AsyncConnection, source: str, encounter_id: str, reason: str) -> dict[str, Any]:
    stored = await sql.get_encounter(conn, source, encounter_id, for_update=True)
    if stored is None:
        raise fail("encounter_id", f"no encounter {source}/{encounter_id}", 404)
    if stored["voided"]:
        return view_encounter(stored)
    stored["version"] += 1
    stored["voided"] = True
    stored["void_reason"] = reason
    await sql.save_encounter(conn, stored, reason)
    inst = await known_institution(conn, stored["institution_code"])
    preg = None
    if stored["pregnancy_id"]:
        found = await sql.get_pregnancy(conn, stored["pregnancy_id"], for_update=True)
        preg = found[0] if found else None
        if stored["type"] == "delivery":
            await sql.set_delivered(conn, stored["pregnancy_id"], None)
    residence = preg.residence_code if preg else ""
    await outbox.append(conn, [publish.encounter_recorded(stored, inst, residence, preg)])
    return view_encounter(stored)


def view_encounter(row: dict[str, Any]) -> dict[str, Any]:
    body = dict(row["body"])
    out = {
        "encounter_id": row["encounter_id"], "source": row["source"], "version": row["version"],
        "type": row["type"], "status": "voided" if row["voided"] else "active", "subject_id": row["subject_id"],
        "pregnancy_id": row.get("pregnancy_id"), "institution_code": row["institution_code"],
        "occurred_on": str(row["occurred_on"]), **body,
    }
    if row["type"] == "delivery":
        out["children"] = [b["child_id"] for b in body.get("babies", []) if b.get("child_id")]
    return out
