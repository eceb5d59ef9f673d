"""The walking skeleton end to end: HIS posts → registry → outbox → relay → Kafka → indicators."""
from __future__ import annotations

import random
from datetime import date

import httpx
import pytest

from tests.conftest import Stack, fresh_county, make_token, village
from tests.helpers import (
    Baby,
    DeliveryCase,
    expected,
    post_case,
    post_pregnancy,
    random_cases,
    setup_institutions,
    values,
    wait_values,
)

YEAR = (date(2025, 1, 1), date(2025, 12, 31))


async def test_deliveries_show_exact_counts_by_region_and_period(http: httpx.AsyncClient, stack: Stack) -> None:
    rng = random.Random(7)
    county = fresh_county()
    insts = await setup_institutions(http, stack, county)
    cases = random_cases(rng, county, insts, 40)
    for c in cases:
        await post_case(http, stack, c)
    township = village(county, 2, 1)[:9]
    await wait_values(http, stack, county, "2025", expected(cases, insts, county, *YEAR))
    await wait_values(http, stack, township, "2025", expected(cases, insts, township, *YEAR))
    await wait_values(http, stack, county, "2025Q4", expected(cases, insts, county, date(2025, 10, 1),
                                                               date(2025, 12, 31)))
    await wait_values(http, stack, county, "2025H1", expected(cases, insts, county, date(2025, 1, 1),
                                                               date(2025, 6, 30)))
    await wait_values(http, stack, county, "2025-08", expected(cases, insts, county, date(2025, 8, 1),
                                                                date(2025, 8, 31)))
    # statistical year 2026SY = 2025-10-01 .. 2026-09-30
    await wait_values(http, stack, county, "2026SY", expected(cases, insts, county, date(2025, 10, 1),
                                                               date(2026, 9, 30)))
    # rates are numerator / denominator × 100, half-up to 2 places
    r = await http.get(f"{stack.url('indicators')}/v1/indicators/values",
                       params={"region": county, "period": "2025", "codes": "caesarean_rate"})
    (row,) = r.json()["rows"]
    n, d = expected(cases, insts, county, *YEAR)["caesarean_rate"]
    assert d
    from decimal import ROUND_HALF_UP, Decimal
    assert row["value"] == float((Decimal(n) * 100 / Decimal(d)).quantize(Decimal("0.01"), ROUND_HALF_UP))


async def test_duplicates_are_counted_once(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    insts = await setup_institutions(http, stack, county)
    case = DeliveryCase("P-dup-" + county, "E-dup-" + county, village(county), f"H{county}A", date(2025, 1, 10),
                        date(2025, 10, 8), "hospital", "caesarean", [Baby("F", 3000, "live"), Baby("M", 2900, "live")])
    await post_case(http, stack, case)
    url = f"{stack.url('registry')}/v1/encounters"
    for _ in range(3):  # HIS retries: same id, same content
        r = await http.post(url, json=case.encounter_body())
        assert r.status_code == 200 and r.json()["version"] == 1
    r = await http.post(url + ":batch", json=[case.encounter_body()] * 3)
    assert [i["status"] for i in r.json()["items"]] == [200, 200, 200]
    r = await post_pregnancy(http, stack, case)
    assert r.status_code == 200
    await wait_values(http, stack, county, "2025", expected([case], insts, county, *YEAR))
    assert (await values(http, stack, county, "2025"))["live_births"] == (2, None)


async def test_correction_and_void_flow_through_as_retractions(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    insts = await setup_institutions(http, stack, county)
    a = DeliveryCase("P-a-" + county, "E-a-" + county, village(county), f"H{county}A", date(2025, 2, 1),
                     date(2025, 11, 1), "hospital", "caesarean", [Baby("F", 3000, "live")])
    b = DeliveryCase("P-b-" + county, "E-b-" + county, village(county, 2), f"H{county}A", date(2025, 2, 1),
                     date(2025, 11, 2), "hospital", "vaginal", [Baby("M", 3300, "live")])
    for c in (a, b):
        await post_case(http, stack, c)
    await wait_values(http, stack, county, "2025", expected([a, b], insts, county, *YEAR))
    # correction: twins, vaginal, born at home — a higher version with different content
    a.version, a.mode, a.place = 2, "vaginal", "home"
    a.babies = [Baby("F", 2400, "live"), Baby("F", 2300, "live")]
    r = await http.post(f"{stack.url('registry')}/v1/encounters", json=a.encounter_body())
    assert r.status_code == 200 and r.json()["version"] == 2
    # the same version with different content is refused and changes nothing
    bad = a.encounter_body() | {"mode": "caesarean"}
    r = await http.post(f"{stack.url('registry')}/v1/encounters", json=bad)
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    await wait_values(http, stack, county, "2025", expected([a, b], insts, county, *YEAR))
    # void
    r = await http.request("DELETE", f"{stack.url('registry')}/v1/encounters/his-test/{b.encounter_id}",
                           json={"reason": "posted for the wrong woman"})
    assert r.status_code == 200 and r.json()["status"] == "voided"
    b.voided = True
    await wait_values(http, stack, county, "2025", expected([a, b], insts, county, *YEAR))
    want = expected([a, b], insts, county, *YEAR)
    assert want["live_births"] == (2, None) and want["caesarean_rate"] == (0, 2)
    # history is kept
    r = await http.get(f"{stack.url('registry')}/v1/pregnancies/{b.pregnancy_id}")
    assert r.json()["encounters"][0]["status"] == "voided"


async def test_reconciliation_matches_incremental_counts(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    insts = await setup_institutions(http, stack, county)
    cases = random_cases(random.Random(11), county, insts, 10)
    for c in cases:
        await post_case(http, stack, c)
    await wait_values(http, stack, county, "2025", expected(cases, insts, county, *YEAR))
    r = await http.post(f"{stack.url('indicators')}/v1/admin/reconcile")
    assert r.status_code == 200 and r.json()["consistent"], r.json()


@pytest.mark.parametrize("mutate, field", [
    (lambda b: b.update(type="caesarean_section"), "type"),
    (lambda b: b.pop("mode"), "mode"),
    (lambda b: b.pop("occurred_at"), "occurred_at"),
    (lambda b: b.update(occurred_at="2024-12-31T10:00:00+08:00"), "occurred_at"),  # before the LMP
    (lambda b: b.update(institution_code="NOPE"), "institution_code"),
    (lambda b: b["babies"][0].update(birth_weight_g=12000), "babies.0.birth_weight_g"),
    (lambda b: b.update(subject_id="P-unknown"), "subject_id"),
])
async def test_bad_encounters_are_refused_naming_the_field_and_change_nothing(
        http: httpx.AsyncClient, stack: Stack, mutate: object, field: str) -> None:
    county = fresh_county()
    await setup_institutions(http, stack, county)
    case = DeliveryCase("P-bad-" + county, "E-bad-" + county, village(county), f"H{county}A", date(2025, 1, 1),
                        date(2025, 10, 1), "hospital", "vaginal", [Baby("F", 3000, "live")])
    assert (await post_pregnancy(http, stack, case)).status_code == 201
    body = case.encounter_body()
    mutate(body)  # type: ignore[operator]
    r = await http.post(f"{stack.url('registry')}/v1/encounters", json=body)
    assert 400 <= r.status_code < 500
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    assert field in [e["field"] for e in problem["errors"]], problem
    r = await http.get(f"{stack.url('registry')}/v1/pregnancies/{case.pregnancy_id}")
    assert r.json()["encounters"] == [] and r.json()["delivered_on"] is None


async def test_bad_region_code_is_refused(http: httpx.AsyncClient, stack: Stack) -> None:
    for code, in [("3205821",), ("99058210100A",), ("990582101001",)]:
        r = await http.put(f"{stack.url('registry')}/v1/institutions/HX{code}",
                           json={"name": "x", "region_code": code, "kind": "hospital", "midwifery_licensed": True})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "region_code", r.text
        r = await http.get(f"{stack.url('registry')}/v1/institutions/HX{code}")
        assert r.status_code == 404
    r = await http.get(f"{stack.url('indicators')}/v1/indicators/values", params={"region": "3205X", "period": "2025"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "region"
    r = await http.get(f"{stack.url('indicators')}/v1/indicators/values", params={"region": "32", "period": "2025Q5"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "period"


@pytest.mark.parametrize("service", ["registry", "screening", "certificates", "indicators"])
async def test_every_service_needs_a_valid_token(stack: Stack, service: str) -> None:
    url = stack.url(service)
    async with httpx.AsyncClient(timeout=10) as anon:
        assert (await anon.get(url + "/healthz")).status_code == 200
        assert (await anon.get(url + "/readyz")).status_code == 200
        path = {"registry": "/v1/pregnancies/x", "indicators": "/v1/indicators"}.get(service)
        if path:
            r = await anon.get(url + path)
            assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
            r = await anon.get(url + path, headers={"Authorization": "Bearer mch_not-a-real-token"})
            assert r.status_code == 401


async def test_scope_and_region_are_enforced(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    reader = await make_token(stack, ["indicators:read"], region=county)
    async with httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {reader}"}) as c:
        r = await c.post(f"{stack.url('registry')}/v1/encounters", json={})
        assert r.status_code == 403  # no registry:write
        r = await c.get(f"{stack.url('indicators')}/v1/indicators/values", params={"region": county, "period": "2025"})
        assert r.status_code == 200
        r = await c.get(f"{stack.url('indicators')}/v1/indicators/values", params={"region": "32", "period": "2025"})
        assert r.status_code == 403  # wider than the client's county
        r = await c.get(f"{stack.url('indicators')}/v1/indicators/values", params={"period": "2025"})
        assert r.status_code == 200 and r.json()["region"] == county  # defaults to the client's region
