"""Targets (任务数 / 目标值) on a real stack: count and rate targets of a county, decomposed to its townships in
proportion to last year's figures, listed with what is decomposed, shown against the values (completion, red /
amber / green) in the API and the statutory table, deleted; set only by an operator of the region."""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from tests.conftest import Stack, fresh_county, make_person, village, wait_for
from tests.helpers import Baby, DeliveryCase, post_case, setup_institutions, values


def _case(county: str, township: int, delivered: date, mode: str = "vaginal") -> DeliveryCase:
    return DeliveryCase(f"P-{uuid.uuid4().hex[:12]}", f"E-{uuid.uuid4().hex[:12]}", village(county, township, 1),
                        f"H{county}A", delivered - timedelta(days=275), delivered, "hospital", mode,
                        [Baby("M", 3300, "live")])


async def test_targets_decomposed_and_shown_against_values(stack: Stack, http: httpx.AsyncClient) -> None:
    county = fresh_county()
    t1, t2 = county + "001", county + "002"
    await setup_institutions(http, stack, county)
    last_year = [_case(county, 1, date(2024, m, 5)) for m in (2, 5, 8)] + [_case(county, 2, date(2024, 6, 1))]
    this_year = [_case(county, 1, date(2025, 3, 3), "caesarean"), _case(county, 2, date(2025, 4, 4))]
    for c in last_year + this_year:
        await post_case(http, stack, c)

    async def settled() -> Any:
        return (await values(http, stack, county, "2024")).get("live_births") == (4, None) and \
            (await values(http, stack, county, "2025")).get("live_births") == (2, None)
    await wait_for(settled, 30)

    _, op = await make_person(stack, ["operator"], county, name="县运维")
    _, other = await make_person(stack, ["operator"], fresh_county(), name="外县运维")
    base = f"{stack.url('indicators')}/v1/targets"
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {op}"}) as c, \
            httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {other}"}) as o:
        for body in ({"code": "live_births", "region": county, "year": 2025, "target": 100},
                     {"code": "caesarean_rate", "region": county, "year": 2025, "target": 40, "comparison": "<="},
                     {"code": "hospital_delivery_rate", "region": county, "year": 2025, "target": 85}):
            r = await c.put(base, json=body)
            assert r.status_code == 200, r.text
        assert (await o.put(base, json={"code": "live_births", "region": county, "year": 2025, "target": 1})
                ).status_code == 403
        r = await c.put(base, json={"code": "caesarean_rate", "region": county, "year": 2025, "target": 150})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "target"
        r = await c.put(base, json={"code": "nosuch", "region": county, "year": 2025, "target": 1})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "code"

        # 任务分解: 100 in proportion to 2024's live births (3 : 1); the rate is copied
        r = await c.post(f"{base}/decompose", json={"code": "live_births", "region": county, "year": 2025})
        assert r.status_code == 200, r.text
        assert r.json()["parts"] == {t1: 75, t2: 25} and r.json()["basis_year"] == 2024
        r = await c.post(f"{base}/decompose", json={"code": "caesarean_rate", "region": county, "year": 2025})
        assert r.json()["parts"] == {t1: 40.0, t2: 40.0}
        r = await c.get(base, params={"region": county, "year": 2025})
        assert r.status_code == 200, r.text
        listed = r.json()
        assert {(x["code"], x["region"]): x["target"] for x in listed["targets"]} == {
            ("live_births", county): 100, ("live_births", t1): 75, ("live_births", t2): 25,
            ("caesarean_rate", county): 40.0, ("caesarean_rate", t1): 40.0, ("caesarean_rate", t2): 40.0,
            ("hospital_delivery_rate", county): 85.0}
        assert listed["decomposition"] == [{"code": "live_births", "region": county, "target": 100,
                                            "decomposed": 100, "not_decomposed": 0}]
        assert (await o.get(base, params={"region": county, "year": 2025})).status_code == 403

    # against the values: 2 of 100 live births (red), caesarean 1 of 2 = 50 % > 40 % (red), hospital 100 % (green)
    r = await http.get(f"{stack.url('indicators')}/v1/indicators/values",
                       params={"region": county, "period": "2025", "breakdown": "region"})
    rows = {(x["code"], x["region"]): x for x in r.json()["rows"]}
    assert rows[("live_births", t1)]["target"] == 75 and rows[("live_births", t1)]["completion"] == 1.33
    r = await http.get(f"{stack.url('indicators')}/v1/indicators/values", params={"region": county, "period": "2025"})
    rows = {x["code"]: x for x in r.json()["rows"]}
    assert (rows["live_births"]["target"], rows["live_births"]["completion"], rows["live_births"]["status"]) == (
        100, 2.0, "red")
    assert (rows["caesarean_rate"]["value"], rows["caesarean_rate"]["status"]) == (50.0, "red")
    assert (rows["hospital_delivery_rate"]["value"], rows["hospital_delivery_rate"]["status"]) == (100.0, "green")
    assert rows["live_births.completion"]["value"] == 2.0

    t = (await http.get(f"{stack.url('indicators')}/v1/reports/forms/maternal",
                        params={"region": county, "period": "2025"})).json()
    labels = [c["label"] for c in t["columns"]]
    caes, lb = str(labels.index("剖宫产率")), str(labels.index("活产数"))
    assert t["total"]["targets"][caes]["status"] == "red" and t["total"]["targets"][lb]["completion"] == 2.0
    by_unit = {row["unit"]: row for row in t["rows"]}
    assert by_unit[t2]["targets"][caes]["status"] == "green"  # 0 of 1 by caesarean
    assert by_unit[t1]["targets"][lb]["target"] == 75

    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {op}"}) as c:
        assert (await c.delete(f"{base}/2025/{t2}/live_births")).status_code == 200
        r = await c.delete(f"{base}/2025/{t2}/live_births")
        assert r.status_code == 404
        listed = (await c.get(base, params={"region": county, "year": 2025, "code": "live_births"})).json()
        assert listed["decomposition"][0]["not_decomposed"] == 25
