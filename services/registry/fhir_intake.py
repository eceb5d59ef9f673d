"""HL7 FHIR R4 intake (`POST /fhir/r4`): a transaction Bundle recorded through the registry's own use cases, in one
unit of work — persons, then pregnancies (建册), then the pregnancies' encounters (a delivery creates its
children), then the children's encounters — so a FHIR HIS and a REST HIS are validated, deduplicated and counted
alike. A transaction is all or nothing (any refused entry: nothing is written, the errors name `entry[i]`); a
batch records what it can and answers each entry. Identifiers are the records' source ids, so posting the same
Bundle again changes nothing."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kit.db import Database
from kit.records import DomainError, pydantic_errors
from kit.scope import Scope, UnitOfWork
from pydantic import ValidationError

from registry import service
from registry.api.schemas import PersonIn
from registry.domain import fhir

STATUS = {200: "200 OK", 201: "201 Created"}
Errors = list[dict[str, Any]]


@dataclass
class Outcome:
    """Per entry index: (status, location) when recorded, or its errors; the person ids of the Patients; the
    babies of each delivery recorded (by the delivery's url) with their child ids."""

    done: dict[int, tuple[int, str]] = field(default_factory=dict)
    refused: dict[int, Errors] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    babies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def refuse(self, e: fhir.Entry, errors: Errors) -> None:
        self.refused[e.index] = [{**x, "field": f"{e.at}.{x['field']}" if x.get("field") else e.at} for x in errors]


async def intake(db: Database, scope: Scope, body: Any) -> dict[str, Any]:
    """The transaction-response (or batch-response) Bundle: per entry its status and where it was recorded."""
    plan = fhir.plan(fhir.parse(body))
    out = Outcome(ids=dict(plan.known))
    async with UnitOfWork(db, scope) as uow:
        await _persons(uow, plan, out)
        await _pregnancies(uow, plan, out)
        await uow.flush()   # the pregnancies' events before their encounters' (written by the encounter store)
        await _encounters(uow, [(e, b) for e, b, subject in plan.encounters if not subject], out)
        for url, (delivery, k) in plan.newborns.items():
            babies = out.babies.get(delivery, [])
            if k < len(babies) and babies[k].get("child_id"):
                out.ids[url] = str(babies[k]["child_id"])
        children = []
        for e, b, subject in plan.encounters:
            if subject and subject in out.ids:
                children.append((e, {**b, "subject_id": out.ids[subject]}))
            elif subject:
                out.refuse(e, [{"field": "subject", "reason": "the subject was not recorded"}])
        await _encounters(uow, children, out)
        if out.refused and plan.transaction:
            raise DomainError([x for errs in out.refused.values() for x in errs])
    return _response(plan, body, out)


async def _persons(uow: UnitOfWork, plan: fhir.Plan, out: Outcome) -> None:
    """Patients to register, as POST /v1/persons does: in the caller's region, deduplicated on the ID number."""
    for e, person in plan.persons:
        try:
            residence = person.get("residence_code")
            if residence is not None and not uow.scope.sees(str(residence)):
                raise DomainError([{"field": "address", "reason": "the residence is outside your region"}], 403)
            try:
                valid = PersonIn.model_validate(person)
            except ValidationError as err:
                raise pydantic_errors(err) from err
            pid, events = await service.create_person(uow.conn, valid, actor=uow.scope.actor)
            uow.emit(*events)
            out.ids[e.url] = pid
            out.done[e.index] = (201 if events else 200, f"Patient/{pid}")
        except DomainError as err:
            out.refuse(e, err.errors)


async def _pregnancies(uow: UnitOfWork, plan: fhir.Plan, out: Outcome) -> None:
    for e, preg, mother in plan.pregnancies:
        if mother not in out.ids:
            out.refuse(e, [{"field": "patient", "reason": "the mother was not recorded"}])
            continue
        try:
            status, p = await service.register_pregnancy_within(uow, {**preg, "mother": {"person_id": out.ids[mother]}})
            out.done[e.index] = (status, f"EpisodeOfCare/{p.source}/{p.pregnancy_id}")
        except DomainError as err:
            out.refuse(e, err.errors)


async def _encounters(uow: UnitOfWork, items: list[tuple[fhir.Entry, dict[str, Any]]], out: Outcome) -> None:
    if not items:
        return
    answers = await service.post_encounters(uow.conn, [b for _, b in items], uow.today(), uow.scope.sees)
    for (e, _), (status, rec) in zip(items, answers, strict=True):
        if status >= 300:
            out.refuse(e, rec["errors"])
            continue
        out.done[e.index] = (status, f"Encounter/{rec['source']}/{rec['encounter_id']}")
        if rec.get("type") == "delivery":
            out.babies[e.url] = list(rec.get("babies", []))


def _response(plan: fhir.Plan, body: dict[str, Any], out: Outcome) -> dict[str, Any]:
    urls = [en.get("fullUrl", "") for en in body.get("entry") or []]
    encounter_index = {e.url: e.index for e, _, _ in plan.encounters}
    entries = []
    for i, url in enumerate(urls):
        at = encounter_index[plan.folded[i]] if i in plan.folded else i   # observations: with their encounter
        done: tuple[int, str] | None = out.done.get(at)
        if url in plan.newborns:   # a live-born child is a person; a stillbirth is recorded with its delivery
            delivery = encounter_index[plan.newborns[url][0]]
            done = (201, f"Patient/{out.ids[url]}") if url in out.ids else out.done.get(delivery)
            at = delivery
        response: dict[str, Any]
        if done is not None:
            response = {"status": STATUS.get(done[0], str(done[0])), "location": done[1]}
        else:
            errors = out.refused.get(at) or [{"field": f"entry[{i}]", "reason": "not recorded"}]
            response = {"status": "422 Unprocessable Entity", "outcome": _outcome(errors)}
        entries.append({"response": response})
    kind = "transaction-response" if plan.transaction else "batch-response"
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def _outcome(errors: Errors) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "invalid", "diagnostics": e.get("reason", ""),
                       "expression": [e.get("field", "")]} for e in errors]}
