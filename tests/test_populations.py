"""Population denominators (人口基数) and births by sex and birth order on a real stack: a bureau posts its
county's population figures; 出生率 and 出生性别比 (all births, second and later) follow from deliveries posted
through the registry API with their birth order; a figure posted below an already posted one is refused; a
deleted figure leaves the rate null; only the region's own operator may post."""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from tests.conftest import Stack, fresh_county, make_person, village
from tests.helpers import Baby, DeliveryCase, post_pregnancy, setup_institutions, values, wait_values


async def _deliver(http: httpx.AsyncClient, stack: Stack, county: str, on: date,
                   babies: list[tuple[str, int]]) -> None:
    c = DeliveryCase(f"P-{uuid.uuid4().hex[:12]}", f"E-{uuid.uuid4().hex[:12]}", village(county, 1, 1),
                     f"H{county}A", on - timedelta(days=275), on, "hospital", "vaginal",
                     [Baby(sex, 3200, "live") for sex, _ in babies])
    r = await post_pregnancy(http, stack, c)
    assert r.status_code in (200, 201), r.text
    body = c.encounter_body()
    for b, (_, order) in zip(body["babies"], babies, strict=True):
        b["birth_order"] = order
    r = await http.post(f"{stack.url('registry')}/v1/encounters", json=body)
    assert r.status_code in (200, 201), r.text


async def test_birth_rate_and_sex_ratio_from_posted_populations(stack: Stack, http: httpx.AsyncClient) -> None:
    county = fresh_county()
    await setup_institutions(http, stack, county)
    # 2025: boys of order 1, 2, 3 and girls of order 2 (a twin), 1: 3 boys ÷ 2 girls × 100 = 150.00;
    # order ≥ 2: 2 boys ÷ 1 girl × 100 = 200.00
    await _deliver(http, stack, county, date(2025, 3, 3), [("M", 1)])
    await _deliver(http, stack, county, date(2025, 4, 4), [("M", 2), ("F", 2)])
    await _deliver(http, stack, county, date(2025, 5, 5), [("F", 1)])
    await _deliver(http, stack, county, date(2025, 6, 6), [("M", 3)])
    bad = await http.post(f"{stack.url('registry')}/v1/encounters", json={
        "encounter_id": "E-bad", "source": "his-test", "type": "delivery", "occurred_at": "2025-06-06",
        "institution_code": f"H{county}A", "subject_id": "P-none", "place": "hospital", "mode": "vaginal",
        "babies": [{"sex": "M", "outcome": "live", "birth_order": 0}]})
    assert bad.status_code == 422 and "birth_order" in bad.text
    # 户籍 is a 6-digit county code; anything else is refused naming the field, nothing stored
    bad = await http.post(f"{stack.url('registry')}/v1/persons", json={
        "name": "测试", "sex": "F", "birth_date": "1990-01-01", "residence_code": village(county, 1, 1),
        "hukou_code": "32"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("hukou_code"), bad.text
    ok = await http.post(f"{stack.url('registry')}/v1/persons", json={
        "name": "测试", "sex": "F", "birth_date": "1990-01-01", "residence_code": village(county, 1, 1),
        "hukou_code": "650102"})
    assert ok.status_code == 201, ok.text
    shown = await http.get(f"{stack.url('registry')}/v1/persons/{ok.json()['person_id']}")
    assert shown.status_code == 200 and shown.json()["hukou_code"] == "650102", shown.text

    _, op = await make_person(stack, ["operator"], county, name="县运维")
    _, other = await make_person(stack, ["operator"], fresh_county(), name="外县运维")
    base = f"{stack.url('indicators')}/v1/populations"
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {op}"}) as c, \
            httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {other}"}) as o:
        for kind, v in (("total", 40000), ("women_15_49", 9000)):
            r = await c.put(base, json={"region": county, "year": 2025, "kind": kind, "value": v})
            assert r.status_code == 200, r.text
        assert (await o.put(base, json={"region": county, "year": 2025, "kind": "total", "value": 1})
                ).status_code == 403
        r = await c.put(base, json={"region": county, "year": 2025, "kind": "everyone", "value": 1})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kind"
        # a township's total below the county's: the same people twice
        r = await c.put(base, json={"region": county + "001", "year": 2025, "kind": "total", "value": 100})
        assert r.status_code == 409 and r.json()["errors"][0]["field"] == "region"
        # a correction replaces the figure (a newer version of the same fact)
        r = await c.put(base, json={"region": county, "year": 2025, "kind": "total", "value": 50000})
        assert r.status_code == 200 and r.json()["version"] == 2

        # 出生率: 5 live births ÷ 50,000 × 1000 = 0.10 ‰; 一般生育率 5 ÷ 9000 × 1000 = 0.56 ‰
        await wait_values(http, stack, county, "2025", {
            "live_births": (5, None), "population_total": (50000, None), "birth_rate": (5, 50000),
            "general_fertility_rate": (5, 9000), "sex_ratio_at_birth": (3, 2), "sex_ratio_second_plus": (2, 1),
            "live_births_male": (3, None), "live_births_second_plus": (3, None)})
        rows = await _rows(http, stack, county, "2025")
        assert rows["birth_rate"] == 0.1 and rows["general_fertility_rate"] == 0.56
        assert rows["sex_ratio_at_birth"] == 150.0 and rows["sex_ratio_second_plus"] == 200.0
        # a quarter of 2025 divides by 2025's figure; 2026 has none (null, not last year's)
        assert (await values(http, stack, county, "2025Q2"))["birth_rate"] == (4, 50000)
        assert (await values(http, stack, county, "2026"))["population_total"] == (0, None)
        listed = (await c.get(base, params={"year": 2025, "region": county})).json()["populations"]
        assert {(x["kind"], x["value"]) for x in listed} == {("total", 50000), ("women_15_49", 9000)}

        r = await c.delete(f"{base}/2025/{county}/total")
        assert r.status_code == 200, r.text
        assert (await c.delete(f"{base}/2025/{county}/total")).status_code == 404
        await wait_values(http, stack, county, "2025", {"population_total": (0, None), "birth_rate": (5, 0)})


async def _rows(http: httpx.AsyncClient, stack: Stack, region: str, period: str) -> dict[str, Any]:
    r = await http.get(f"{stack.url('indicators')}/v1/indicators/values", params={"region": region, "period": period})
    assert r.status_code == 200, r.text
    return {row["code"]: row["value"] for row in r.json()["rows"]}
