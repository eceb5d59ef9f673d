"""Screening use cases: each is one unit of work (a transaction holding the state change and its events)."""
from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from kit import outbox
from kit.events import NewEvent
from sqlalchemy.ext.asyncio import AsyncConnection

from screening.domain import followup, model, rules
from screening.domain.followup import HIGH_RISK_PREGNANCY, Case
from screening.domain.model import DomainError, PregnancyInfo, fail
from screening.events import publish
from screening.store import sql

SERVICE = "screening"
CHINA = timezone(timedelta(hours=8))
RULES = rules.load()


def today_cn() -> date:
    """The clinical 'today' (China time), for future-date checks and overdue lists."""
    return datetime.now(CHINA).date()


def _forbid_region(code: str, region_prefix: str, what: str) -> None:
    if not code.startswith(region_prefix):
        raise DomainError([{"field": what, "reason": f"{code} is outside this client's region {region_prefix}"}],
                          403)


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
    if isinstance(result, model.HbigIn) and not errs:
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
async def record_screening(conn: AsyncConnection, body: dict[str, Any], region_prefix: str = "",
                           today: date | None = None) -> tuple[int, dict[str, Any]]:
    """POST /v1/screenings: validate, classify by the rules in force, open / update / close its case."""
    today = today or today_cn()
    req, result, spec = model.parse(body)
    model.check_dates(req.performed_on, today)
    h = model.content_hash(body)
    await sql.lock_record(conn, f"screening:{req.source}/{req.screening_id}")
    stored = await sql.get_screening(conn, req.source, req.screening_id, for_update=True)
    decision = model.decide_version(stored["version"] if stored else None, stored["content_hash"] if stored else None,
                                    h, req.version)
    if decision.action == "unchanged":
        assert stored is not None
        _forbid_region(stored["residence_code"], region_prefix, "subject_id")
        return 200, view_screening(stored, await sql.case_of_screening(conn, req.source, req.screening_id))
    if stored and stored["voided"]:
        raise fail("screening_id", "the result was voided; post a new screening id", 409)
    for fixed in ("type", "subject_id"):
        if stored and stored[fixed] != getattr(req, fixed):
            raise fail(fixed, f"a correction cannot change {fixed} ({stored[fixed]}); void the result and post a "
                       "new one", 409)
    inst_region = await sql.institution_region(conn, req.institution_code)
    if inst_region is None:
        raise fail("institution_code", f"unknown institution {req.institution_code}: not known to screening (yet); "
                   "the registry's events reach screening within seconds of its answer, so retry shortly, or "
                   f"register it in the registry first (PUT /v1/institutions/{req.institution_code})")
    subject = await resolve_subject(conn, req.type, spec, req, result)
    if not subject.residence_code:  # a person without a known residence is attributed to the institution's
        subject = dataclasses.replace(subject, residence_code=inst_region)
    _forbid_region(subject.residence_code, region_prefix, "subject_id")
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
        await sql.save_case(conn, case)
        events.append(publish.followup_changed(case))
    await outbox.append(conn, events, SERVICE)
    return (201 if decision.action == "create" else 200), view_screening(row, case)


async def void_screening(conn: AsyncConnection, source: str, screening_id: str, reason: str,
                         region_prefix: str = "", today: date | None = None) -> dict[str, Any]:
    """A void is a newer version with `voided` set; its open case is closed (kept) with the reason."""
    stored = await sql.get_screening(conn, source, screening_id, for_update=True)
    if stored is None:
        raise fail("screening_id", f"no screening {source}/{screening_id}", 404)
    _forbid_region(stored["residence_code"], region_prefix, "screening_id")
    found = await sql.case_of_screening(conn, source, screening_id)
    if stored["voided"]:
        return view_screening(stored, found)
    stored.update(version=stored["version"] + 1, voided=True, void_reason=reason)
    await sql.save_screening(conn, stored, reason)
    events = [publish.screening_recorded(stored)]
    if found is not None and found.status == "open":
        found = followup.close_for(found, today or today_cn(), f"result voided: {reason}")
        await sql.save_case(conn, found)
        events.append(publish.followup_changed(found))
    await outbox.append(conn, events, SERVICE)
    return view_screening(stored, found)


async def get_screening(conn: AsyncConnection, source: str, screening_id: str, region_prefix: str = "",
                        unmask: bool = False) -> dict[str, Any]:
    stored = await sql.get_screening(conn, source, screening_id)
    if stored is None:
        raise fail("screening_id", f"no screening {source}/{screening_id}", 404)
    _forbid_region(stored["residence_code"], region_prefix, "screening_id")
    case = await sql.case_of_screening(conn, source, screening_id)
    out = view_screening(stored, case, unmask)
    history = await sql.screening_history(conn, source, screening_id)
    out["history"] = [{**h, "result": _masked(h["result"], unmask)} for h in history]
    return out


# ---------------------------------------------------------------- follow-up
async def add_action(conn: AsyncConnection, case_id: str, action: str, on: date, note: str | None,
                     outcome: str | None, region_prefix: str = "", recorded_by: str = "",
                     today: date | None = None) -> tuple[int, Case]:
    case = await sql.get_case(conn, case_id, for_update=True)
    if case is None:
        raise fail("case_id", f"no follow-up case {case_id}", 404)
    _forbid_region(case.region_code, region_prefix, "case_id")
    new, changed = followup.add_action(case, action, on, today or today_cn(), note, outcome)
    if changed:
        await sql.save_case(conn, new, recorded_by)
        await outbox.append(conn, [publish.followup_changed(new)], SERVICE)
    return (201 if changed else 200), new


async def get_case(conn: AsyncConnection, case_id: str, region_prefix: str = "") -> Case:
    case = await sql.get_case(conn, case_id)
    if case is None:
        raise fail("case_id", f"no follow-up case {case_id}", 404)
    _forbid_region(case.region_code, region_prefix, "case_id")
    return case


# ---------------------------------------------------------------- registry events (screening's view of persons)
async def reconsider_high_risk(conn: AsyncConnection, pregnancy_id: str, mother_id: str,
                               today: date | None = None) -> None:
    """高危孕产妇专案管理: the first orange/red/purple grade of a pregnancy opens its case; if corrections
    leave no such grade, the open case is closed (kept) with the reason."""
    spec = RULES.current.high_risk_case
    visits = await sql.graded_visits(conn, pregnancy_id)
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
        elif etype == read.ENCOUNTER_RECORDED and msg.pregnancy_id:
            on = date.fromisoformat(msg.occurred_on)
            kind = msg.WhichOneof("detail")
            if msg.type == "delivery":
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

