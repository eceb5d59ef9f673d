"""The institutions' monthly report (机构月报): levels institution → township → county. Hospitals file their own
counts, the township is approved only after its institutions, an institution outside the caller's region
answers like one that does not exist, and a late delivery at a locked institution is listed as its adjustment."""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from tests.conftest import Stack, fresh_county, make_person, village, wait_for
from tests.helpers import Baby, DeliveryCase, post_case, setup_institutions, values

PERIOD = "2025-03"


def _case(county: str, inst: str) -> DeliveryCase:
    d = date(2025, 3, 15)
    return DeliveryCase(f"P-{uuid.uuid4().hex[:12]}", f"E-{uuid.uuid4().hex[:12]}", village(county, 2, 1), inst,
                        d - timedelta(days=275), d, "hospital", "vaginal", [Baby("F", 3000, "live")])


def _live(view: dict[str, Any]) -> tuple[Any, Any]:
    row = next(r for r in view["rows"] if r["code"] == "live_births")
    return (row["filed"] or {}).get("numerator"), row["current"]["numerator"]


async def test_institutions_file_first_then_their_township(stack: Stack, http: httpx.AsyncClient) -> None:
    county = fresh_county()
    township = county + "001"  # both test hospitals are in township 001
    a, b = sorted(await setup_institutions(http, stack, county))
    for inst in (a, a, b):
        await post_case(http, stack, _case(county, inst))

    async def settled() -> Any:
        return (await values(http, stack, county, PERIOD)).get("live_births") == (3, None)
    await wait_for(settled, 30)
    _, stat = await make_person(stack, ["statistician"], township, name="乡镇统计员")
    _, appr = await make_person(stack, ["report_approver"], county, name="县审核人")
    _, outsider = await make_person(stack, ["statistician"], fresh_county(), name="外县统计员")
    base = f"{stack.url('indicators')}/v1/reports/monthly/filings/{PERIOD}"
    h = {"stat": {"Authorization": f"Bearer {stat}"}, "appr": {"Authorization": f"Bearer {appr}"},
         "out": {"Authorization": f"Bearer {outsider}"}}
    async with httpx.AsyncClient(timeout=30) as c:
        async def step(who: str, unit: str, action: str, body: dict[str, Any] | None = None) -> httpx.Response:
            return await c.post(f"{base}/{unit}/{action}", json=body, headers=h[who])

        # the residents live in township 002, but an institution files what happened at it
        r = await step("stat", f"inst:{a}", "submit")
        assert r.status_code == 200, r.text
        assert _live(r.json()) == (2, 2)
        # outside the caller's region, or unknown: the same 404, nothing revealed
        out = await c.get(f"{base}/inst:{a}", headers=h["out"])
        unknown = await c.get(f"{base}/inst:NOSUCH{county}", headers=h["out"])
        assert out.status_code == unknown.status_code == 404
        assert out.json()["detail"] == f"institution {a} does not exist"
        assert unknown.json()["detail"] == f"institution NOSUCH{county} does not exist"
        assert (await step("stat", township, "submit")).status_code == 200
        r = await step("appr", township, "approve")
        assert r.status_code == 409 and f"inst:{a}" in r.json()["detail"] and f"inst:{b}" in r.json()["detail"]
        assert (await step("stat", f"inst:{b}", "submit")).status_code == 200
        for inst in (a, b):
            assert (await step("appr", f"inst:{inst}", "approve")).status_code == 200
        assert (await step("appr", township, "approve")).status_code == 200
        assert (await step("appr", f"inst:{a}", "unapprove", {"reason": "复核"})).status_code == 409  # township locked
        r = await c.post(f"{base}/inst:{a}/submit", headers=h["stat"])
        assert r.status_code == 409  # locked
        # not a level of the annual report
        r = await c.post(f"{stack.url('indicators')}/v1/reports/annual/filings/{PERIOD}/inst:{a}/submit",
                         headers=h["stat"])
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "unit"

        late = _case(county, a)
        await post_case(http, stack, late)

        async def adjusted() -> Any:
            v = (await c.get(f"{base}/inst:{a}", headers=h["appr"])).json()
            return v if _live(v) == (2, 3) and v["adjustments"] else None
        v = await wait_for(adjusted, 30)
        assert any(rec.endswith(late.encounter_id) for x in v["adjustments"] for rec in x["records"])
        assert (await c.get(f"{base}/inst:{b}", headers=h["appr"])).json()["adjustments"] == []
        r = await c.get(f"{stack.url('indicators')}/v1/reports/monthly/completeness",
                        params={"period": PERIOD, "region": township}, headers=h["appr"])
        assert r.status_code == 200, r.text
        assert (r.json()["expected"], r.json()["approved"]) == (2, 2)
