"""Reading a statutory table: the counts of each row unit (townships or institutions by name), the region's
total, the stock at the end of the month before, the filing's people for the footer, final or provisional."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from indicators.clock import china_today
from indicators.domain import periods, provisional, regions
from indicators.domain.catalogue import Catalogue
from indicators.reports import forms as forms_mod
from indicators.reports.forms import Form
from indicators.store import filings, names, sql

Counts = dict[tuple[str, str], int]


def _parts(cat: Catalogue, wanted: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
    keys = set(wanted)
    return [p for p in cat.parts({c for c, _ in keys}) if (p[0], p[1]) in keys]


def _group(rows: list[dict[str, Any]], key: str) -> dict[str, Counts]:
    out: dict[str, Counts] = {}
    for r in rows:
        out.setdefault(r[key], {})[(r["code"], r["part"])] = int(r["n"])
    return out


async def _footer(conn: AsyncConnection, region: str, period: str) -> dict[str, str]:
    """填表人 and 报出日期 from the region's filing of the period, if it was submitted."""
    d = await filings.detail(conn, "annual", period, region)
    if not d:
        return {}
    return {"填表人": d["submitted_by_name"], "报出日期": d["submitted_at"].date().isoformat()}


async def table(conn: AsyncConnection, cat: Catalogue, form: Form, region: str, period: str) -> dict[str, Any]:
    today = china_today()
    parts = _parts(cat, form.parts())
    opening_parts = _parts(cat, form.opening_parts())
    before = periods.month_before(period)
    total = _group(await sql.read_counters(conn, [period], parts, today, region=region), "region").get(region, {})
    total_open = _group(await sql.read_counters(conn, [before], opening_parts, today, region=region),
                        "region").get(region, {}) if opening_parts else {}
    if form.rows == "institution":
        counts = _group(await sql.read_counters(conn, [period], parts, today, region=region, by_institution=True),
                        "institution")
        opening = _group(await sql.read_counters(conn, [before], opening_parts, today, region=region,
                                                 by_institution=True), "institution") if opening_parts else {}
        known = await names.institutions_in(conn, region)
        units = sorted(set(counts) | set(opening) | set(known))
        labels = known
    else:
        level = regions.child_level(region)
        counts, opening = {}, {}
        if level is not None:
            counts = _group(await sql.read_counters(conn, [period], parts, today, region=region, region_len=level),
                            "region")
            if opening_parts:
                opening = _group(await sql.read_counters(conn, [before], opening_parts, today, region=region,
                                                         region_len=level), "region")
        named = await names.named_children(conn, region, level) if level is not None else {}
        units = sorted(set(counts) | set(opening) | set(named))
        labels = {**await names.region_names(conn, units), **named}
    region_name = (await names.region_names(conn, [region])).get(region, "")
    rows = [(u, labels.get(u, u), counts.get(u, {}), opening.get(u, {})) for u in units]
    by_code = cat.by_code()
    final_on = max((provisional.final_on(by_code[c], period) for c, _ in form.parts() | form.opening_parts()),
                   default=periods.parse(period).end)
    year = periods.target_year(period)
    codes = [c for c in (forms_mod.target_code(col, cat) for col in form.columns) if c]
    targets: dict[str, dict[str, Any]] = {}
    if year and codes:
        for (code, unit), t in (await sql.read_targets(conn, codes, [region, *units], year)).items():
            targets.setdefault(unit, {})[code] = t
    return forms_mod.build(form, cat, region=region, region_name=region_name, period=period,
                           period_zh=periods.label_zh(period), rows=rows, total=total, total_opening=total_open,
                           footer=await _footer(conn, region, period), final=today >= final_on,
                           final_on=final_on.isoformat(), targets=targets)
