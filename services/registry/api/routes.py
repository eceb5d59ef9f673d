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
from registry.api.schemas import InstitutionIn, PersonIn, ResidenceIn, VoidIn
from registry.domain.model import Institution

router = APIRouter(prefix="/v1", tags=["registry"])
BATCH_MAX = 1000


def _void_reason(body: VoidIn | None, reason: str | None) -> str:
    """A void's reason, from the body or the query string; a void without one is refused."""
    why = (body.reason if body else None) or reason
    if not why:
        raise invalid_many([{"field": "reason", "reason": "a void needs a reason"}])
    return why


def _db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


@router.put("/institutions/{institution_code}", summary="Register or update an institution (facility register)")
async def put_institution(institution_code: str, body: InstitutionIn, request: Request,
                          p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    inst = Institution(institution_code, body.name, body.region_code, body.kind, body.midwifery_licensed)
    version, changed = await service.put_institution(_db(request), Scope(p), inst)
    return ORJSONResponse({"institution_code": institution_code, **body.model_dump(), "version": version},
                          status_code=201 if changed and version == 1 else 200)


@router.get("/institutions/{institution_code}", summary="An institution")
async def get_institution(institution_code: str, request: Request,
                          p: Principal = Depends(require("registry:read"))) -> dict[str, Any]:
    return (await service.get_institution(_db(request), Scope(p), institution_code)).__dict__


@router.get("/institutions/{institution_code}/births", summary="Live births delivered at an institution, by the "
            "mother's name or ID number or the record number (住院号), and/or birth date (a certificate office's "
            "search; the mother's fields masked unless pii:read, each read audited)")
async def get_births_at(institution_code: str, request: Request, q: str | None = Query(None, max_length=100,
                        pattern=r"^[^\x00]*$"), birth_date: date | None = None,
                        p: Principal = Depends(require("registry:read"))) -> dict[str, Any]:
    return await service.births_at(_db(request), Scope(p), institution_code, q, birth_date)


@router.post("/pregnancies", summary="Register a pregnancy (建册)", status_code=201)
async def post_pregnancy(request: Request, body: dict[str, Any] = Body(...),
                         p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    status, out = await service.register_pregnancy(_db(request), Scope(p), body)
    return ORJSONResponse(out, status_code=status)


@router.post("/pregnancies:batch", summary="Register up to 1000 pregnancies (建册); answered per item")
async def post_pregnancies_batch(request: Request, body: list[Any] = Body(...),
                                 p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    _check_batch(body)
    return _batch_answer(await service.register_pregnancies(_db(request), Scope(p), body), "pregnancy_id")


@router.get("/pregnancies/{pregnancy_id}", summary="A pregnancy episode with its encounters (a county that cared for "
            "her but is not her county of residence sees its own encounters only)")
async def get_pregnancy(pregnancy_id: str, request: Request,
                        p: Principal = Depends(require("registry:read"))) -> dict[str, Any]:
    return await service.pregnancy_view(_db(request), Scope(p), pregnancy_id)


@router.post("/persons", summary="Register a person (dedup on the ID number 身份证号)", status_code=201)
async def post_person(body: PersonIn, request: Request,
                      p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    p.require_region(body.residence_code, "residence_code")
    pid, created = await service.register_person(_db(request), Scope(p), body)
    return ORJSONResponse({"person_id": pid, "created": created}, status_code=201 if created else 200)


@router.get("/persons/{person_id}", summary="A person: residence history, links, checks (personal fields masked "
            "unless pii:read; a county that cared for her but is not her county of residence sees its own "
            "encounters only)")
async def get_person(person_id: str, request: Request,
                     p: Principal = Depends(require("registry:read"))) -> dict[str, Any]:
    return await service.read_person(_db(request), Scope(p), person_id)


@router.post("/persons/{person_id}/residence", summary="A change of residence (kept as history)", status_code=201)
async def post_residence(person_id: str, body: ResidenceIn, request: Request,
                         p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    status, version = await service.add_residence(_db(request), Scope(p), person_id, body.since, body.region_code)
    return ORJSONResponse({"person_id": person_id, "version": version}, status_code=status)


@router.delete("/pregnancies/{pregnancy_id}", summary="Void a pregnancy registration (after its encounters)")
async def void_pregnancy(pregnancy_id: str, request: Request, body: VoidIn | None = None, reason: str | None = None,
                         p: Principal = Depends(require("registry:write"))) -> dict[str, Any]:
    why = _void_reason(body, reason)
    preg = await service.void_pregnancy(_db(request), Scope(p), pregnancy_id, why)
    return {"pregnancy_id": pregnancy_id, "version": preg.version, "status": "voided"}


@router.post("/encounters", summary="Post an encounter (idempotent on source + encounter_id)", status_code=201)
async def post_encounter(request: Request, body: dict[str, Any] = Body(...),
                         p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
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
    _check_batch(body)
    return _batch_answer(await service.post_encounter_batch(_db(request), Scope(p), body), "encounter_id")


@router.delete("/encounters/{source}/{encounter_id}", summary="Void an encounter (history kept)")
async def void_encounter(source: str, encounter_id: str, request: Request, body: VoidIn | None = None,
                         reason: str | None = None,
                         p: Principal = Depends(require("registry:write"))) -> dict[str, Any]:
    why = _void_reason(body, reason)
    return await service.void_encounter(_db(request), Scope(p), source, encounter_id, why)


@router.post("/marriage-registrations", summary="Post a marriage registration (结婚登记, civil affairs)",
             status_code=201)
async def post_marriage(request: Request, body: dict[str, Any] = Body(...),
                        p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    status, out = await service.register_marriage(_db(request), Scope(p), body)
    return ORJSONResponse(out, status_code=status)


@router.post("/marriage-registrations:batch", summary="Post up to 1000 marriage registrations; answered per item")
async def post_marriages_batch(request: Request, body: list[Any] = Body(...),
                               p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    _check_batch(body)
    return _batch_answer(await service.register_marriages(_db(request), Scope(p), body), "registration_id")


@router.delete("/marriage-registrations/{source}/{registration_id}", summary="Void a marriage registration")
async def void_marriage(source: str, registration_id: str, request: Request, body: VoidIn | None = None,
                        reason: str | None = None,
                        p: Principal = Depends(require("registry:write"))) -> dict[str, Any]:
    why = _void_reason(body, reason)
    return await service.void_marriage(_db(request), Scope(p), source, registration_id, why)
