"""GET /v1/reports/annual: the year's table in the layout of the bureau's annual summary, as JSON or XLSX."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from kit.auth import Principal, require
from kit.downloads import attachment
from kit.errors import invalid

from indicators.clock import china_today
from indicators.domain import regions
from indicators.domain.catalogue import Catalogue
from indicators.reports import xlsx
from indicators.reports.layout import ReportPeriod, build
from indicators.store import sql

router = APIRouter(prefix="/v1", tags=["reports"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/reports/annual", summary="The annual report (年度统计表) of a region: JSON or XLSX")
async def annual(
    request: Request,
    year: int = Query(..., ge=2000, le=2100),
    region: str | None = Query(None, description="region code prefix; default: the client's"),
    statistical: bool = Query(False, description="the MCH statistical year (1 Oct of year−1 to 30 Sep)"),
    format: Literal["json", "xlsx"] = "json",
    p: Principal = Depends(require("indicators:read")),
) -> Any:
    region = p.region_prefix if region is None else region
    if not regions.is_prefix(region):
        raise invalid("region", "must be a region code prefix of 2, 4, 6, 9 or 12 digits")
    p.require_region(region)
    cat: Catalogue = request.app.state.engine.catalogue
    period = ReportPeriod(year, statistical)
    codes = [i.code for i in cat.indicators]
    async with request.app.state.db.connect() as conn:
        rows = await sql.read_counters(conn, [period.key], cat.parts(codes), china_today(), region=region)
        targets = await sql.read_targets(conn, codes, [region], year)
    counts = {(r["code"], r["part"]): int(r["n"]) for r in rows}
    report = build(cat, region, period, counts, {code: t for (code, _), t in targets.items()})
    if format == "xlsx":
        name = f"annual-{region or 'all'}-{period.key}.xlsx"
        return Response(xlsx.render(report), media_type=XLSX,
                        headers=attachment(name))
    return report
