"""Quality endpoints: the rules, the queries (list, read, answer, accept), the scores and the reconciliation.
Routers parse, authorise and call one use case with the caller's scope; errors become problem+json in kit.errors."""
from __future__ import annotations

import re
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from kit.auth import Principal, require
from kit.db import Database
from kit.errors import invalid
from kit.scope import Scope
from pydantic import BaseModel, ConfigDict, Field

from quality import service
from quality.domain.queries import STATUSES

router = APIRouter(prefix="/v1/quality", tags=["quality"])
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def _region(p: Principal, region: str | None) -> str:
    reg = p.region_prefix if region is None else region
    if reg and (len(reg) not in (2, 4, 6, 9, 12) or not reg.isdigit()):
        raise invalid("region", "must be a region code prefix of 2, 4, 6, 9 or 12 digits")
    p.require_region(reg)
    return reg


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field(min_length=1, max_length=2000, description="why the record stands as recorded (核实说明)")


class AcceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(None, max_length=2000)


@router.get("/rules", summary="The quality rules in force (rules as data) and their version")
async def get_rules(p: Principal = Depends(require("quality:read"))) -> dict[str, Any]:
    return service.rule_view()


@router.get("/queries", summary="Queries addressed to the caller's institution, or to the institutions of the "
            "caller's region (keyset-paged)")
async def list_queries(
    request: Request,
    region: str | None = Query(None, description="region code prefix (default: the caller's region)"),
    institution: str | None = Query(None, max_length=40),
    status: list[Literal["open", "answered", "accepted", "corrected", "withdrawn"]] | None = Query(
        None, description="default: open and answered"),
    escalated: bool = Query(False, description="only open queries past their due date (escalated to the bureau)"),
    limit: int = Query(200, ge=1, le=1000),
    after: str | None = Query(None, max_length=300, description="the `next` cursor of the previous page"),
    p: Principal = Depends(require("quality:read")),
) -> dict[str, Any]:
    reg = _region(p, region)
    statuses = list(status) if status else ["open", "answered"]
    scope = Scope(p)
    items = await service.list_queries(_db(request), scope, reg, institution, statuses, escalated, limit + 1, after)
    page = items[:limit]
    return {"region": reg, "today": scope.today().isoformat(), "items": page,
            "next": page[-1]["key"] if len(items) > limit else None}


@router.get("/queries/{query_id}", summary="One query with its history")
async def get_query(query_id: str, request: Request,
                    p: Principal = Depends(require("quality:read"))) -> dict[str, Any]:
    return await service.get_query(_db(request), Scope(p), query_id)


@router.post("/queries/{query_id}/answer", summary="Confirm the record as recorded, with a comment (核实无误)")
async def answer_query(query_id: str, body: AnswerIn, request: Request,
                       p: Principal = Depends(require("quality:answer"))) -> dict[str, Any]:
    return await service.answer_query(_db(request), Scope(p), query_id, body.comment)


@router.post("/queries/{query_id}/accept", summary="The bureau accepts the record as it is")
async def accept_query(query_id: str, request: Request, body: AcceptIn | None = None,
                       p: Principal = Depends(require("quality:accept"))) -> dict[str, Any]:
    return await service.accept_query(_db(request), Scope(p), query_id, body.comment if body else None)


@router.get("/scores", summary="Timeliness, completeness and validity per institution for one month")
async def get_scores(request: Request, region: str | None = Query(None),
                     month: str | None = Query(None, description="YYYY-MM (default: last month)"),
                     p: Principal = Depends(require("quality:read"))) -> dict[str, Any]:
    reg = _region(p, region)
    scope = Scope(p)
    m = month or service.default_month(scope.today())
    if not MONTH.match(m):
        raise invalid("month", "must be YYYY-MM")
    return {"region": reg, "month": m, "items": await service.scores(_db(request), scope, reg, m)}


@router.get("/reconciliation", summary="Every unit recomputed from its records against the live queries")
async def get_reconciliation(request: Request, p: Principal = Depends(require("quality:admin"))) -> dict[str, Any]:
    scope = Scope(p)
    async with _db(request).connect() as conn:
        return await service.reconciliation(conn, scope.today())


__all__ = ["STATUSES"]
