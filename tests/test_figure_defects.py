"""Issue 21's three defects that made today's figures wrong, each tried from outside through the real APIs:
older people's resident ID numbers were refused, children without a check were in no denominator, and
高危专案 cases never closed (that one: tests/test_screening_followup.py)."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import httpx

from tests.conftest import Stack, fresh_county, village
from tests.helpers import values, wait_values
from tests.test_screening_api import CHINA


def with_check_digit(first17: str) -> str:
    """GB 11643's ISO 7064 MOD 11-2 check digit, computed here from the standard's weights."""
    weights = [pow(2, 17 - i, 11) for i in range(17)]
    r = (12 - sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11) % 11
    return first17 + ("X" if r == 10 else str(r))


def add_years(d: date, n: int) -> date:
    try:
        return d.replace(year=d.year + n)
    except ValueError:  # 29 February
        return d.replace(year=d.year + n, day=28)


async def test_id_numbers_of_women_born_before_their_county_code_existed(http: httpx.AsyncClient,
                                                                         stack: Stack) -> None:
    """320102 (玄武区) is in GB/T 2260 from 1983 on; numbers were first issued in 1984–85, so a woman born in
    1970 carries it. Every birth year from 1940 on is accepted; a code of no edition is refused."""
    url = stack.url("registry") + "/v1/persons"
    county = fresh_county()
    for year in (1940, 1948, 1955, 1962, 1970, 1976, 1982):
        born = date(year, 3, 5)
        num = with_check_digit(f"320102{born:%Y%m%d}{(year % 50) * 2:03d}")
        r = await http.post(url, json={"id_number": num, "name": "王秀英", "sex": "F", "birth_date": born.isoformat(),
                                       "residence_code": village(county)})
        assert r.status_code == 201, (year, r.text)
    bad = with_check_digit("32999919700305002")
    r = await http.post(url, json={"id_number": bad, "name": "王秀英", "sex": "F", "birth_date": "1970-03-05",
                                   "residence_code": village(county)})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "id_number", r.text


async def test_children_without_a_check_are_in_the_child_denominators(http: httpx.AsyncClient,
                                                                      stack: Stack) -> None:
    """A resident child registered with POST /v1/persons counts in the under-3 / under-7 populations from her
    registration on, checked or not (a county with 6,027 of 6,974 children managed showed 100 %)."""
    county = fresh_county()
    today = datetime.now(CHINA).date()
    inst = f"K{county}{uuid.uuid4().hex[:4]}"
    r = await http.put(f"{stack.url('registry')}/v1/institutions/{inst}", json={
        "name": "乡镇卫生院", "region_code": village(county), "kind": "health_centre", "midwifery_licensed": False})
    assert r.status_code in (200, 201), r.text
    births = {"A": today - timedelta(days=400), "B": today - timedelta(days=1650),
              "C": today - timedelta(days=8 * 365 + 30), "D": today - timedelta(days=1200)}
    checked = {"D"}
    ids = {}
    for k, born in births.items():
        r = await http.post(f"{stack.url('registry')}/v1/persons", json={
            "name": f"儿童{k}", "sex": "F", "birth_date": born.isoformat(), "residence_code": village(county, 2)})
        assert r.status_code == 201, r.text
        ids[k] = r.json()["person_id"]
    for k in checked:
        r = await http.post(f"{stack.url('registry')}/v1/encounters", json={
            "encounter_id": f"E-{uuid.uuid4().hex[:12]}", "source": "his-test", "type": "child_health_check",
            "occurred_at": f"{today.isoformat()}T00:05:00+08:00", "institution_code": inst,
            "subject_id": ids[k], "weight_kg": 14.2, "height_cm": 96.0})
        assert r.status_code == 201, r.text
    end = date(today.year, 12, 31)
    under7 = [k for k, b in births.items() if end < add_years(b, 7)]
    under3 = [k for k, b in births.items() if end < add_years(b, 3)]
    assert sorted(under7) == ["A", "B", "D"] and under3 == ["A"]  # the cases the test means to build
    await wait_values(http, stack, county, str(today.year), {
        "under7_health_management_rate": (len([k for k in under7 if k in checked]), len(under7)),
        "under3_systematic_management_rate": (0, len(under3)),  # A had no check: not systematically managed
    })
    # before they were registered the registry did not know where they lived: last year has none of them
    got = await values(http, stack, county, str(today.year - 1))
    assert got.get("under7_health_management_rate", (0, 0))[1] in (0, None), got
