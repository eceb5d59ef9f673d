"""Population denominators (人口基数): post, list, delete a region's figures of a year."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from kit.auth import Principal, require
from pydantic import BaseModel, ConfigDict, Field

from indicators.api.filings import run
from indicators.service import Populations

router = APIRouter(prefix="/v1/populations", tags=["populations"])


class PopulationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    region: str = Field(max_length=12, description="region code (2/4/6/9/12 digits) the figure is for")
    year: int = Field(ge=2000, le=2100)
    kind: str = Field(max_length=32, description="total | women_15_49 | married_women_15_49 | women_35_64 | "
                                                 "children_under1 | children_under3 | children_under5 | "
                                                 "children_under7")
    value: int = Field(ge=0, le=2 * 10**9, description="number of persons (人)")


def _populations(request: Request) -> Populations:
    p: Populations = request.app.state.populations
    return p


@router.put("", summary="Post a region's population figure of a year (总人口, 育龄妇女, 儿童 …): the denominators "
                        "of 出生率 and coverage rates")
async def put(request: Request, body: PopulationIn,
              p: Principal = Depends(require("indicators:admin"))) -> dict[str, Any]:
    return await run(_populations(request).put(body.region, body.kind, body.year, body.value, p))


@router.get("", summary="The population figures of a region and the regions below it for a year")
async def listing(request: Request, year: int = Query(..., ge=2000, le=2100),
                  region: str | None = Query(None, max_length=12),
                  p: Principal = Depends(require("indicators:read"))) -> dict[str, Any]:
    return await run(_populations(request).listing(p.region_prefix if region is None else region, year, p))


@router.delete("/{year}/{region}/{kind}", summary="Delete a population figure")
async def delete(request: Request, year: int = Path(..., ge=2000, le=2100), region: str = Path(..., max_length=12),
                 kind: str = Path(..., max_length=32),
                 p: Principal = Depends(require("indicators:admin"))) -> dict[str, Any]:
    return await run(_populations(request).delete(region, kind, year, p))
