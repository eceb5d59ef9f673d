"""Screening endpoints: results (+ batch, void), follow-up cases and their actions. Routers parse, authorise and
call one use case with the caller's scope; errors are raised and turned into problem+json once, in kit.errors."""
from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.openapi.models import Example
from fastapi.responses import ORJSONResponse
from kit.auth import Principal, require
from kit.clock import today_cn
from kit.db import Database
from kit.errors import invalid, invalid_many
from kit.scope import Scope
from pydantic import BaseModel, ConfigDict, Field

from screening import metrics, service
from screening.domain.followup import ACTIONS
from screening.domain.model import TYPES

router = APIRouter(prefix="/v1", tags=["screening"])
BATCH_MAX = 1000
CASE_TYPES = (*TYPES, "pregnancy_high_risk")


def _db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


class VoidIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["contacted", "diagnosed", "treated", "referred", "closed", "lost"] = Field(
        description=f"one of {', '.join(ACTIONS)}; closed and lost end the case")
    on: date
    note: str | None = Field(None, max_length=2000)
    outcome: str | None = Field(None, min_length=1, max_length=200)


EXAMPLES: dict[str, Example] = {
    "prenatal_serum": {"summary": "serum screening of a pregnancy (产前筛查)", "value": {
        "screening_id": "PS-2026-000123", "source": "county-mch-his", "type": "prenatal_serum",
        "subject_id": "P-320582-000456", "performed_on": "2026-05-02", "institution_code": "H320582001",
        "t21_risk": "1/270", "t18_risk": "1/8000", "ntd_risk": "low"}},
    "newborn_hearing": {"summary": "newborn hearing screen of a child (听力筛查)", "value": {
        "screening_id": "NH-2026-000789", "source": "county-mch-his", "type": "newborn_hearing",
        "subject_id": "8f0c3c8e-5f39-4a57-9d4e-3f1f0c2b9a11", "performed_on": "2026-10-03",
        "institution_code": "H320582001", "round": "initial", "result": "refer"}},
    "premarital_exam": {"summary": "premarital exam of a person with her partner (婚检)", "value": {
        "screening_id": "PM-2026-000042", "source": "county-mch-his", "type": "premarital_exam",
        "subject_id": "0b6f8d2c-1d1e-4a43-8f2b-6f0a9d1c2e33", "partner_id": "2d7e4b90-6c1a-4f0e-9b3d-8a5c7e1f0d22",
        "performed_on": "2026-03-10", "institution_code": "H320582001",
        "findings": [{"code": "congenital_heart_disease", "affects_marriage": True}],
        "hiv": "negative", "syphilis": "negative", "hbsag": "not_done"}},
}


@router.get("/rules", summary="The classification rule sets (cut-offs, follow-up due dates) and their versions")
async def get_rules(p: Principal = Depends(require("screening:read"))) -> dict[str, Any]:
    """The rule sets screening results are classified by (cut-offs, follow-up due dates), each with its version: a
    result records the version it was classified under."""
    return {"current": service.RULES.current.version, "sets": [
        {"version": s.version, "effective_from": s.effective_from.isoformat(), "types": s.types,
         "otherwise": s.otherwise, "pregnancy_high_risk": {"grades": sorted(s.high_risk_case.grades),
                                                           "due_days": s.high_risk_case.due_days}}
        for s in service.RULES.sets]}


@router.post("/screenings", summary="Post a screening result (idempotent on source + screening_id)",
             status_code=201,
             description="The common fields (`screening_id`, `source`, `version?`, `type`, `subject_id`, "
             "`partner_id?`, `performed_on`, `institution_code`, `note?`) and the type's own fields (api.md). "
             "Answers with the `classification`, the `rule_version` used and the `followup` case, if any.")
async def post_screening(request: Request, body: dict[str, Any] = Body(..., openapi_examples=EXAMPLES),
                         p: Principal = Depends(require("screening:write"))) -> ORJSONResponse:
    """Post a screening result (newborn hearing, disease screening, two-cancer screening, HBIG, …) of a person known
    to the registry. Idempotent on source + screening_id; a correction carries the next `version`. A result
    needing follow-up opens (or updates) a follow-up case."""
    status, out = await service.record_screening(_db(request), Scope(p), body)
    if status == 201:
        metrics.RESULTS.labels(out["type"], out["classification"]).inc()
    return ORJSONResponse(out, status_code=status)


@router.post("/screenings:batch", summary="Post up to 1000 screening results; answered per item")
async def post_screenings_batch(request: Request, body: list[dict[str, Any]] = Body(...),
                                p: Principal = Depends(require("screening:write"))) -> dict[str, Any]:
    """Up to 1000 screening results, each answered on its own (`items`)."""
    if len(body) > BATCH_MAX:
        raise invalid_many([{"field": "body", "reason": f"at most {BATCH_MAX} items per batch"}], 413)
    results: list[dict[str, Any]] = []
    for i, (status, out) in enumerate(await service.record_screenings(_db(request), Scope(p), body)):
        if status < 300:
            results.append({"index": i, "status": status, "id": out["screening_id"],
                            "classification": out["classification"],
                            "case_id": out["followup"]["case_id"] if out["followup"] else None})
        else:
            results.append({"index": i, "status": status, "errors": out["errors"]})
    return {"items": results, "accepted": sum(1 for r in results if r["status"] < 300)}


@router.get("/screenings/{source}/{screening_id}", summary="A screening result with its history and case")
async def get_screening(source: str, screening_id: str, request: Request,
                        p: Principal = Depends(require("screening:read"))) -> dict[str, Any]:
    """A screening result of the caller's region with its versions and its follow-up case."""
    return await service.get_screening(_db(request), Scope(p), source, screening_id)


@router.delete("/screenings/{source}/{screening_id}", summary="Void a screening result (history kept)")
async def void_screening(source: str, screening_id: str, request: Request, body: VoidIn | None = None,
                         reason: str | None = None,
                         p: Principal = Depends(require("screening:write"))) -> dict[str, Any]:
    """Void a screening result (history kept): only the region of the institution that recorded it."""
    why = (body.reason if body else None) or reason
    if not why:
        raise invalid("reason", "a void needs a reason")
    return await service.void_screening(_db(request), Scope(p), source, screening_id, why)


@router.get("/followups", summary="Follow-up cases of a region (oldest due first; keyset-paged)")
async def list_followups(
    request: Request,
    region: str | None = Query(None, description="region code prefix (default: the client's region)"),
    status: Literal["open", "closed"] | None = None,
    overdue: bool | None = Query(None, description="true: open cases past their due date"),
    type: str | None = Query(None, description="screening type or pregnancy_high_risk"),
    limit: int = Query(200, ge=1, le=1000),
    after: str | None = Query(None, description="the `next` cursor of the previous page"),
    p: Principal = Depends(require("screening:read")),
) -> dict[str, Any]:
    """The follow-up cases of a region (the caller's or one below it), oldest due first, filtered by status, overdue
    and type; keyset-paged with `after`."""
    reg = p.region_prefix if region is None else region
    if reg and (len(reg) not in (2, 4, 6, 9, 12) or not reg.isdigit()):
        raise invalid("region", "must be a region code prefix of 2, 4, 6, 9 or 12 digits")
    p.require_region(reg)
    if type is not None and type not in CASE_TYPES:
        raise invalid("type", f"unknown case type; one of {', '.join(CASE_TYPES)}")
    cursor = None
    if after:
        try:
            d, cid = after.split("_", 1)
            cursor = (date.fromisoformat(d), str(uuid.UUID(cid)))
        except ValueError as e:
            raise invalid("after", "not a cursor this endpoint gave") from e
    scope = Scope(p)
    today = scope.today()
    cases = await service.list_cases(_db(request), scope, reg, status, overdue, type, limit + 1, cursor)
    page = cases[:limit]
    unmask = p.has("pii:read")
    nxt = f"{page[-1].due_on.isoformat()}_{page[-1].case_id}" if len(cases) > limit else None
    return {"region": reg, "today": today.isoformat(), "items": [service.view_case(c, today, unmask) for c in page],
            "next": nxt}


@router.get("/followups/{case_id}", summary="A follow-up case with its actions")
async def get_followup(case_id: str, request: Request,
                       p: Principal = Depends(require("screening:read"))) -> dict[str, Any]:
    """A follow-up case of the caller's region with every action taken on it."""
    case = await service.get_case(_db(request), Scope(p), case_id)
    return service.view_case(case, today_cn(), p.has("pii:read"))


@router.post("/followups/{case_id}/actions", summary="Record a follow-up action (contacted … closed / lost)",
             status_code=201)
async def post_action(case_id: str, body: ActionIn, request: Request,
                      p: Principal = Depends(require("screening:write"))) -> ORJSONResponse:
    """Record what was done on a follow-up case (contacted, referred, diagnosed, closed, lost to follow-up); the
    state machine refuses a step that does not follow (409)."""
    status, case = await service.add_action(_db(request), Scope(p), case_id, body.action, body.on, body.note,
                                            body.outcome)
    if status == 201:
        metrics.ACTIONS.labels(body.action).inc()
    return ORJSONResponse(service.view_case(case, today_cn()), status_code=status)
