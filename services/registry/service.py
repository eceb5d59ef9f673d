"""Registry use cases: each owns one unit of work (kit.scope.UnitOfWork: the transaction, the events published with
it, the caller's scope and the China-time clock). Routers parse, authorise and call one of them; every object read
or written is checked against the caller's scope in one place (registry.access) before anything is written or
returned."""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, TypeVar

from asyncpg.exceptions import UniqueViolationError
from kit import outbox
from kit.auth import mask
from kit.clock import CHINA, today_cn
from kit.coalesce import Coalescer
from kit.db import Database, is_unavailable
from kit.events import NewEvent
from kit.records import pydantic_errors
from kit.scope import ItemAnswer, Scope, UnitOfWork, per_item
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from registry import access, merging, person_matching
from registry.api.schemas import ENCOUNTER_FIELDS, EncounterIn
from registry.domain import documents, encounters, identity, matching, model, names
from registry.domain.model import (
    ENCOUNTER_TYPES,
    PREGNANCY_ENCOUNTERS,
    DomainError,
    Institution,
    Pregnancy,
    content_hash,
    decide_version,
    fail,
)
from registry.domain.regions import RegionTable
from registry.domain.search import PersonSearch
from registry.events import publish
from registry.store import sql

_regions: tuple[float, RegionTable] = (0.0, RegionTable.of([]))
REGION_TABLE_TTL_S = 60.0


async def region_table(conn: AsyncConnection) -> RegionTable:
    """The region table, cached for a minute (a newly loaded file is picked up without a restart)."""
    global _regions
    if time.monotonic() - _regions[0] > REGION_TABLE_TTL_S:
        _regions = (time.monotonic(), RegionTable.of(await sql.region_codes(conn)))
    return _regions[1]


async def check_region(conn: AsyncConnection, field_name: str, code: str) -> None:
    why = (await region_table(conn)).problem(code)
    if why:
        raise fail(field_name, why)


# ---------------------------------------------------------------- institutions
async def put_institution(db: Database, scope: Scope, inst: Institution) -> tuple[int, bool]:
    """Register or change an institution: a caller whose region covers its current region (else: as if it did not
    exist) and its new one."""
    async with UnitOfWork(db, scope) as uow:
        stored = await sql.get_institution(uow.conn, inst.code)
        if stored is not None:
            access.require_institution(scope, stored, inst.code)
        scope.principal.require_region(inst.region_code, "region_code")
        await check_region(uow.conn, "region_code", inst.region_code)
        version, changed = await sql.upsert_institution(uow.conn, inst)
        if changed:
            uow.emit(publish.institution_upserted(inst, version))
    return version, changed


async def get_institution(db: Database, scope: Scope, code: str) -> Institution:
    async with db.connect() as conn:
        return access.require_institution(scope, await sql.get_institution(conn, code), code)


async def births_at(db: Database, scope: Scope, code: str, q: str | None, born_on: date | None) -> dict[str, Any]:
    """The live births delivered at an institution of the caller's region, found by the mother's name or ID
    number or the delivery's record number (住院号: the HIS's encounter id), and/or the birth date: what a
    certificate office searches its worklist (待签发) with. The mother's fields are masked unless pii:read, and
    each mother returned is a PII read, audited under the account that searched."""
    unmasked = scope.principal.has("pii:read")
    items: list[dict[str, Any]] = []
    async with UnitOfWork(db, scope) as uow:
        access.require_institution(scope, await sql.get_institution(uow.conn, code), code)
        rows = await sql.deliveries_at(uow.conn, code, (q or "").strip() or None, born_on)
        for r in rows:
            await audit_read(uow, "person", r["mother_id"], ["name", "id_number"], unmasked)
            items += [_birth_item(r, b, unmasked) for b in r["body"].get("babies", [])
                      if b.get("child_id") and b.get("outcome") == "live"]
    return {"institution_code": code, "items": items}


def _birth_item(r: dict[str, Any], baby: dict[str, Any], unmasked: bool) -> dict[str, Any]:
    name, number = r["name"], r["id_number"]
    return {"child_id": baby["child_id"], "birth_date": str(r["occurred_on"]), "sex": baby.get("sex"),
            "born_at": r["body"].get("occurred_at"), "hospital_record_no": r["encounter_id"],
            "mother_id": r["mother_id"], "mother_name": name if unmasked else mask(name, 1, 0),
            "mother_id_number": (number if unmasked else mask(number, 1, 0)) if number else None}


async def known_institution(conn: AsyncConnection, code: str, field_name: str = "institution_code",
                            scope: Scope | None = None) -> Institution:
    """An institution the caller may record care at: one outside its region is answered like an unknown one."""
    inst = await sql.get_institution(conn, code)
    if inst is None or (scope is not None and not scope.sees(inst.region_code)):
        raise fail(field_name, f"unknown institution {code}: register it with PUT /v1/institutions/{code}")
    return inst


# ---------------------------------------------------------------- persons
def check_id_number(id_number: str, sex: str, birth_date: date, field_name: str = "id_number") -> str:
    """身份证号: GB 11643 check digit and an assigning county of any GB/T 2260 edition; the embedded birth date
    and sex must agree with the record (registry.domain.identity)."""
    try:
        num, born, embedded_sex = identity.resident_id(id_number)
    except identity.InvalidIdNumber as e:
        raise fail(field_name, f"not a valid resident identity number: {e}") from e
    if born != birth_date:
        raise fail(field_name, f"the birth date in the ID number ({born}) is not birth_date")
    if embedded_sex != sex:
        raise fail(field_name, f"the sex digit of the ID number says {embedded_sex}, the record says {sex}")
    return num


def person_document(d: dict[str, Any], prefix: str = "") -> documents.Document | None:
    """The person's identity document (证件): `id_number` (a resident identity number, as before) or
    `document_type` + `document_number` of any kind, validated by its rules; None when she has none (yet)."""
    kind, number = d.get("document_type"), d.get("document_number")
    if d.get("id_number"):
        if kind not in (None, documents.RESIDENT_ID):
            raise fail(prefix + "document_type", "id_number is a resident identity number: send another document "
                       "as document_type and document_number without id_number")
        if number and documents.search_key(number) != documents.search_key(d["id_number"]):
            raise fail(prefix + "document_number", "differs from id_number (send the number once)")
        return documents.Document(documents.RESIDENT_ID, check_id_number(d["id_number"], d["sex"], d["birth_date"],
                                                                         prefix + "id_number"))
    if kind is None:
        if number:
            raise fail(prefix + "document_type", "a document number needs its document_type")
        return None
    try:
        doc = documents.validate(kind, number)
    except documents.InvalidDocument as e:
        raise fail(prefix + "document_number", f"not a valid {kind}: {e}") from e
    if doc is None:
        return None
    if doc.kind == documents.RESIDENT_ID:
        return replace(doc, number=check_id_number(doc.number, d["sex"], d["birth_date"], prefix + "document_number"))
    if why := documents.disagreement(doc, d["birth_date"], d["sex"]):
        raise fail(prefix + "document_number", why)
    return doc


async def resolve_person(conn: AsyncConnection, p: dict[str, Any], field_name: str,
                         actor: str = "unknown") -> tuple[str, list[NewEvent]]:
    """An inline person (deduplicated on ID number, then matched probabilistically) or a reference to an
    existing one."""
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
    return await create_person(conn, person, field_name + ".", actor, auto_link=False)


async def register_person(db: Database, scope: Scope, person: BaseModel) -> tuple[str, bool]:
    """POST /v1/persons: (person_id, created). An ID number already registered links the same person, wherever
    she lives (continuity of care); the caller learns her person_id and changes nothing of her record. Otherwise
    a certain probabilistic match links the same way; a likely one is registered and queued for review
    (registry.person_matching)."""
    async with UnitOfWork(db, scope) as uow:
        pid, events = await create_person(uow.conn, person, actor=scope.actor)
        uow.emit(*events)
    return pid, bool(events)


async def create_person(conn: AsyncConnection, person: BaseModel, prefix: str = "", actor: str = "unknown",
                        auto_link: bool = True) -> tuple[str, list[NewEvent]]:
    """A person registered, or the one she is (an ID number registered; a certain probabilistic match when
    `auto_link`: an inline person of a clinical record is queued for review instead, see person_matching)."""
    d = person.model_dump()
    await check_region(conn, prefix + "residence_code", d["residence_code"])
    doc = person_document(d, prefix)
    if doc is not None:
        existing = await (sql.person_by_id_number(conn, doc.number) if doc.kind == documents.RESIDENT_ID
                          else sql.person_by_document(conn, doc.kind, doc.number))
        if existing is not None:
            return str(existing["person_id"]), []
    keys = matching.features(d["name"], d["sex"], d["birth_date"], d["residence_code"], d.get("phone"), None,
                             doc.number if doc and doc.kind == documents.RESIDENT_ID else None)
    linked, candidates = await person_matching.certain_match(conn, keys, actor, auto_link)
    if linked is not None:
        return linked, []
    pid = await sql.insert_person(conn, id_number=doc.number if doc and doc.kind == documents.RESIDENT_ID else None,
                                  name=d["name"], sex=d["sex"], birth_date=d["birth_date"], phone=d.get("phone"),
                                  residence_code=d["residence_code"], hukou_code=d.get("hukou_code"))
    await sql.set_person_search_keys(conn, pid, doc.kind if doc else d.get("document_type"),
                                     doc.number if doc else None, names.pinyin_key(d["name"]))
    await person_matching.remember(conn, pid, keys, candidates, actor)
    ev = publish.person_upserted(pid, d["sex"], d["birth_date"], [(d["birth_date"], d["residence_code"])], 1,
                                 registered_on=today_cn(), hukou_code=d.get("hukou_code"))
    return pid, [ev]


# ---------------------------------------------------------------- pregnancies (建册)


async def register_pregnancy(db: Database, scope: Scope, body: Any) -> ItemAnswer:
    """建册 at an institution of the caller's region, for a woman of any county (continuity of care): the answer
    shows the residence only to her county of residence."""
    async with UnitOfWork(db, scope) as uow:
        status, preg = await _register_pregnancy(uow, body)
    return status, pregnancy_answer(scope, preg)


async def register_pregnancies(db: Database, scope: Scope, items: list[Any]) -> list[ItemAnswer]:
    """A batch of registrations: one unit of work, a savepoint per item, answered per item."""
    async def one(uow: UnitOfWork, item: Any) -> ItemAnswer:
        status, preg = await _register_pregnancy(uow, item)
        return status, pregnancy_answer(scope, preg)

    return await per_item(db, scope, items, one)


def pregnancy_answer(scope: Scope, preg: Pregnancy) -> dict[str, Any]:
    view = _pregnancy_view(preg)
    if not scope.sees(preg.residence_code):
        view.pop("residence_code")
    return view


def _pregnancy_view(preg: Pregnancy) -> dict[str, Any]:
    return {**preg.__dict__, "lmp_date": str(preg.lmp_date), "registered_on": str(preg.registered_on),
            "delivered_on": str(preg.delivered_on) if preg.delivered_on else None}


async def register_pregnancy_within(uow: UnitOfWork, body: Any) -> tuple[int, Pregnancy]:
    """建册 inside a caller's unit of work (the FHIR intake records a Bundle as one)."""
    return await _register_pregnancy(uow, body)


async def _register_pregnancy(uow: UnitOfWork, body: Any) -> tuple[int, Pregnancy]:
    from registry.api.schemas import PregnancyIn

    conn, scope = uow.conn, uow.scope
    if not isinstance(body, dict):
        raise fail("body", "a pregnancy registration is a JSON object")
    try:
        req = PregnancyIn.model_validate(body)
    except ValidationError as e:
        raise pydantic_errors(e) from e
    h = content_hash(body)
    stored = await sql.get_pregnancy(conn, req.pregnancy_id, for_update=True)
    if stored and (stored[0].source != req.source or not scope.sees_any(
            [stored[0].residence_code, await sql.institution_region(conn, stored[0].institution_code)])):
        # the same answer whoever holds it: an id in use tells nothing of the registration
        raise fail("pregnancy_id", f"pregnancy {req.pregnancy_id} was registered by another source", 409)
    decision = decide_version(stored[0].version if stored else None, stored[1] if stored else None, h, req.version)
    if decision.action == "unchanged":
        assert stored
        return 200, stored[0]
    if stored and stored[0].voided:
        raise fail("pregnancy_id", "the pregnancy registration was voided; register a new pregnancy id", 409)
    model.check_booking(req.lmp_date, req.registered_on, uow.today())
    await known_institution(conn, req.institution_code, scope=scope)
    events: list[NewEvent] = []
    if stored:
        mother_id = stored[0].mother_id
    else:
        mother_id, events = await resolve_person(conn, req.mother, "mother", scope.actor)
    mother = await sql.get_person(conn, mother_id)
    if mother["sex"] != "F":
        raise fail("mother", "the mother of a pregnancy must be a woman (sex F)")
    residence = req.residence_code
    if residence is None:
        hist = await sql.residence_history(conn, mother_id)
        residence = hist[-1][1]
    await check_region(conn, "residence_code", residence)
    p = Pregnancy(req.pregnancy_id, req.source, mother_id, req.lmp_date, req.registered_on, req.institution_code,
                  residence, decision.version, stored[0].delivered_on if stored else None)
    if stored:
        await sql.update_pregnancy(conn, p, h)
    else:
        await sql.insert_pregnancy(conn, p, h)
    events.append(publish.pregnancy_recorded(p))
    uow.emit(*events)
    return (201 if decision.action == "create" else 200), p


async def void_pregnancy(db: Database, scope: Scope, pregnancy_id: str, reason: str) -> Pregnancy:
    """Void a registration made in error: only once its encounters are voided (they would lose their episode)."""
    async with UnitOfWork(db, scope) as uow:
        found = await sql.get_pregnancy(uow.conn, pregnancy_id, for_update=True)
        booking = await sql.institution_region(uow.conn, found[0].institution_code) if found else None
        preg = access.require_pregnancy_writer(scope, found[0] if found else None, booking, pregnancy_id)
        if preg.voided:
            return preg
        if n := await sql.active_encounter_count(uow.conn, pregnancy_id):
            raise fail("pregnancy_id", f"the pregnancy has {n} active encounters: void them first", 409)
        preg = replace(preg, voided=True, version=preg.version + 1)
        await sql.void_pregnancy(uow.conn, pregnancy_id, preg.version, reason, scope.actor)
        uow.emit(publish.pregnancy_recorded(preg))
    return preg


async def pregnancy_view(db: Database, scope: Scope, pregnancy_id: str) -> dict[str, Any]:
    """A pregnancy with its encounters and facts for the county of residence; for a county that recorded care on
    it, its own encounters only. Every read is audited (PII: a clinical record)."""
    async with UnitOfWork(db, scope) as uow:
        found = await sql.get_pregnancy(uow.conn, pregnancy_id)
        preg = found[0] if found else None
        merged_into, merged = await merging.pregnancy_members(uow.conn, pregnancy_id) if preg else (None, [])
        encs = [e for p in (pregnancy_id, *merged)  # one episode registered twice is read as one (合并)
                for e in await sql.encounters_of_pregnancy(uow.conn, p)] if preg else []
        encs.sort(key=lambda e: (str(e["occurred_on"]), e["source"], e["encounter_id"]))
        booking = await sql.institution_region(uow.conn, preg.institution_code) if preg else None
        view = access.view_of(scope, preg.residence_code if preg else None,
                              [booking, *access.encounter_regions(encs)] if preg else [], "pregnancy", pregnancy_id)
        assert preg is not None
        await audit_read(uow, "pregnancy", pregnancy_id, [], unmasked=scope.principal.has("pii:read"))
    if view == "care":
        return {"pregnancy_id": pregnancy_id, "visibility": "care",
                "encounters": [view_encounter(e) for e in access.own_encounters(scope, encs)]}
    views = [view_encounter(e) for e in encs]
    return {**_pregnancy_view(preg), "visibility": "full", "merged_into": merged_into, "merged": merged,
            "facts": pregnancy_facts(preg, views), "encounters": views}


async def audit_read(uow: UnitOfWork, kind: str, subject: str, fields: list[str], unmasked: bool) -> None:
    """Every read of a person or a clinical record is audited, masked or not, under the account that read it."""
    await sql.audit_pii(uow.conn, uow.scope.actor, uow.scope.request_id, kind, subject, fields, unmasked)


# ---------------------------------------------------------------- encounters (set-based: one item or a batch)
def _clinical_date(v: Any) -> date:
    """The clinical date of a timestamp: its date in China (UTC+8) when it carries an offset."""
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            return v.astimezone(CHINA).date()
        return v.date()
    assert isinstance(v, date)
    return v


@dataclass
class Parsed:
    index: int
    req: dict[str, Any]
    fields: dict[str, Any]
    on: date
    hash: str
    version: int | None

    @property
    def key(self) -> tuple[str, str]:
        return self.req["source"], self.req["encounter_id"]


def parse_encounter(index: int, body: Any) -> Parsed:
    if not isinstance(body, dict):
        raise fail("body", "an encounter is a JSON object")
    try:
        req = EncounterIn.model_validate(body)
    except ValidationError as e:
        raise pydantic_errors(e) from e
    typ = ENCOUNTER_FIELDS.get(req.type)
    if typ is None:
        raise fail("type", f"unknown encounter type {req.type!r}; one of {', '.join(ENCOUNTER_TYPES)}")
    try:
        fields = typ.model_validate(req.model_extra or {}).model_dump()
    except ValidationError as e:
        raise pydantic_errors(e) from e
    common = req.model_dump(exclude={"version"})
    for k in req.model_extra or {}:
        common.pop(k, None)
    common["occurred_at"] = body.get("occurred_at")
    return Parsed(index, common, fields, _clinical_date(req.occurred_at), content_hash(body), req.version)


@dataclass
class Changes:
    """Everything a unit of work writes, gathered so that a batch writes it set-based."""

    children: list[encounters.Person] = field(default_factory=list)
    #: (the corrected child, its birth date before)
    corrected: list[tuple[encounters.Person, date]] = field(default_factory=list)
    rows: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    delivered: dict[str, date | None] = field(default_factory=dict)
    deaths: dict[str, tuple[date | None, str | None]] = field(default_factory=dict)
    events: list[NewEvent] = field(default_factory=list)

    def add(self, state: encounters.State, out: encounters.Outcome, reason: str | None) -> None:
        self.children += out.new_children
        self.rows.append((out.row, reason))
        if out.delivered:
            self.delivered[out.delivered[0]] = out.delivered[1]
        if out.death:
            self.deaths[out.death[0]] = (out.death[1], out.death[2])
        self.corrected += out.corrected_children
        for c in out.new_children + [c for c, _ in out.corrected_children]:
            self.events.append(publish.person_upserted(c.person_id, c.sex, c.birth_date, c.residence, c.version,
                                                       c.mother_id, c.born_in))
        self.events.append(_encounter_event(state, out.row))

    async def write(self, conn: AsyncConnection, premises: sql.Premises | None = None) -> bool:
        """Write it all (one statement when it can be). With `premises` (what was read without locks): False when
        they no longer hold, and nothing is written."""
        if not (self.rows or self.events or self.children or self.corrected or self.delivered or self.deaths):
            return True
        if not self.corrected:
            done = await sql.write_encounters(conn, self.children, self.rows, self.delivered, self.deaths,
                                              outbox.columns(self.events), premises)
            if done is not None:
                return done
        if premises is not None:  # only a unit of work that locked what it read writes in steps
            return False
        # a delivery correction (children's birth date or sex), or the same encounter twice in the batch: in steps
        await sql.insert_children(conn, self.children)
        await sql.correct_children(conn, self.corrected)
        await sql.save_encounters(conn, self.rows)
        await sql.set_delivered_many(conn, self.delivered)
        await sql.set_deaths(conn, self.deaths)
        await outbox.append(conn, self.events)
        return True


def _encounter_event(state: encounters.State, row: dict[str, Any]) -> NewEvent:
    on = row["occurred_on"]
    preg = state.pregnancies.get(row["pregnancy_id"]) if row.get("pregnancy_id") else None
    person = state.persons.get(str(row["person_id"])) if row.get("person_id") else None
    if preg is not None:
        region = person.residence_on(on) if person and person.residence else preg.residence_code
    else:
        region = person.residence_on(on) if person else ""
    inst = state.institutions[row["institution_code"]]
    return publish.encounter_recorded(row, inst, region, preg)


async def load_state(conn: AsyncConnection, items: list[Parsed], extra_keys: list[tuple[str, str]] | None = None,
                     lock: bool = True) -> encounters.State:
    """Everything the rules need for these items, in one query (rows to change locked; a death adds one)."""
    st = encounters.State()
    keys = sorted({p.key for p in items} | set(extra_keys or []))
    codes = sorted({p.req["institution_code"] for p in items})
    preg_ids = sorted({p.req["subject_id"] for p in items if p.req["type"] in PREGNANCY_ENCOUNTERS})
    person_ids = sorted({p.req["subject_id"] for p in items if p.req["type"] not in PREGNANCY_ENCOUNTERS})
    st.encounters, st.institutions, st.pregnancies, st.persons = await sql.load_encounter_state(
        conn, keys, codes, preg_ids, person_ids, lock)
    dying = sorted({p.req["subject_id"] for p in items if p.req["type"] == "death"} & set(st.persons))
    if dying:
        for pid, preg in (await sql.pregnancies_of_mothers(conn, dying)).items():
            st.pregnancies.setdefault(pid, preg)
    for preg in st.pregnancies.values():
        st.pregnancies_of.setdefault(preg.mother_id, []).append(preg.pregnancy_id)
    return st


def _anywhere(_: str) -> bool:
    return True


#: whether the caller may post for an institution in a region: one rule for all items, or one per item (items of
#: different callers coalesced into one unit of work)
MayPostFor = Callable[[str], bool] | Sequence[Callable[[str], bool]]


async def post_encounters(conn: AsyncConnection, bodies: list[Any], today: date,
                          may_post_for: MayPostFor = _anywhere) -> list[ItemAnswer]:
    """Post encounters in one unit of work: parse and check every item in Python against state loaded in a few
    queries, then write the accepted ones set-based. A refused item changes nothing and does not affect its
    neighbours; later items of the batch see earlier accepted ones. `may_post_for(region)`: whether the caller may
    post for an institution in that region."""
    answers = await _post_encounters(conn, bodies, today, may_post_for, lock=True)
    assert answers is not None
    return answers


async def _post_encounters(conn: AsyncConnection, bodies: list[Any], today: date, may_post_for: MayPostFor,
                           lock: bool) -> list[ItemAnswer] | None:
    """`lock`: inside a transaction, the rows to change locked as they are read. Otherwise (outside a transaction)
    read without locks and written in one statement that locks and checks what was read: None when it changed
    meanwhile (nothing written; do it again, locked)."""
    answers: dict[int, ItemAnswer] = {}
    parsed: list[Parsed] = []
    for i, body in enumerate(bodies):
        try:
            parsed.append(parse_encounter(i, body))
        except DomainError as e:
            answers[i] = (e.status, {"errors": e.errors})
    state = await load_state(conn, parsed, lock=lock)
    premises = None if lock else sql.Premises(
        [(s, i, row["version"]) for (s, i), row in state.encounters.items()],
        [(pid, p.version, p.delivered_on) for pid, p in state.pregnancies.items()])
    changes = Changes()
    for p in parsed:
        stored = state.encounters.get(p.key)
        try:
            decision = decide_version(stored["version"] if stored else None,
                                      stored["content_hash"] if stored else None, p.hash, p.version)
            allowed = may_post_for if callable(may_post_for) else may_post_for[p.index]
            if stored is not None and not _recorded_in(state, stored, allowed):
                raise fail("encounter_id", "the encounter id is in use by another record; post a new encounter id",
                           409)
            if decision.action == "unchanged":
                assert stored is not None
                answers[p.index] = (200, view_encounter(stored))
                continue
            if stored and stored["voided"]:
                raise fail("encounter_id", "the encounter was voided; post a new encounter id", 409)
            inst = state.institutions.get(p.req["institution_code"])
            # an institution outside the caller's region is answered exactly like an unknown one
            view = state if inst is None or allowed(inst.region_code) else _without(state, inst.code)
            errs, out = encounters.decide(view, p.req, p.fields, p.on, stored, decision.version, p.hash, today)
            if errs or out is None:
                raise DomainError(errs)
        except DomainError as e:
            answers[p.index] = (e.status, {"errors": e.errors})
            continue
        encounters.apply(state, out)
        changes.add(state, out, "correction" if stored else None)
        answers[p.index] = (201 if decision.action == "create" else 200, view_encounter(out.row))
    if not await changes.write(conn, premises):
        return None
    return [answers[i] for i in range(len(bodies))]


class EncounterPosts:
    """Single encounter posts, group-committed (kit.coalesce; decision 45): concurrent posts share one unit of
    work, each answered exactly as if posted alone, each with its own caller's scope (its region rule). A lone
    post takes two round trips outside a transaction (decision 43)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.coalescer: Coalescer[_Post, ItemAnswer] = Coalescer(self._together, max_items=100, max_running=2)

    async def post(self, scope: Scope, body: Any) -> ItemAnswer:
        return await self.coalescer.submit((body, scope))

    async def _alone(self, post: _Post) -> ItemAnswer:
        """Read; check what was read and write, one statement; or, when what was read changed meanwhile (or the
        pooled connection was stale), a locked transaction."""
        body, scope = post

        async def once() -> ItemAnswer:
            try:
                async with self.db.autocommit() as conn:
                    done = await post_encounters_unlocked(conn, [body], scope.today(), scope.sees)
                if done is not None:
                    return done[0]
            except Exception as e:
                if not is_unavailable(e):
                    raise
            async with self.db.begin() as conn:
                return (await post_encounters(conn, [body], scope.today(), scope.sees))[0]

        return await _retrying_a_race(once)

    async def _together(self, posts: list[_Post]) -> list[ItemAnswer | BaseException]:
        """Posts of concurrent requests as one locked unit of work (a refused one changes nothing and does not
        affect the others). If the unit fails as a whole, each post is done on its own, so one bad post cannot
        fail its neighbours."""
        if len(posts) == 1:
            return [await self._alone(posts[0])]

        async def once() -> list[ItemAnswer]:
            async with self.db.begin() as conn:
                return await post_encounters(conn, [b for b, _ in posts], posts[0][1].today(),
                                             [s.sees for _, s in posts])

        try:
            return list(await _retrying_a_race(once))
        except Exception as e:
            if is_unavailable(e):
                raise
        answers: list[ItemAnswer | BaseException] = []
        for post in posts:
            try:
                answers.append(await self._alone(post))
            except Exception as e:
                answers.append(e)
        return answers


async def post_encounter_batch(db: Database, scope: Scope, bodies: list[Any]) -> list[ItemAnswer]:
    """Up to 1000 encounters in one locked unit of work, answered per item."""
    async def once() -> list[ItemAnswer]:
        async with db.begin() as conn:
            return await post_encounters(conn, bodies, scope.today(), scope.sees)

    return await _retrying_a_race(once)


#: a single encounter post and its caller's scope
_Post = tuple[Any, Scope]
T = TypeVar("T")


async def _retrying_a_race(unit: Callable[[], Awaitable[T]]) -> T:
    """Two posts of the same new encounter racing: the loser's insert meets the winner's row; done again, it sees
    it (a retry, a correction or a conflict, as the contract says)."""
    try:
        return await unit()
    except UniqueViolationError:
        return await unit()


def _recorded_in(state: encounters.State, stored: dict[str, Any], allowed: Callable[[str], bool]) -> bool:
    """Whether a stored encounter was recorded by an institution of the caller's region (who may change it)."""
    inst = state.institutions.get(stored["institution_code"])
    return inst is not None and allowed(inst.region_code)


def _without(state: encounters.State, code: str) -> encounters.State:
    """The state as a caller sees it who may not record care at institution `code`."""
    return replace(state, institutions={k: v for k, v in state.institutions.items() if k != code})


async def post_encounters_unlocked(conn: AsyncConnection, bodies: list[Any], today: date,
                                   may_post_for: MayPostFor = _anywhere) -> list[ItemAnswer] | None:
    """`post_encounters` outside a transaction in two round trips (read without locks; one statement checking
    what was read and writing); None when what was read changed meanwhile (nothing written: post them locked)."""
    return await _post_encounters(conn, bodies, today, may_post_for, lock=False)


async def void_encounter(db: Database, scope: Scope, source: str, encounter_id: str, reason: str) -> dict[str, Any]:
    """A void is a newer version with `voided` set; the history keeps every version. Only the county of the
    institution that recorded it may void it."""
    async with UnitOfWork(db, scope) as uow:
        state = await load_state(uow.conn, [], [(source, encounter_id)])
        stored = state.encounters.get((source, encounter_id))
        inst = state.institutions.get(stored["institution_code"]) if stored else None
        stored = access.require_encounter_writer(scope, stored, inst.region_code if inst else None,
                                                 f"{source}/{encounter_id}")
        if stored["voided"]:
            return view_encounter(stored)
        row = {**stored, "version": stored["version"] + 1, "voided": True, "void_reason": reason}
        out = encounters.void_effects(row)
        encounters.apply(state, out)
        changes = Changes()
        changes.add(state, out, reason)
        await changes.write(uow.conn)
        await sql.set_voided_by(uow.conn, "encounter", source, encounter_id, scope.actor)
    return view_encounter(row)


def view_encounter(row: dict[str, Any]) -> dict[str, Any]:
    body = dict(row["body"])
    out = {
        "encounter_id": row["encounter_id"], "source": row["source"], "version": row["version"],
        "type": row["type"], "status": "voided" if row["voided"] else "active", "subject_id": row["subject_id"],
        "pregnancy_id": row.get("pregnancy_id"), "person_id": str(row["person_id"]) if row.get("person_id") else None,
        "institution_code": row["institution_code"], "occurred_on": str(row["occurred_on"]), **body,
    }
    if row["type"] == "delivery":
        out["children"] = [b["child_id"] for b in body.get("babies", []) if b.get("child_id")]
    return out


# ---------------------------------------------------------------- persons
async def add_residence(db: Database, scope: Scope, person_id: str, since: date,
                        region_code: str) -> tuple[int, int]:
    """A move (现住址变更): a new span in the residence history, never an overwrite. Returns (status, version).
    A move checks both ends: her current county (else she is answered as unknown) and the new one."""
    async with UnitOfWork(db, scope) as uow:
        conn = uow.conn
        row = await sql.get_person(conn, person_id)
        hist = await sql.residence_history(conn, person_id) if row else []
        scope.require_object([hist[-1][1] if hist else None], "person", person_id)
        scope.principal.require_region(region_code, "region_code")
        await check_region(conn, "region_code", region_code)
        if since < row["birth_date"]:
            raise fail("since", f"a residence cannot start before the birth on {row['birth_date']}")
        if since > uow.today():
            raise fail("since", "a residence cannot start in the future")
        if not await sql.add_residence(conn, person_id, since, region_code):
            return 200, row["version"]
        version = await sql.bump_person_version(conn, person_id)
        hist = await sql.residence_history(conn, person_id)
        uow.emit(publish.person_upserted(
            person_id, row["sex"], row["birth_date"], hist, version,
            str(row["mother_id"]) if row["mother_id"] else None, row["born_in_pregnancy_id"],
            registered_on=row["created_at"].astimezone(CHINA).date(), hukou_code=row.get("hukou_code")))
    return 201, version


PII_FIELDS = ("id_number", "document_number", "name", "phone")


async def read_person(db: Database, scope: Scope, person_id: str) -> dict[str, Any]:
    """GET /v1/persons/{id}: in full (personal fields masked unless pii:read) for her county of residence; a county
    that cared for her sees its own encounters only. Every read is audited, masked or not."""
    unmasked = scope.principal.has("pii:read")
    async with UnitOfWork(db, scope) as uow:
        row = await sql.get_person(uow.conn, person_id)
        hist = await sql.residence_history(uow.conn, person_id) if row else []
        encs = await sql.encounters_of_person(uow.conn, person_id) if row else []
        view = access.view_of(scope, hist[-1][1] if hist else None, access.encounter_regions(encs), "person",
                              person_id)
        if view == "care":
            await audit_read(uow, "person", person_id, [], unmasked=False)
            return {"person_id": person_id, "visibility": "care",
                    "encounters": [view_encounter(e) for e in access.own_encounters(scope, encs)]}
        out = await _person_view(uow.conn, person_id, row, hist, encs)
        await audit_read(uow, "person", person_id, [f for f in PII_FIELDS if out.get(f)], unmasked)
    if not unmasked:
        _mask_person(out)
    return out


async def _person_view(conn: AsyncConnection, person_id: str, row: Any, hist: list[tuple[date | None, str]],
                       rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A person with residence history, links, death and encounters (a child's checks with z-scores)."""
    merged_into, duplicates = await merging.members(conn, person_id)
    for dup in duplicates:  # a merged record's care is read as the survivor's (issue 19)
        rows = rows + await sql.encounters_of_person(conn, dup)
    encs = [view_encounter(e) for e in rows]
    return {
        "merged_into": merged_into, "merged": duplicates,
        "visibility": "full", "person_id": person_id, "id_number": row["id_number"], "name": row["name"],
        "phone": row["phone"], "document_type": row["document_type"], "document_number": row["document_number"],
        "sex": row["sex"], "birth_date": str(row["birth_date"]), "version": row["version"],
        "residence_code": hist[-1][1] if hist else None,
        "residence": [{"since": str(s) if s else None, "region_code": r} for s, r in hist],
        "hukou_code": row.get("hukou_code"),
        "mother_id": str(row["mother_id"]) if row["mother_id"] else None,
        "born_in_pregnancy_id": row["born_in_pregnancy_id"],
        "died_on": str(row["died_on"]) if row["died_on"] else None,
        "children": [c for m in (person_id, *duplicates) for c in await sql.children_of(conn, m)],
        "checks": [e for e in encs if e["type"] in ("newborn_visit", "child_health_check")
                   and e["status"] == "active"],
        "encounters": encs,
    }


# ---------------------------------------------------------------- pregnancy read model
def pregnancy_facts(preg: Pregnancy, encs: list[dict[str, Any]]) -> dict[str, Any]:
    """The episode's derived facts from its active encounters (timeline order)."""
    active = [e for e in encs if e["status"] == "active"]
    visits = [e for e in active if e["type"] == "prenatal_visit"]
    grades = [(e["occurred_on"], e.get("risk_grade") or "") for e in visits if e.get("risk_grade")]
    order = {g: i for i, g in enumerate(model.RISK_GRADES)}
    delivery = next((e for e in active if e["type"] == "delivery"), None)
    return {
        "gestational_days_at_booking": preg.gestational_days(preg.registered_on),
        "early_booking": preg.gestational_days(preg.registered_on) < 13 * 7,
        "antenatal_checks": len({e["occurred_on"] for e in visits}),
        "risk_grades": [{"on": on, "grade": g} for on, g in grades],
        "current_risk_grade": grades[-1][1] if grades else None,
        "highest_risk_grade": max((g for _, g in grades), key=lambda g: order[g]) if grades else None,
        "high_risk": any(order[g] >= order["orange"] for _, g in grades),
        "delivered_on": str(preg.delivered_on) if preg.delivered_on else None,
        "gestational_days_at_delivery": delivery["gestational_days"] if delivery else None,
        "live_births": sum(1 for b in delivery["babies"] if b["outcome"] == "live") if delivery else 0,
        "stillbirths": sum(1 for b in delivery["babies"] if b["outcome"] == "stillbirth") if delivery else 0,
        "children": delivery["children"] if delivery else [],
        "postpartum_visits": sum(1 for e in active if e["type"] == "postpartum_visit"),
        "postpartum_42d_check": any(e["type"] == "postpartum_42d_check" for e in active),
    }


# ---------------------------------------------------------------- marriage registrations (结婚登记)
async def register_marriage(db: Database, scope: Scope, body: Any) -> ItemAnswer:
    async with UnitOfWork(db, scope) as uow:
        return await _register_marriage(uow, body)


async def register_marriages(db: Database, scope: Scope, items: list[Any]) -> list[ItemAnswer]:
    return await per_item(db, scope, items, _register_marriage)


async def _register_marriage(uow: UnitOfWork, body: Any) -> ItemAnswer:
    """结婚登记 by a civil-affairs office of the caller's region; the persons may live anywhere (linked)."""
    from registry.api.schemas import MarriageIn

    conn, scope = uow.conn, uow.scope
    if not isinstance(body, dict):
        raise fail("body", "a marriage registration is a JSON object")
    try:
        req = MarriageIn.model_validate(body)
    except ValidationError as e:
        raise pydantic_errors(e) from e
    await check_region(conn, "region_code", req.region_code)
    scope.principal.require_region(req.region_code, "region_code")
    if req.registered_on > uow.today():
        raise fail("registered_on", "the registration date is in the future")
    h = content_hash(body)
    stored = await sql.get_marriage(conn, req.source, req.registration_id)
    if stored is not None and not scope.sees(stored["region_code"]):
        raise fail("registration_id", "the registration id is in use by another record; post a new one", 409)
    decision = decide_version(stored["version"] if stored else None, stored["content_hash"] if stored else None, h,
                              req.version)
    if decision.action == "unchanged":
        assert stored is not None
        return 200, _marriage_view(dict(stored))
    if stored and stored["voided"]:
        raise fail("registration_id", "the registration was voided; post a new registration id", 409)
    events: list[NewEvent] = []
    pids = []
    for i, p in enumerate(req.persons):
        pid, evs = await resolve_person(conn, p, f"persons.{i}", scope.actor)
        pids.append(pid)
        events += evs
    if pids[0] == pids[1]:
        raise fail("persons", "a marriage registers two different persons")
    m = {"source": req.source, "registration_id": req.registration_id, "version": decision.version,
         "registered_on": req.registered_on, "region_code": req.region_code, "person_ids": pids, "content_hash": h,
         "voided": False}
    await sql.save_marriage(conn, m, "correction" if stored else None)
    events.append(publish.marriage_recorded(m))
    uow.emit(*events)
    return (201 if decision.action == "create" else 200), _marriage_view(m)


async def void_marriage(db: Database, scope: Scope, source: str, registration_id: str,
                        reason: str) -> dict[str, Any]:
    async with UnitOfWork(db, scope) as uow:
        stored = access.require_marriage(scope, await sql.get_marriage(uow.conn, source, registration_id),
                                         f"{source}/{registration_id}")
        m = dict(stored)
        if not m["voided"]:
            m.update(version=m["version"] + 1, voided=True, void_reason=reason)
            m["person_ids"] = [str(p) for p in m["person_ids"]]
            await sql.save_marriage(uow.conn, m, reason)
            await sql.set_voided_by(uow.conn, "marriage", source, registration_id, scope.actor)
            uow.emit(publish.marriage_recorded(m))
    return _marriage_view(m)


def _marriage_view(m: dict[str, Any]) -> dict[str, Any]:
    return {"registration_id": m["registration_id"], "source": m["source"], "version": m["version"],
            "registered_on": str(m["registered_on"]), "region_code": m["region_code"],
            "person_ids": [str(p) for p in m["person_ids"]], "status": "voided" if m["voided"] else "active"}


# ---------------------------------------------------------------- person search (人员查询; issue 19)
async def search_persons(db: Database, scope: Scope, q: PersonSearch) -> dict[str, Any]:
    """GET /v1/persons: the persons whose *current* residence lies in the caller's region that match every
    criterion (a county that only cared for a woman finds her through its own encounters, not here). Personal
    fields masked unless pii:read; the search and every person it returns are audited."""
    q.check()
    unmasked = scope.principal.has("pii:read")
    async with UnitOfWork(db, scope) as uow:
        mother_id = await _searched_mother(uow, q) if q.mother else None
        rows = await sql.search_persons(uow.conn, q, scope.principal.region_prefix, mother_id)
        await audit_read(uow, "person_search", ",".join(q.criteria()), q.criteria(), unmasked)
        found = [_search_hit(r) for r in rows]
        for hit in found:
            await audit_read(uow, "person", hit["person_id"], [f for f in SEARCH_PII if hit.get(f)], unmasked)
    if not unmasked:
        for hit in found:
            _mask_person(hit)
    return {"persons": found, "count": len(found), "limit": q.limit}


#: the personal fields a search answer carries (masked unless pii:read)
SEARCH_PII = ("id_number", "document_number", "name", "phone")


def _mask_person(hit: dict[str, Any]) -> None:
    hit["id_number"] = mask(hit["id_number"], 1, 0)
    hit["document_number"] = mask(hit["document_number"], 1, 0)
    hit["name"] = mask(hit["name"], 1, 0)
    hit["phone"] = mask(hit["phone"], 0, 0)


async def _searched_mother(uow: UnitOfWork, q: PersonSearch) -> str:
    """The mother a search for children names (a person id or a document number), checked against the caller's
    region like any read of her: one outside it is answered like one that does not exist."""
    assert q.mother
    pid = q.mother_person_id()
    row = await sql.get_person(uow.conn, pid) if pid else await sql.person_by_document_number(
        uow.conn, documents.search_key(q.mother))
    key = str(row["person_id"]) if row else q.mother
    hist = await sql.residence_history(uow.conn, key) if row else []
    encs = await sql.encounters_of_person(uow.conn, key) if row else []
    access.view_of(uow.scope, hist[-1][1] if hist else None, access.encounter_regions(encs), "person", q.mother)
    return key


def _search_hit(r: Any) -> dict[str, Any]:
    return {"person_id": str(r["person_id"]), "name": r["name"], "sex": r["sex"], "birth_date": str(r["birth_date"]),
            "id_number": r["id_number"], "document_type": r["document_type"], "document_number": r["document_number"],
            "phone": r["phone"], "residence_code": r["residence_code"].strip(),
            "mother_id": str(r["mother_id"]) if r["mother_id"] else None,
            "died_on": str(r["died_on"]) if r["died_on"] else None}


# ---------------------------------------------------------------- merges (合并 / 撤销合并: registry.merging)
# each its own unit of work; within another use case's unit of work (the review queue's "confirm") call
# registry.merging.merge_persons(uow, survivor_id, duplicate_id, reason) / unmerge_person(uow, duplicate_id, reason)
merge = merging.merge
unmerge = merging.unmerge
merge_history = merging.history
