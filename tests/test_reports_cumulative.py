"""Cumulative periods (累计, 截止N月底) on the small demo county's year: for every indicator counted as a flow, the
1–N月 count is the sum of its months and each rate is recomputed from the summed parts; a standing quantity
(期末数) is the one at the last month's end. Every value says whether it is final."""
from __future__ import annotations

import asyncio
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from tests.conftest import Stack
from tests.demo_county import small_county
from tests.helpers import wait_values

#: populations counted at a period end (期末数), not summed over months (a bureau's population figure of a year
#: holds for every period ending in it)
STANDING = {"child_under7", "cert_stock", "population_figure", "at_risk_child_managed"}
#: populations counted once per period (the latest check in it, what a child had in it): not a sum of months
PER_PERIOD = {"child_under7_in_period", "infant_feeding", "child_u5_measured", "child_hb_tested",
              "folic_acid_person", "nutrition_pack_person", "nursery_checked"}


def rate(n: int, d: int, factor: int) -> float | None:
    if not d:
        return None
    return float((Decimal(n) * factor / Decimal(d)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


async def _rows(http: httpx.AsyncClient, stack: Stack, region: str, period: str,
                breakdown: str | None = None) -> list[dict[str, Any]]:
    params = {"region": region, "period": period, **({"breakdown": breakdown} if breakdown else {})}
    r = await http.get(f"{stack.url('indicators')}/v1/indicators/values", params=params)
    assert r.status_code == 200, r.text
    return [row for row in r.json()["rows"] if not row["code"].endswith(".completion")]


async def _settled(http: httpx.AsyncClient, stack: Stack, region: str, year: int) -> None:
    """Wait until the region's monthly figures of the year and the one before stop moving: `expected()` covers
    the registry's figures only, and the certificates' and screenings' events may still be on their way on a
    loaded machine."""
    last: Any = None
    for _ in range(60):
        now = [await _rows(http, stack, region, str(y), "month") for y in (year - 1, year)]
        if now == last:
            return
        last = now
        await asyncio.sleep(2)


async def test_cumulative_periods_are_sums_of_their_months(stack: Stack, http: httpx.AsyncClient) -> None:
    county = await small_county(stack)
    await wait_values(http, stack, county.code, str(county.year), county.expected(), timeout=60)
    await _settled(http, stack, county.code, county.year)
    cat = {i["code"]: i for i in (await http.get(f"{stack.url('indicators')}/v1/indicators")).json()["indicators"]}
    y = county.year
    checked_flows = 0
    for period, first_month, last_month in ((f"{y}-01..09", f"{y}-01", f"{y}-09"),
                                            (f"{y}SY..05", f"{y - 1}-10", f"{y}-05"),
                                            (f"{y}-01..12", f"{y}-01", f"{y}-12")):
        total = {r["code"]: r for r in await _rows(http, stack, county.code, period)}
        months: dict[str, list[dict[str, Any]]] = {}
        for r in await _rows(http, stack, county.code, period, "month"):
            months.setdefault(r["code"], []).append(r)
        assert set(total) == set(cat)
        for code, ind in cat.items():
            ms = sorted(months[code], key=lambda r: r["period"])
            assert (ms[0]["period"], ms[-1]["period"]) == (first_month, last_month), code
            pops = {ind["numerator"]["population"], *([ind["denominator"]["population"]] if ind["denominator"]
                                                      else [])}
            got = total[code]
            assert got["period"] == period and isinstance(got["final"], bool) and got["final_on"]
            if pops & PER_PERIOD:
                continue
            if pops & STANDING:
                # a standing part is its value at the period end; a flow part is still the sum of its months
                # (births over a population figure: 出生率)
                def part(months_: list[dict[str, Any]], key: str, population: str) -> int:
                    vals = [m[key] for m in months_]
                    return int(vals[-1] if population in STANDING else sum(vals))
                want_n = part(ms, "numerator", ind["numerator"]["population"])
                want_d = part(ms, "denominator", ind["denominator"]["population"]) if ind["denominator"] else None
                assert (got["numerator"], got["denominator"]) == (want_n, want_d), code
                continue
            n = sum(m["numerator"] for m in ms)
            assert got["numerator"] == n, (period, code)
            if ind["denominator"] is None:
                assert got["value"] == n
            else:
                d = sum(m["denominator"] for m in ms)
                assert got["denominator"] == d, (period, code)
                assert got["value"] == rate(n, d, ind["factor"]), (period, code)
            checked_flows += 1
    # the county's data feeds the flows checked (not only zeros)
    assert checked_flows >= 3 * 40
    jan_sep = {r["code"]: r for r in await _rows(http, stack, county.code, f"{y}-01..09")}
    assert jan_sep["live_births"]["numerator"] == sum(
        1 for c in county.delivered() if c["delivered"].month <= 9 and c["gestation_days"] >= 196
        for b in c["babies"] if b["outcome"] == "live")
    # last year's 1–9月 is over and every window (28 days at most) has closed: final
    assert all(r["final"] for r in jan_sep.values())


async def test_cumulative_period_equal_to_a_quarter_reads_the_quarter(stack: Stack, http: httpx.AsyncClient) -> None:
    county = await small_county(stack)
    y = county.year
    q1 = {r["code"]: (r["numerator"], r["denominator"]) for r in await _rows(http, stack, county.code, f"{y}Q1")}
    cum = {r["code"]: (r["numerator"], r["denominator"]) for r in await _rows(http, stack, county.code, f"{y}-01..03")}
    assert q1 == cum and any(n for n, _ in q1.values())
    r = await http.get(f"{stack.url('indicators')}/v1/indicators/values",
                       params={"region": county.code, "period": f"{y}-02..09"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "period"
