"""Filing endpoints (上报 → 审核 → 锁定): parse, authorise (scope here, region in the use case), call one use case."""
from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from kit import logs
from kit.auth import Principal, require
from kit.errors import Problem
from kit.records import DomainError
from pydantic import BaseModel, Field

from indicators.service import Filings, Target

router = APIRouter(prefix="/v1/reports", tags=["filings"])

REPORT = Path(..., max_length=32, description="the report (表): `annual` (妇幼卫生年报: township → county → city), "
                                               "`monthly` (机构月报: institution → township → county)")
PERIOD = Path(..., max_length=16, description="a period key: 2026, 2026SY, 2026Q3, 2026-01..09, 2026SY..03, ...")
UNIT = Path(..., max_length=70, description="the reporting unit: a region code at an approval level "
                                            "(township 9, county 6, city 4 digits) or inst:<institution code>")


class Unapprove(BaseModel):
    reason: str = Field("", max_length=500, description="退回原因: why the filing is unlocked (required)")


def _filings(request: Request) -> Filings:
    f: Filings = request.app.state.filings
    return f


def _request_id() -> str:
    """The request id the audit step records (the same as in the logs and the response header)."""
    return logs.request_id.get() or ""


async def run(step: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """The domain's rule errors (field + reason) as problem+json, in one place for the use cases' endpoints."""
    try:
        return await step
    except DomainError as e:
        raise Problem(e.status, "Invalid request" if e.status == 422 else "Conflict" if e.status == 409
                      else "Not found", str(e), kind="validation" if e.status == 422 else None,
                      errors=e.errors) from e


@router.get("/{report}/filings", summary="Filings of a report and period under a region, with their state")
async def listing(request: Request, report: str = REPORT,
                  period: str = Query(..., max_length=16), region: str | None = Query(None, max_length=12),
                  p: Principal = Depends(require("indicators:read"))) -> dict[str, Any]:
    """The filings of a report and period for the units under a region of the caller's, with their state (open,
    submitted, approved)."""
    return await run(_filings(request).listing(report, period, p.region_prefix if region is None else region, p))


@router.get("/{report}/completeness", summary="上报完整率 / 及时率: expected, submitted and on time, per unit")
async def completeness(request: Request, report: str = REPORT, period: str = Query(..., max_length=16),
                       region: str | None = Query(None, max_length=12),
                       p: Principal = Depends(require("indicators:read"))) -> dict[str, Any]:
    """上报完整率 / 及时率: for each unit under the region, whether the report was expected, submitted and submitted
    on time."""
    return await run(_filings(request).completeness(report, period, p.region_prefix if region is None else region,
                                                    p))


@router.get("/{report}/filings/{period}/{unit}", summary="A filing: state, filed vs current figures, adjustments")
async def view(request: Request, report: str = REPORT, period: str = PERIOD, unit: str = UNIT,
               p: Principal = Depends(require("indicators:read"))) -> dict[str, Any]:
    """One filing: its state, the figures as filed and as they are now (late corrections show as differences), the
    adjustments and the audit trail."""
    return await run(_filings(request).view(Target(report, period, unit), p))


@router.post("/{report}/filings/{period}/{unit}/submit", summary="上报: file the unit's figures (a snapshot)")
async def submit(request: Request, report: str = REPORT, period: str = PERIOD, unit: str = UNIT,
                 p: Principal = Depends(require("reports:submit", person=True))) -> dict[str, Any]:
    """上报: a person of the unit files its figures: a snapshot of the live values is kept as filed."""
    return await run(_filings(request).submit(Target(report, period, unit), p, _request_id()))


@router.post("/{report}/filings/{period}/{unit}/approve",
             summary="审核通过: approve and lock a submitted filing (every unit below approved first)")
async def approve(request: Request, report: str = REPORT, period: str = PERIOD, unit: str = UNIT,
                  p: Principal = Depends(require("reports:approve", person=True))) -> dict[str, Any]:
    """审核通过: the level above approves a submitted filing and locks it (every unit below approved first)."""
    return await run(_filings(request).approve(Target(report, period, unit), p, _request_id()))


@router.post("/{report}/filings/{period}/{unit}/unapprove", summary="退回: unlock a filing, with a reason")
async def unapprove(request: Request, body: Unapprove, report: str = REPORT, period: str = PERIOD, unit: str = UNIT,
                    p: Principal = Depends(require("reports:approve", person=True))) -> dict[str, Any]:
    """退回: the approver unlocks a filing with a reason, so that it can be corrected and filed again."""
    return await run(_filings(request).unapprove(Target(report, period, unit), p, body.reason,
                                                  _request_id()))
