"""Targets (任务数 / 目标值): set, list (with the decomposition to the regions below), delete, decompose."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from kit.auth import Principal, require
from pydantic import BaseModel, Field

from indicators.api.filings import run
from indicators.service import Targets

router = APIRouter(prefix="/v1/targets", tags=["targets"])


class TargetIn(BaseModel):
    code: str = Field(max_length=64, description="an indicator: a count (任务数, e.g. premarital_exam_couples) or a "
                                                 "rate (目标值, e.g. systematic_management_rate)")
    region: str = Field(max_length=12, description="region code prefix (2/4/6/9/12 digits)")
    year: int = Field(ge=2000, le=2100)
    target: float = Field(gt=0, le=1e9, description="a count task, or a rate in the indicator's unit (85 = 85 %)")
    comparison: Literal[">=", "<="] | None = Field(
        None, description="rates: >= at least (default), <= at most (剖宫产率 ≤ 40 %); counts: >=")


class DecomposeIn(BaseModel):
    code: str = Field(max_length=64)
    region: str = Field(max_length=12, description="the region whose target is split among the regions below it")
    year: int = Field(ge=2000, le=2100)
    basis_year: int | None = Field(None, ge=2000, le=2100,
                                   description="counts are split in proportion to this year's achieved counts "
                                               "(default: the year before); rates are copied")


def _targets(request: Request) -> Targets:
    t: Targets = request.app.state.targets
    return t


@router.put("", summary="Set a region's target of a year: a count (任务数) or a rate (目标值)")
async def put(request: Request, body: TargetIn, p: Principal = Depends(require("indicators:admin"))) -> dict[str, Any]:
    """Set a target of a region for a year: a count to reach (任务数) or a rate (目标值) for one indicator."""
    return await run(_targets(request).put(body.code, body.region, body.year, body.target, body.comparison, p))


@router.get("", summary="The targets of a region and the regions below it (任务分解), with what is decomposed")
async def listing(request: Request, year: int = Query(..., ge=2000, le=2100),
                  region: str | None = Query(None, max_length=12), code: str | None = Query(None, max_length=64),
                  p: Principal = Depends(require("indicators:read"))) -> dict[str, Any]:
    """The targets of a region and of the regions below it for a year (任务分解), with how much of each is
    decomposed."""
    return await run(_targets(request).listing(p.region_prefix if region is None else region, year, code, p))


@router.delete("/{year}/{region}/{code}", summary="Delete a target")
async def delete(request: Request, year: int = Path(..., ge=2000, le=2100), region: str = Path(..., max_length=12),
                 code: str = Path(..., max_length=64),
                 p: Principal = Depends(require("indicators:admin"))) -> dict[str, Any]:
    """Delete a target of the caller's region."""
    return await run(_targets(request).delete(code, region, year, p))


@router.post("/decompose", summary="任务分解: split a region's target among the regions one level below")
async def decompose(request: Request, body: DecomposeIn,
                    p: Principal = Depends(require("indicators:admin"))) -> dict[str, Any]:
    """任务分解: split a region's target among the regions one level below it: counts in proportion to their achieved
    counts of `basis_year` (default the year before), rates copied."""
    return await run(_targets(request).decompose(body.code, body.region, body.year, body.basis_year, p))
