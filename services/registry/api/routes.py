"""Registry endpoints."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import ORJSONResponse
from kit.auth import Principal, require
from kit.errors import Problem, invalid_many, not_found

from registry import service
from registry.api.schemas import InstitutionIn, VoidIn
from registry.domain.model import DomainError, Institution
from registry.store import sql

router = APIRouter(prefix="/v1", tags=["registry"])
BATCH_MAX = 1000


def _problem(e: DomainError) -> Problem:
    return invalid_many(e.errors, e.status) if e.status == 422 else Problem(
        e.status, "Conflict" if e.status == 409 else "Not found" if e.status == 404 else "Invalid request",
        str(e), kind="conflict" if e.status == 409 else "validation", errors=e.errors)


def _today() -> Any:
    return datetime.now(UTC).date()


@router.put("/institutions/{institution_code}", summary="Register or update an institution (facility register)")
async def put_institution(institution_code: str, body: InstitutionIn, request: Request,
                          p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    p.require_region(body.region_code, "region_code")
    inst = Institution(institution_code, body.name, body.region_code, body.kind, body.midwifery_licensed)
    try:
        async with request.app.state.db.begin() as conn:
            version, changed = await service.put_institution(conn, inst)
    except DomainError as e:
        raise _problem(e) from e
    return ORJSONResponse({"institution_code": institution_code, **body.model_dump(), "version": version},
                          status_code=201 if changed and version == 1 else 200)


@router.get("/institutions/{institution_code}", summary="An institution")
async def get_institution(institution_code: str, request: Request,
                          p: Principal = Depends(require("registry:read"))) -> dict[str, Any]:
    async with request.app.state.db.connect() as conn:
        inst = await sql.get_institution(conn, institution_code)
    if inst is None:
        raise not_found("institution", institution_code)
    return inst.__dict__


@router.post("/pregnancies", summary="Register a pregnancy (建册)", status_code=201)
async def post_pregnancy(request: Request, body: dict[str, Any] = Body(...),
                         p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    try:
        async with request.app.state.db.begin() as conn:
            status, preg = await service.register_pregnancy(conn, body, _today())
            p.require_region(preg.residence_code, "residence_code")
    except DomainError as e:
        raise _problem(e) from e
    return ORJSONResponse({**preg.__dict__, "lmp_date": str(preg.lmp_date),
                           "registered_on": str(preg.registered_on),
                           "delivered_on": str(preg.delivered_on) if preg.delivered_on else None},
                          status_code=status)


@router.get("/pregnancies/{pregnancy_id}", summary="A pregnancy episode with its encounters")
async def get_pregnancy(pregnancy_id: str, request: Request,
                        p: Principal = Depends(require("registry:read"))) -> dict[str, Any]:
    async with request.app.state.db.connect() as conn:
        found = await sql.get_pregnancy(conn, pregnancy_id)
        if found is None:
            raise not_found("pregnancy", pregnancy_id)
        preg = found[0]
        p.require_region(preg.residence_code, "pregnancy")
        encs = await sql.encounters_of_pregnancy(conn, pregnancy_id)
    return {**preg.__dict__, "lmp_date": str(preg.lmp_date), "registered_on": str(preg.registered_on),
            "delivered_on": str(preg.delivered_on) if preg.delivered_on else None,
            "encounters": [service.view_encounter(e) for e in encs]}


@router.post("/encounters", summary="Post an encounter (idempotent on source + encounter_id)", status_code=201)
async def post_encounter(request: Request, body: dict[str, Any] = Body(...),
                         p: Principal = Depends(require("registry:write"))) -> ORJSONResponse:
    try:
        async with request.app.state.db.begin() as conn:
            status, out = await service.post_encounter(conn, body)
    except DomainError as e:
        raise _problem(e) from e
    return ORJSONResponse(out, status_code=status)


@router.post("/encounters:batch", summary="Post up to 1000 encounters; answered per item")
async def post_encounters_batch(request: Request, body: list[dict[str, Any]] = Body(...),
                                p: Principal = Depends(require("registry:write"))) -> dict[str, Any]:
    if len(body) > BATCH_MAX:
        raise invalid_many([{"field": "body", "reason": f"at most {BATCH_MAX} items per batch"}], 413)
    results = []
    async with request.app.state.db.begin() as conn:
        for i, item in enumerate(body):
            try:
                async with conn.begin_nested():
                    status, out = await service.post_encounter(conn, item)
                results.append({"index": i, "status": status, "id": out["encounter_id"]})
            except DomainError as e:
                results.append({"index": i, "status": e.status, "errors": e.errors})
    return {"items": results, "accepted": sum(1 for r in results if r["status"] < 300)}


@router.delete("/encounters/{source}/{encounter_id}", summary="Void an encounter (history kept)")
async def void_encounter(source: str, encounter_id: str, request: Request, body: VoidIn | None = None,
                         reason: str | None = None,
                         p: Principal = Depends(require("registry:write"))) -> dict[str, Any]:
    why = (body.reason if body else None) or reason
    if not why:
        raise invalid_many([{"field": "reason", "reason": "a void needs a reason"}])
    try:
        async with request.app.state.db.begin() as conn:
            return await service.void_encounter(conn, source, encounter_id, why)
    except DomainError as e:
        raise _problem(e) from e
