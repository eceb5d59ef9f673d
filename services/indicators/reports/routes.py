"""GET /v1/reports/annual: the year's table in the layout of the bureau's annual summary, as JSON or XLSX."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from kit.auth import Principal, require
from kit.downloads import attachment
from kit.errors import Problem, invalid
from pydantic import BaseModel, Field, field_validator

from indicators.clock import china_today
from indicators.domain import periods, regions
from indicators.domain.catalogue import Catalogue
from indicators.reports import forms_xlsx, statutory, xlsx
from indicators.reports.forms import Form
from indicators.reports.layout import ReportPeriod, build
from indicators.store import names, sql

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
    """The annual report (年度统计表) of a region of the caller's for a calendar year or the MCH statistical year
    (`statistical`): every indicator of the catalogue with its live figures, as JSON or XLSX."""
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
    report = build(cat, region, period, counts, {code: t for (code, _), t in targets.items()}, china_today())
    if format == "xlsx":
        name = f"annual-{region or 'all'}-{period.key}.xlsx"
        return Response(xlsx.render(report), media_type=XLSX,
                        headers=attachment(name))
    return report


CSV = "text/csv; charset=utf-8"


def _forms(request: Request) -> dict[str, Form]:
    f: dict[str, Form] = request.app.state.forms
    return f


def _table_args(p: Principal, region: str | None, period: str) -> str:
    region = p.region_prefix if region is None else region
    if not regions.is_prefix(region):
        raise invalid("region", "must be a region code prefix of 2, 4, 6, 9 or 12 digits")
    try:
        periods.parse(period)
    except ValueError as e:
        raise invalid("period", str(e)) from e
    p.require_region(region)
    return region


@router.get("/reports/forms", summary="The statutory report forms (妇幼卫生年报表): titles and columns with units")
async def form_list(request: Request, p: Principal = Depends(require("indicators:read"))) -> dict[str, Any]:
    """The statutory report forms (妇幼卫生年报表): each form's title and columns with their units."""
    return {"forms": [{"code": f.code, "title": f.title, "rows": f.rows, "header": f.header,
                       "columns": [{"label": c["label"], "unit": c["unit"]} for c in f.columns]}
                      for f in _forms(request).values()]}


@router.get("/reports/forms/{form}", summary="One statutory table of a region and period: JSON, XLSX or CSV")
async def form_table(
    request: Request,
    form: str = Path(..., max_length=32),
    period: str = Query(..., max_length=16, description="2026, 2026SY, 2026-01..09 (1–9月), 2026SY..03, 2026Q3, ..."),
    region: str | None = Query(None, max_length=12, description="region code prefix; default: the caller's"),
    format: Literal["json", "xlsx", "csv"] = "json",
    p: Principal = Depends(require("indicators:read")),
) -> Any:
    """One statutory table (a form of /v1/reports/forms) of a region of the caller's and a period, as JSON, XLSX or
    CSV (`format`)."""
    known = _forms(request)
    if form not in known:
        raise Problem(404, "Not found", f"form {form} does not exist; known: {', '.join(known)}", kind="not-found",
                      errors=[{"field": "form", "reason": "unknown form"}])
    region = _table_args(p, region, period)
    async with request.app.state.db.connect() as conn:
        t = await statutory.table(conn, request.app.state.engine.catalogue, known[form], region, period)
    return _render([t], format, f"{form}-{region or 'all'}-{period}", single=True)


@router.get("/reports/statutory", summary="Every statutory table of a region and period (XLSX: one sheet per form)")
async def all_tables(
    request: Request,
    period: str = Query(..., max_length=16),
    region: str | None = Query(None, max_length=12),
    format: Literal["json", "xlsx"] = "json",
    p: Principal = Depends(require("indicators:read")),
) -> Any:
    """Every statutory table of a region and period at once (XLSX: one sheet per form)."""
    region = _table_args(p, region, period)
    cat = request.app.state.engine.catalogue
    async with request.app.state.db.connect() as conn:
        tables = [await statutory.table(conn, cat, f, region, period) for f in _forms(request).values()]
    return _render(tables, format, f"statutory-{region or 'all'}-{period}", single=False)


def _render(tables: list[dict[str, Any]], format: str, stem: str, *, single: bool) -> Any:
    name = stem.replace("..", "-")  # ASCII only: codes and period keys
    if format == "xlsx":
        return Response(forms_xlsx.render(tables), media_type=XLSX,
                        headers=attachment(f"{name}.xlsx"))
    if format == "csv":
        return Response(forms_xlsx.render_csv(tables[0]), media_type=CSV,
                        headers=attachment(f"{name}.csv"))
    return tables[0] if single else {"tables": tables}


class RegionName(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$",
                      description="the name shown in the tables (e.g. 城关镇, 经济开发区)")
    kind: Literal["gbt2260", "functional", "local"] = Field(
        "local", description="gbt2260: GB/T 2260 name; functional: 功能区 (经济开发区, 高新区); local: other")

    @field_validator("name")
    @classmethod
    def not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a name is required")
        return v.strip()


@router.put("/regions/{code}", summary="Name a region (a township, a functional area) for the report tables")
async def put_region(request: Request, body: RegionName,
                     code: str = Path(..., max_length=12, description="2/4/6/9/12-digit region code"),
                     p: Principal = Depends(require("indicators:admin"))) -> dict[str, Any]:
    """Name a region of the caller's (a township, a functional area) as the report tables should show it."""
    if not regions.is_prefix(code) or not code:
        raise invalid("code", "must be a region code of 2, 4, 6, 9 or 12 digits")
    p.require_region(code, "code")
    async with request.app.state.db.begin() as conn:
        await names.put_region(conn, code, body.name.strip(), body.kind, p.actor)
    return {"code": code, **body.model_dump()}
