"""Screening use cases: each owns one unit of work (kit.scope.UnitOfWork: the transaction, the events published with
it, the caller's scope and the China-time clock).

Who sees what (decision 54, the same rule as the registry's): a result is seen by the county of the subject's
residence and by the county of the institution that performed it (the care-giver); only the latter corrects or
voids it. A follow-up case is seen and worked by the county of residence and the county of the institution that
opened it. Anything else is answered exactly like a record that does not exist (404, no region code)."""
from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from kit import outbox
from kit.clock import today_cn
from kit.db import Database
from kit.events import NewEvent
from kit.scope import ItemAnswer, Scope, UnitOfWork, per_item
from sqlalchemy.ext.asyncio import AsyncConnection

from screening.domain import followup, model, rules
from screening.domain.followup import HIGH_RISK_PREGNANCY, Case
from screening.domain.model import DomainError, PregnancyInfo, fail
from screening.events import publish
from screening.store import merges, sql

SERVICE = "screening"
RULES = rules.load()
__all__ = ["today_cn"]


def _require_result(scope: Scope, stored: dict[str, Any] | None, key: str, write: bool = False) -> dict[str, Any]:
    """The one check of a stored result: seen by its county of residence and its institution's county; changed
    only by the latter."""
    regions = [stored["institution_region"]] if stored else []
    if stored and not write:
        regions.append(stored["residence_code"])
    scope.require_object(regions, "screening", key)
    assert stored is not None
    return stored


async def _require_case(conn: AsyncConnection, scope: Scope, case: Case | None, case_id: str) -> Case:
    """The one check of a follow-up case: its county of residence or the county of the institution that opened it."""
    regions = [case.region_code, await sql.institution_region(conn, case.institution_code)] if case else []
    scope.require_object(regions, "follow-up case", case_id)
    assert case is not None
    return case


# ---------------------------------------------------------------- subjects
@dataclass(frozen=True)
class Subject:
    subject_key: str
    person_id: str
    pregnancy_id: str | None
    residence_code: str
    birth_date: date | None


def _not_known(kind: str, sid: str) -> DomainError:
    return fail("subject_id", f"unknown {kind} {sid}: not known to screening (yet); the registry's events reach "
                "screening within seconds of its answer, so retry shortly, or register it in the registry first")


async def resolve_subject(conn: AsyncConnection, t: str, spec: model.TypeSpec, req: model.ScreeningIn,
                          result: Any) -> Subject:
    on = req.performed_on
    if spec.subject == "pregnancy":
        preg = await sql.get_pregnancy(conn, req.subject_id)
        if preg is None:
            if await sql.get_person(conn, req.subject_id) is not None:
                raise fail("subject_id", f"{t} is a test of a pregnancy: {req.subject_id} is a person, not a "
                           "pregnancy; post the pregnancy id (保健手册号)")
            raise _not_known("pregnancy", req.subject_id)
        errs = model.check_pregnancy_subject(t, spec, preg, on, result)
        if errs:
            raise DomainError(errs)
        mother = await sql.get_person(conn, preg.mother_id)
        residence = (mother.residence_on(on) if mother else None) or preg.residence_code
        return Subject(f"pregnancy:{preg.pregnancy_id}", preg.mother_id, preg.pregnancy_id, residence, None)
    person = await sql.get_person(conn, req.subject_id)
    if person is None:
        if await sql.get_pregnancy(conn, req.subject_id) is not None:
            raise fail("subject_id", f"{t} is about a {spec.subject}: {req.subject_id} is a pregnancy id; post the "
                       "person id")
        raise _not_known("person", req.subject_id)
    errs = model.check_person_subject(t, spec, person, on)
    if isinstance(result, model.HbigIn | model.HepbVaccineIn) and not errs:
        errs = model.check_hbig_hours(result.hours_after_birth, person, on)
    if errs:
        raise DomainError(errs)
    return Subject(f"person:{person.person_id}", person.person_id, None, person.residence_on(on) or "",
                   person.birth_date)


async def check_partner(conn: AsyncConnection, req: model.ScreeningIn) -> None:
    if req.partner_id is None:
        return
    if req.partner_id == req.subject_id:
        raise fail("partner_id", "the partner is another person than the subject")
    if await sql.get_person(conn, req.partner_id) is None:
        raise fail("partner_id", f"unknown person {req.partner_id}: not known to screening (yet)")


# ---------------------------------------------------------------- results
async def record_screening(db: Database, scope: Scope, body: Any) -> ItemAnswer:
    """POST /v1/screenings: validate, classify by the rules in force, open / update / close its case."""
    async with UnitOfWork(db, scope, SERVICE) as uow:
        return await _record_screening(uow, body)


async def record_screenings(db: Database, scope: Scope, items: list[Any]) -> list[ItemAnswer]:
    return await per_item(db, scope, items, _record_screening, SERVICE)


async def _record_screening(uow: UnitOfWork, body: Any) -> ItemAnswer:
    """A result at an institution of the caller's region, of a subject living anywhere (continuity of care); the
    answer names her region only to her county of residence."""
    conn, scope, today = uow.conn, uow.scope, uow.today()
    if not isinstance(body, dict):
        raise fail("body", "each item is an object")
    req, result, spec = model.parse(body)
    model.check_dates(req.performed_on, today)
    h = model.content_hash(body)
    await sql.lock_record(conn, f"screening:{req.source}/{req.screening_id}")
    stored = await sql.get_screening(conn, req.source, req.screening_id, for_update=True)
    if stored is not None and not scope.sees(stored["institution_region"]):
        raise fail("screening_id", "the screening id is in use by another record; post a new screening id", 409)
    decision = model.decide_version(stored["version"] if stored else None, stored["content_hash"] if stored else None,
                                    h, req.version)
    if decision.action == "unchanged":
        assert stored is not None
        known = await sql.case_of_screening(conn, req.source, req.screening_id)
        return 200, _answer(scope, view_screening(stored, known), stored["residence_code"])
    if stored and stored["voided"]:
        raise fail("screening_id", "the result was voided; post a new screening id", 409)
    for fixed in ("type", "subject_id"):
        if stored and stored[fixed] != getattr(req, fixed):
            raise fail(fixed, f"a correction cannot change {fixed} ({stored[fixed]}); void the result and post a "
                       "new one", 409)
    inst_region = await sql.institution_region(conn, req.institution_code)
    if inst_region is None or not scope.sees(inst_region):  # one outside the caller's region: as if unknown
        raise fail("institution_code", f"unknown institution {req.institution_code}: not known to screening (yet); "
                   "the registry's events reach screening within seconds of its answer, so retry shortly, or "
                   f"register it in the registry first (PUT /v1/institutions/{req.institution_code})")
    subject = await resolve_subject(conn, req.type, spec, req, result)
    if not subject.residence_code:  # a person without a known residence is attributed to the institution's
        subject = dataclasses.replace(subject, residence_code=inst_region)
    await check_partner(conn, req)
    outcome = RULES.for_date(req.performed_on).classify(req.type, result.facts())
    stored_doc = result.model_dump(mode="json")
    if req.note:
        stored_doc["note"] = req.note
    row: dict[str, Any] = {
        "source": req.source, "screening_id": req.screening_id, "version": decision.version, "type": req.type,
        "subject_id": req.subject_id, "subject_key": subject.subject_key, "person_id": subject.person_id,
        "pregnancy_id": subject.pregnancy_id, "partner_id": req.partner_id, "performed_on": req.performed_on,
        "institution_code": req.institution_code, "institution_region": inst_region,
        "residence_code": subject.residence_code, "result": stored_doc, "classification": outcome.classification,
        "rule_version": outcome.rule_version, "content_hash": h, "voided": False, "void_reason": None,
    }
    existing = await sql.case_of_screening(conn, req.source, req.screening_id) if stored else None
    case: Case | None = existing
    if outcome.followup is not None:
        due = outcome.followup.due_on(req.performed_on, subject.birth_date)
        if existing is None:
            case = Case(str(uuid.uuid4()), req.type, outcome.classification, subject.subject_key, subject.person_id,
                        subject.pregnancy_id, subject.residence_code, req.institution_code, req.performed_on, due,
                        req.source, req.screening_id)
        else:
            case = followup.reopen(existing, outcome.classification, due)
    elif existing is not None:
        case = followup.close_for(existing, today, f"result corrected to {outcome.classification}")
    row["case_id"] = case.case_id if case else None
    await sql.save_screening(conn, row, "correction" if stored else None)
    events: list[NewEvent] = [publish.screening_recorded(row)]
    if case is not None and case != existing:
        await sql.save_case(conn, case, scope.actor)
        events.append(publish.followup_changed(case))
    uow.emit(*events)
    return (201 if decision.action == "create" else 200), _answer(scope, view_screening(row, case),
                                                                  subject.residence_code)


def _answer(scope: Scope, view: dict[str, Any], residence: str) -> dict[str, Any]:
    """A care-giver of another county learns nothing of where the subject lives."""
    if view.get("followup") and not scope.sees(residence):
        view["followup"] = {k: v for k, v in view["followup"].items() if k != "region_code"}
    return view


async def void_screening(db: Database, scope: Scope, source: str, screening_id: str,
                         reason: str) -> dict[str, Any]:
    """A void is a newer version with `voided` set; its open case is closed (kept) with the reason."""
    async with UnitOfWork(db, scope, SERVICE) as uow:
        conn = uow.conn
        stored = _require_result(scope, await sql.get_screening(conn, source, screening_id, for_update=True),
                                 f"{source}/{screening_id}", write=True)
        found = await sql.case_of_screening(conn, source, screening_id)
        if stored["voided"]:
            return _answer(scope, view_screening(stored, found), stored["residence_code"])
        stored.update(version=stored["version"] + 1, voided=True, void_reason=reason)
        await sql.save_screening(conn, stored, reason)
        await sql.set_voided_by(conn, source, screening_id, scope.actor)
        uow.emit(publish.screening_recorded(stored))
        if found is not None and found.status == "open":
            found = followup.close_for(found, uow.today(), f"result voided: {reason}")
            await sql.save_case(conn, found, scope.actor)
            uow.emit(publish.followup_changed(found))
    return _answer(scope, view_screening(stored, found), stored["residence_code"])


async def audit_read(uow: UnitOfWork, kind: str, subject: str, fields: list[str], unmasked: bool) -> None:
    """Every read of a clinical record (a result, a case) is audited, masked or not, under the account."""
    await sql.audit_pii(uow.conn, uow.scope.actor, uow.scope.request_id, kind, subject, fields, unmasked)


async def get_screening(db: Database, scope: Scope, source: str, screening_id: str) -> dict[str, Any]:
    unmask = scope.principal.has("pii:read")
    async with UnitOfWork(db, scope, SERVICE) as uow:
        conn = uow.conn
        stored = _require_result(scope, await sql.get_screening(conn, source, screening_id),
                                 f"{source}/{screening_id}")
        case = await sql.case_of_screening(conn, source, screening_id)
        out = _answer(scope, view_screening(stored, case, unmask), stored["residence_code"])
        history = await sql.screening_history(conn, source, screening_id)
        out["history"] = [{**h, "result": _masked(h["result"], unmask)} for h in history]
        await audit_read(uow, "screening", f"{source}/{screening_id}", ["note"], unmask)
    return out


# ---------------------------------------------------------------- follow-up
async def add_action(db: Database, scope: Scope, case_id: str, action: str, on: date, note: str | None,
                     outcome: str | None) -> tuple[int, Case]:
    """A follow-up action, recorded under the account of the token (never a name from the body)."""
    async with UnitOfWork(db, scope, SERVICE) as uow:
        case = await _require_case(uow.conn, scope, await sql.get_case(uow.conn, case_id, for_update=True), case_id)
        new, changed = followup.add_action(case, action, on, uow.today(), note, outcome)
        if changed:
            await sql.save_case(uow.conn, new, scope.actor)
            uow.emit(publish.followup_changed(new))
    return (201 if changed else 200), new


async def get_case(db: Database, scope: Scope, case_id: str) -> Case:
    unmask = scope.principal.has("pii:read")
    async with UnitOfWork(db, scope, SERVICE) as uow:
        case = await _require_case(uow.conn, scope, await sql.get_case(uow.conn, case_id), case_id)
        await audit_read(uow, "followup", case_id, ["note"], unmask)
    return case


async def list_cases(db: Database, scope: Scope, region: str, status: str | None, overdue: bool | None,
                     case_type: str | None, limit: int, after: tuple[date, str] | None) -> list[Case]:
    """A region's cases (the caller's region, or a part of it: checked by the router as the caller's own input)."""
    unmask = scope.principal.has("pii:read")
    async with UnitOfWork(db, scope, SERVICE) as uow:
        cases = await sql.list_cases(uow.conn, region, status, overdue, uow.today(), case_type, limit, after)
        await audit_read(uow, "followup_list", region or "(all)", ["note"], unmask)
    return cases


# ---------------------------------------------------------------- registry events (screening's view of persons)
async def reconsider_high_risk(conn: AsyncConnection, pregnancy_id: str, mother_id: str,
                               today: date | None = None) -> None:
    """高危孕产妇专案管理: the first orange/red/purple grade of a pregnancy opens its case; if corrections
    leave no such grade, the open case is closed (kept) with the reason."""
    spec = RULES.current.high_risk_case
    survivor = await merges.pregnancy_survivor(conn, pregnancy_id)
    if survivor is not None:
        # one episode registered twice and merged (合并): the survivor's case is the episode's, due as for one
        # pregnancy; this registration's own case closes (kept; reopened if the merge is undone)
        own = await sql.high_risk_case(conn, pregnancy_id)
        if own is not None and own.status == "open":
            closed = followup.close_for(own, today or today_cn(), f"merged into pregnancy {survivor}")
            await sql.save_case(conn, closed)
            await outbox.append(conn, [publish.followup_changed(closed)], SERVICE)
        pregnancy_id = survivor
    visits = await sql.graded_visits(conn, [pregnancy_id, *await merges.pregnancy_duplicates(conn, pregnancy_id)])
    high = [v for v in visits if v[1] in spec.grades]
    case = await sql.high_risk_case(conn, pregnancy_id)
    new: Case | None = case
    if high:
        first_on, grade, inst = high[0]
        due = first_on + timedelta(days=spec.due_days)
        if case is None:
            preg = await sql.get_pregnancy(conn, pregnancy_id)
            mother = await sql.get_person(conn, preg.mother_id if preg else mother_id)
            region = (mother.residence_on(first_on) if mother else None) or (preg.residence_code if preg else None) \
                or await sql.institution_region(conn, inst) or ""
            new = Case(str(uuid.uuid4()), HIGH_RISK_PREGNANCY, grade, f"pregnancy:{pregnancy_id}",
                       preg.mother_id if preg else mother_id, pregnancy_id, region, inst, first_on, due)
        else:
            new = followup.reopen(case, case.reason if case.status == "open" else grade, due)
        if spec.closes_at == "delivery":
            preg_now = await sql.get_pregnancy(conn, pregnancy_id)
            new = followup.at_pregnancy_end(new, preg_now.delivered_on if preg_now else None)
    elif case is not None:
        # never high-risk after all: that, not the end of the pregnancy, is why the case is closed
        new = followup.close_for(followup.at_pregnancy_end(case, None), today or today_cn(),
                                 "risk grade corrected below orange")
    if new is not None and new != case:
        await sql.save_case(conn, new)
        await outbox.append(conn, [publish.followup_changed(new)], SERVICE)


async def close_cases_of_voided_pregnancy(conn: AsyncConnection, pregnancy_id: str) -> None:
    """A pregnancy voided in the registry (registered in error) leaves no open case behind; the cases are kept."""
    preg = await sql.get_pregnancy(conn, pregnancy_id)
    if preg is None or not preg.voided:  # an older event arriving late does not void a live pregnancy
        return
    for case in await sql.open_cases_of_pregnancy(conn, pregnancy_id):
        closed = followup.close_for(case, today_cn(), "pregnancy voided in the registry")
        await sql.save_case(conn, closed)
        await outbox.append(conn, [publish.followup_changed(closed)], SERVICE)


async def follow_merge(conn: AsyncConnection, msg: Any) -> None:
    """合并 / 撤销合并 in the registry: the duplicate's cases become the survivor's (given back on unmerge), and the
    high-risk case of each pregnancy registered twice is reconsidered as one episode's (its due date from the
    first high grade of either registration). Idempotent: an older or repeated version changes nothing."""
    pairs = [(p.duplicate_id, p.survivor_id) for p in msg.pregnancies]
    if not await merges.save_merge(conn, msg.merge_id, msg.survivor_id, msg.duplicate_id, pairs, msg.version,
                                   msg.unmerged):
        return
    for case in await merges.repoint_cases(conn, msg.survivor_id, msg.duplicate_id, msg.unmerged):
        await outbox.append(conn, [publish.followup_changed(case)], SERVICE)
    for dup, surv in pairs:
        await reconsider_high_risk(conn, dup, msg.duplicate_id)
        await reconsider_high_risk(conn, surv, msg.survivor_id)


async def apply_registry_events(conn: AsyncConnection, events: Sequence[tuple[str, Any]]) -> None:
    """Keep what screening needs to know from registry events (payloads already parsed). A graded visit is
    considered at once, event by event: whether a pregnancy's case opens must not depend on how the events
    were batched (an orange grade corrected to green in the same batch still opened, then closed, its case)."""
    from screening.events import read

    for etype, msg in events:
        if etype == read.INSTITUTION_UPSERTED:
            await sql.upsert_institution(conn, msg.institution_code, msg.region_code, msg.version)
        elif etype == read.PERSON_UPSERTED:
            await sql.upsert_person(conn, msg.person_id, msg.sex, date.fromisoformat(msg.birth_date),
                                    [(s.since, s.region_code) for s in msg.residence], msg.mother_id or None,
                                    msg.born_in_pregnancy_id or None, msg.version)
        elif etype == read.PREGNANCY_RECORDED:
            await sql.upsert_pregnancy(conn, PregnancyInfo(
                msg.pregnancy_id, msg.mother_id, date.fromisoformat(msg.lmp_date),
                date.fromisoformat(msg.registered_on), msg.residence_code, msg.voided), msg.version)
            if msg.voided:
                await close_cases_of_voided_pregnancy(conn, msg.pregnancy_id)
        elif etype == read.PERSON_MERGED:
            await follow_merge(conn, msg)
        elif etype == read.ENCOUNTER_RECORDED and msg.pregnancy_id:
            on = date.fromisoformat(msg.occurred_on)
            kind = msg.WhichOneof("detail")
            if msg.type in ("delivery", "pregnancy_termination"):   # either ends the pregnancy (decision 50)
                await sql.upsert_delivery(conn, msg.encounter_key, msg.pregnancy_id, on, msg.voided, msg.version)
                await reconsider_high_risk(conn, msg.pregnancy_id, msg.person_id)  # the pregnancy ended (or not)
            elif msg.type == "prenatal_visit" and kind == "prenatal_visit":
                await sql.upsert_graded_visit(conn, msg.encounter_key, msg.pregnancy_id, on,
                                              msg.prenatal_visit.risk_grade, msg.institution_code, msg.voided,
                                              msg.version)
                await reconsider_high_risk(conn, msg.pregnancy_id, msg.person_id)


# ---------------------------------------------------------------- views
def _masked(result: dict[str, Any], unmask: bool) -> dict[str, Any]:
    """Free-text notes may name people: masked unless the reader holds pii:read."""
    return result if unmask or not result.get("note") else {**result, "note": "***"}


def view_screening(row: dict[str, Any], case: Case | None, unmask: bool = True) -> dict[str, Any]:
    result = _masked(row["result"], unmask)
    return {
        "screening_id": row["screening_id"], "source": row["source"], "version": row["version"],
        "type": row["type"], "status": "voided" if row["voided"] else "active", "subject_id": row["subject_id"],
        "person_id": row["person_id"], "pregnancy_id": row.get("pregnancy_id"), "partner_id": row.get("partner_id"),
        "performed_on": str(row["performed_on"]), "institution_code": row["institution_code"],
        "classification": row["classification"], "rule_version": row["rule_version"],
        **result, "followup": view_case(case, today_cn(), unmask) if case else None,
    }


def view_case(case: Case, today: date, unmask: bool = True) -> dict[str, Any]:
    return {
        "case_id": case.case_id, "screening_key": case.screening_key or None, "screening_type": case.screening_type,
        "reason": case.reason, "person_id": case.person_id, "pregnancy_id": case.pregnancy_id,
        "region_code": case.region_code, "institution_code": case.institution_code,
        "opened_on": case.opened_on.isoformat(), "due_on": case.due_on.isoformat(), "status": case.status,
        "overdue": case.overdue(today), "closed_on": case.closed_on.isoformat() if case.closed_on else None,
        "outcome": case.outcome, "closed_reason": case.closed_reason, "version": case.version,
        "actions": [{**a.as_dict(), "note": a.note if unmask or not a.note else "***"} for a in case.actions],
    }

