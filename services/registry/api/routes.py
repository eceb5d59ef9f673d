"""Registry endpoints: parse, authorise (scopes from the token), call one use case with the caller's scope.

Errors are raised, not caught: kit.errors turns DomainError and Problem into problem+json once for all routes."""
from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import ORJSONResponse
from kit.auth import Principal, require
from kit.db import Database
from kit.errors import invalid_many
from kit.records import DomainError
from kit.scope import Scope

from registry import service
from registry.api.schemas import InstitutionIn, MergeIn, PersonIn, ResidenceIn, UnmergeIn, VoidIn
from registry.domain.model import Institution
from registry.domain.search import MAX_RESULTS, PersonSearch

router = APIRouter(prefix="/v1", tags=["registry"])
BATCH_MAX = 1000
#: the other success of a post that creates: it was there already (the same body again, a correction, a known person)
ALREADY: dict[int | str, dict[str, Any]] = {200: {"description": "already there: the same body again (nothing "
                                                                "changed), a correction with its version, or a known "
                                                                "person (nothing created)"}}


def _void_reason(body: VoidIn | None, reason: str | None) -> str:
    """A void's reason, from the body or the query string; a void without one is refused."""
    why = (body.reason if body else None) or reason
    if not why:
        raise invalid_many([{"field": "reason", "reason": "a void needs a reason"}])
    return why


def _db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


@router.put("/institutions/{institution_code}", summary="Register or update an institution (facility register)",
            responses={201: {"description": "registered (version 1)"}})
async def put_institution(institution_code: str, body: InstitutionIn, request: Request,
                          p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    """Register an institution (hospital, health centre, MCH centre) in the facility register or change it: a caller
    whose region covers its current and its new region. 201 when created, 200 when changed or unchanged (the
    version says which)."""
    inst = Institution(institution_code, body.name, body.region_code, body.kind, body.midwifery_licensed)
    version, changed = await service.put_institution(_db(request), Scope(p), inst)
    return ORJSONResponse({"institution_code": institution_code, **body.model_dump(), "version": version},
                          status_code=201 if changed and version == 1 else 200)


@router.get("/institutions/{institution_code}", summary="An institution")
async def get_institution(institution_code: str, request: Request,
                          p: Principal = Depends(require("registry:read"))) -> dict[str, Any]:
    """An institution of the caller's region (one elsewhere answers 404, as if it did not exist)."""
    return (await service.get_institution(_db(request), Scope(p), institution_code)).__dict__


@router.get("/institutions/{institution_code}/births", summary="Live births delivered at an institution, by the "
            "mother's name or ID number or the record number (住院号), and/or birth date (a certificate office's "
            "search; the mother's fields masked unless pii:read, each read audited)")
async def get_births_at(institution_code: str, request: Request, q: str | None = Query(None, max_length=100,
                        pattern=r"^[^\x00]*$"), birth_date: date | None = None,
                        p: Principal = Depends(require("registry:read"))) -> dict[str, Any]:
    """For the certificate office's worklist (待签发): `q` matches the mother's name, her ID number or the delivery's
    record number exactly (never a prefix: no listing of names), within the caller's county."""
    return await service.births_at(_db(request), Scope(p), institution_code, q, birth_date)


@router.post("/pregnancies", summary="Register a pregnancy (建册)", status_code=201,
             responses=ALREADY)
async def post_pregnancy(request: Request, body: dict[str, Any] = Body(...),
                         p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    """建册: register a pregnancy episode at an institution of the caller's region, for a mother posted inline
    (deduplicated on her identity document) or referenced by person id. Idempotent on pregnancy_id: the same body
    again answers 200; a changed body needs `version` (optimistic concurrency), else 409. The body is typed by
    `PregnancyIn`."""
    status, out = await service.register_pregnancy(_db(request), Scope(p), body)
    return ORJSONResponse(out, status_code=status)


@router.post("/pregnancies:batch", summary="Register up to 1000 pregnancies (建册); answered per item")
async def post_pregnancies_batch(request: Request, body: list[Any] = Body(...),
                                 p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    """Up to 1000 registrations in one request, each answered on its own (`items`: index, status, id or errors): a
    refused item changes nothing and does not affect the others."""
    _check_batch(body)
    return _batch_answer(await service.register_pregnancies(_db(request), Scope(p), body), "pregnancy_id")


@router.get("/pregnancies/{pregnancy_id}", summary="A pregnancy episode with its encounters (a county that cared for "
            "her but is not her county of residence sees its own encounters only)")
async def get_pregnancy(pregnancy_id: str, request: Request,
                        p: Principal = Depends(require("registry:read"))) -> dict[str, Any]:
    """The episode with its encounters and derived facts (gestation at booking, antenatal checks, risk grades,
    delivery, births) for the county of residence; a county that only recorded care on it sees its own encounters.
    Audited."""
    return await service.pregnancy_view(_db(request), Scope(p), pregnancy_id)


@router.post("/persons", summary="Register a person (dedup on her identity document 证件)", status_code=201,
             responses=ALREADY)
async def post_person(body: PersonIn, request: Request,
                      p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    """Register a person with a resident identity number (`id_number`), another identity document (`document_type` +
    `document_number`: passport, 港澳台居民居住证, 来往内地通行证, 外国人永久居留身份证, birth certificate serial)
    or none yet. Each document is validated by its rules (a bad one is a 422 naming the field); a document already
    registered is the same person (200, her person_id)."""
    p.require_region(body.residence_code, "residence_code")
    pid, created = await service.register_person(_db(request), Scope(p), body)
    return ORJSONResponse({"person_id": pid, "created": created}, status_code=201 if created else 200)


@router.get("/persons", summary="Search persons (人员查询) in the caller's region",
            responses={404: {"description": "the mother named by `mother` does not exist, or not for the caller"}},
            description="Persons whose current residence lies in the caller's region matching every criterion given: "
            "`name` in characters (the same characters or the same pinyin: 王晓丽 finds 王小丽) or in Latin "
            "letters, `pinyin` as a prefix (wang finds every Wang), `document` (a number of any kind of identity "
            "document), `birth_date`, `phone`, `mother` (her children: the mother's person id or document "
            "number; a mother outside the caller's sight answers 404). Personal fields masked unless pii:read; the "
            "search and every person returned are audited.")
async def search_persons(request: Request, name: str | None = Query(None, max_length=100),
                         pinyin: str | None = Query(None, max_length=100),
                         document: str | None = Query(None, max_length=32),
                         birth_date: date | None = None, phone: str | None = Query(None, max_length=32),
                         mother: str | None = Query(None, max_length=64),
                         limit: int = Query(20, ge=1, le=MAX_RESULTS),
                         p: Principal = Depends(require("registry:read"))) -> dict[str, Any]:
    q = PersonSearch(name, pinyin, document, birth_date, phone, mother, limit)
    return await service.search_persons(_db(request), Scope(p), q)


@router.get("/persons/{person_id}", summary="A person: residence history, links, checks (personal fields masked "
            "unless pii:read; a county that cared for her but is not her county of residence sees its own "
            "encounters only)")
async def get_person(person_id: str, request: Request,
                     p: Principal = Depends(require("registry:read"))) -> dict[str, Any]:
    """A person in full (residence history, mother and children, checks with growth z-scores, encounters) for her
    county of residence, personal fields masked unless pii:read; a county that only cared for her sees its own
    encounters. Every read is audited."""
    return await service.read_person(_db(request), Scope(p), person_id)


@router.post("/persons/{person_id}/residence", summary="A change of residence (kept as history)", status_code=201,
             responses=ALREADY)
async def post_residence(person_id: str, body: ResidenceIn, request: Request,
                         p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    """A move (现住址变更): a new span of the residence history from `since`, never an overwrite. The caller must see
    her current county and the new one."""
    status, version = await service.add_residence(_db(request), Scope(p), person_id, body.since, body.region_code)
    return ORJSONResponse({"person_id": person_id, "version": version}, status_code=status)


@router.post("/persons/{person_id}/merge", summary="Merge a duplicate record into this person (合并重复档案): "
             "the duplicate's pregnancies, encounters, marriages, child links, screenings and certificates are "
             "read as this person's; both records must live in the caller's region", status_code=201)
async def post_merge(person_id: str, body: MergeIn, request: Request,
                     p: Principal = Depends(require("registry:merge"))) -> ORJSONResponse:
    """Nothing recorded under the duplicate is rewritten: the merge is a row with who, when and why, and an event
    every service follows (screening cases, certificates, the indicators retract and re-add the contributions)."""
    m = await service.merge(_db(request), Scope(p), person_id, body.duplicate, body.reason)
    return ORJSONResponse(m, status_code=201)


@router.post("/persons/{person_id}/unmerge", summary="Undo the merge of this duplicate record (撤销合并): every "
             "record is its own person's again, exactly as before the merge")
async def post_unmerge(person_id: str, body: UnmergeIn, request: Request,
                       p: Principal = Depends(require("registry:merge"))) -> dict[str, Any]:
    """Version 2 of the merge event, `unmerged`: every service restores what it counted before the merge."""
    return await service.unmerge(_db(request), Scope(p), person_id, body.reason)


@router.get("/persons/{person_id}/merges", summary="The merges a record took part in (who, when, why)")
async def get_merges(person_id: str, request: Request,
                     p: Principal = Depends(require("registry:merge"))) -> dict[str, Any]:
    """The merge history of a record of the caller's region: survivor, duplicate, reasons, who and when."""
    return {"person_id": person_id, "merges": await service.merge_history(_db(request), Scope(p), person_id)}


@router.delete("/pregnancies/{pregnancy_id}", summary="Void a pregnancy registration (after its encounters)")
async def void_pregnancy(pregnancy_id: str, request: Request, body: VoidIn | None = None, reason: str | None = None,
                         p: Principal = Depends(require("registry:write"))) -> dict[str, Any]:
    """Void a registration made in error (the reason in the body or `?reason=`): only the county of residence or of
    the booking institution, and only once its encounters are voided (else 409)."""
    why = _void_reason(body, reason)
    preg = await service.void_pregnancy(_db(request), Scope(p), pregnancy_id, why)
    return {"pregnancy_id": pregnancy_id, "version": preg.version, "status": "voided"}


@router.post("/encounters", summary="Post an encounter (idempotent on source + encounter_id)", status_code=201,
             responses=ALREADY)
async def post_encounter(request: Request, body: dict[str, Any] = Body(...),
                         p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    """Post one encounter of any type (the body is one of the `Encounter` schemas, told apart by `type`). Idempotent
    on source + encounter_id: the same body again answers 200; a correction carries the next `version`. Validated
    against the stored episode (dates, gestation, one delivery per pregnancy); a refusal names the field."""
    status, out = await _encounter_posts(request).post(Scope(p), body)
    if status >= 300:
        raise DomainError(out["errors"], status)
    return ORJSONResponse(out, status_code=status)


def _encounter_posts(request: Request) -> service.EncounterPosts:
    """The app's group commit of single encounter posts (one per process: concurrent posts share units of work)."""
    state = request.app.state
    if getattr(state, "encounter_posts", None) is None:
        state.encounter_posts = service.EncounterPosts(state.db)
    return state.encounter_posts  # type: ignore[no-any-return]


def _batch_answer(answers: list[service.ItemAnswer], id_field: str) -> ORJSONResponse:
    items = []
    for i, (status, out) in enumerate(answers):
        item: dict[str, Any] = {"index": i, "status": status}
        if status < 300:
            item["id"] = out[id_field]
            if out.get("children"):
                item["children"] = out["children"]
        else:
            item["errors"] = out["errors"]
        items.append(item)
    return ORJSONResponse({"items": items, "accepted": sum(1 for s, _ in answers if s < 300)})


def _check_batch(body: list[Any]) -> None:
    if len(body) > BATCH_MAX:
        raise invalid_many([{"field": "body", "reason": f"at most {BATCH_MAX} items per batch"}], 413)


@router.post("/encounters:batch", summary="Post up to 1000 encounters in one transaction; answered per item")
async def post_encounters_batch(request: Request, body: list[Any] = Body(...),
                                p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    """Up to 1000 encounters in one transaction, each answered on its own (`items`: index, status, id or errors);
    later items see earlier accepted ones."""
    _check_batch(body)
    return _batch_answer(await service.post_encounter_batch(_db(request), Scope(p), body), "encounter_id")


@router.delete("/encounters/{source}/{encounter_id}", summary="Void an encounter (history kept)")
async def void_encounter(source: str, encounter_id: str, request: Request, body: VoidIn | None = None,
                         reason: str | None = None,
                         p: Principal = Depends(require("registry:write"))) -> dict[str, Any]:
    """Void an encounter (a newer version with the reason; history kept): only the county of the institution that
    recorded it. Indicators retract what it counted."""
    why = _void_reason(body, reason)
    return await service.void_encounter(_db(request), Scope(p), source, encounter_id, why)


@router.post("/marriage-registrations", summary="Post a marriage registration (结婚登记, civil affairs)",
             status_code=201, responses=ALREADY)
async def post_marriage(request: Request, body: dict[str, Any] = Body(...),
                        p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    """结婚登记 posted by a civil-affairs office of the caller's region; the two persons inline or by person id,
    living anywhere. Idempotent on source + registration_id; corrections carry `version`."""
    status, out = await service.register_marriage(_db(request), Scope(p), body)
    return ORJSONResponse(out, status_code=status)


@router.post("/marriage-registrations:batch", summary="Post up to 1000 marriage registrations; answered per item")
async def post_marriages_batch(request: Request, body: list[Any] = Body(...),
                               p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    """Up to 1000 marriage registrations, each answered on its own."""
    _check_batch(body)
    return _batch_answer(await service.register_marriages(_db(request), Scope(p), body), "registration_id")


@router.delete("/marriage-registrations/{source}/{registration_id}", summary="Void a marriage registration")
async def void_marriage(source: str, registration_id: str, request: Request, body: VoidIn | None = None,
                        reason: str | None = None,
                        p: Principal = Depends(require("registry:write"))) -> dict[str, Any]:
    """Void a marriage registration of the caller's region (the reason in the body or `?reason=`)."""
    why = _void_reason(body, reason)
    return await service.void_marriage(_db(request), Scope(p), source, registration_id, why)
