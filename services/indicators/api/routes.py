"""Indicator endpoints: the catalogue, values by region and period, reconciliation."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import ORJSONResponse
from kit.auth import Principal, require
from kit.errors import invalid

from indicators.clock import china_today
from indicators.domain import periods, provisional, regions
from indicators.domain import targets as target_rules
from indicators.domain.values import completion_value, value
from indicators.engine import Engine
from indicators.store import sql

router = APIRouter(prefix="/v1", tags=["indicators"])

COMPLETION = ".completion"


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


@router.get("/indicators", summary="The indicator catalogue")
async def catalogue(request: Request, p: Principal = Depends(require("indicators:read"))) -> dict[str, Any]:
    """Every indicator the platform computes: code, name (中文), numerator and denominator definitions, unit, the
    report form line it feeds."""
    cat = _engine(request).catalogue
    return {"version": cat.version, "digest": cat.digest, "parameters": dict(cat.parameters),
            "indicators": [i.public() for i in cat.indicators]}


@router.get("/indicators/values", summary="Indicator values for a region and period")
async def values(
    request: Request,
    period: str = Query(..., max_length=16, description="2021, 2021SY, 2021H1, 2021Q3, 2021-09, or cumulative "
                        "2021-01..09 (1–9月) / 2021SY..03 (statistical year to the end of March)"),
    region: str | None = Query(None, description="region code prefix (2/4/6/9/12 digits); default: the client's"),
    codes: str | None = Query(None, description="comma list of indicator codes; default all"),
    breakdown: Literal["region", "institution", "month"] | None = None,
    p: Principal = Depends(require("indicators:read")),
) -> ORJSONResponse:
    """The live values of indicators (all, or `codes`) for a region of the caller's and a period (a year, statistical
    year, half, quarter, month or a cumulative range): numerator, denominator and value, optionally broken down by
    region, institution or month."""
    cat = _engine(request).catalogue.by_code()
    region = p.region_prefix if region is None else region
    if not regions.is_prefix(region):
        raise invalid("region", "must be a region code prefix of 2, 4, 6, 9 or 12 digits")
    p.require_region(region)
    try:
        per = periods.parse(period)
    except ValueError as e:
        raise invalid("period", str(e)) from e
    if not periods.queryable(per):
        raise invalid("period", f"periods run from {periods.FIRST_YEAR} to {periods.LAST_YEAR}")
    asked = [c.strip() for c in codes.split(",") if c.strip()] if codes else list(cat)
    completion = {c.removesuffix(COMPLETION) for c in asked if c.endswith(COMPLETION)}
    if not codes:
        completion = {c for c in cat if cat[c].unit == "count"}
    wanted = sorted({c for c in asked if not c.endswith(COMPLETION)} | completion,
                    key=lambda c: list(cat).index(c) if c in cat else -1)
    unknown = [c for c in wanted if c not in cat]
    if unknown:
        raise invalid("codes", f"unknown indicator codes: {', '.join(unknown)}")
    plist = [per.key]
    region_len = None
    if breakdown == "month":
        plist = per.months()
    elif breakdown == "region":
        region_len = regions.child_level(region)
        if region_len is None:
            raise invalid("breakdown", "a 12-digit village has no lower level")
    today = china_today()  # one clock for the read and the final/provisional status
    async with request.app.state.db.connect() as conn:
        rows = await sql.read_counters(conn, plist, _engine(request).catalogue.parts(wanted), today,
                                       region=region,
                                       region_len=region_len, by_institution=breakdown == "institution")
    cells: dict[tuple[str, str, str, str], dict[str, int]] = {}
    for r in rows:
        cells.setdefault((r["code"], r["region"], r["period"], r["institution"]), {})[r["part"]] = r["n"]
    if breakdown is None:  # every requested indicator appears, zero or not
        for c in wanted:
            cells.setdefault((c, region, per.key, ""), {})
    elif breakdown == "month":
        for c in wanted:
            for m in plist:
                cells.setdefault((c, region, m, ""), {})
    out = []
    for (code, reg, prd, inst), parts in sorted(cells.items()):
        ind = cat[code]
        num = parts.get("n", 0)
        den = parts.get("d", 0) if ind.denominator is not None else None
        row: dict[str, Any] = {"code": code, "region": reg, "period": prd, "numerator": num, "denominator": den,
                               "value": value(ind, num, den), "unit": ind.unit,
                               **provisional.status(ind, prd, today)}
        if breakdown == "institution":
            row["institution"] = inst
        out.append(row)
    target_year = periods.target_year(per.key)
    if target_year and breakdown in (None, "region"):
        async with request.app.state.db.connect() as conn:
            targets = await sql.read_targets(conn, wanted, {r["region"] for r in out}, target_year)
        for r in out:  # every value with a target says how far it is (red / amber / green)
            t = targets.get((r["code"], r["region"]))
            if t:
                r.update(target_rules.evaluate(cat[r["code"]], r["value"], r["numerator"], *t),
                         target_year=target_year)
        achieved = {(r["code"], r["region"]): r["numerator"] for r in out}
        for (code, reg), (target, _) in sorted(targets.items()):
            if code not in completion or cat[code].denominator is not None:
                continue
            got = achieved.get((code, reg), 0)
            out.append({"code": code + COMPLETION, "region": reg, "period": per.key, "numerator": got,
                        "denominator": int(target), "value": completion_value(got, int(target)), "unit": "%",
                        "target_year": target_year, **provisional.status(cat[code], per.key, today)})
    if codes:  # only the rows asked for
        out = [r for r in out if r["code"] in asked]
    # straight to JSON: the rows are plain dicts, no response-model validation pass needed (a hot endpoint)
    return ORJSONResponse({"region": region, "period": per.key, "breakdown": breakdown, "rows": out})


@router.post("/admin/reconcile", summary="Recompute every counter from stored facts and report differences")
async def reconcile(request: Request, p: Principal = Depends(require("indicators:admin"))) -> dict[str, Any]:
    """Recompute every counter from the stored facts and report each difference from the live counters (0 when the
    incremental engine is exact). An operator's check."""
    async with request.app.state.db.connect() as conn:
        diffs = await _engine(request).reconcile(conn)
    return {"consistent": not diffs, "differences": diffs[:1000], "difference_count": len(diffs)}
