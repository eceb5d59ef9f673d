"""Posting a county's deliveries through the real API, and the expected counts computed from them."""
from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from tests.conftest import Stack, village, wait_for


@dataclass
class Baby:
    sex: str
    weight: int | None
    outcome: str


@dataclass
class DeliveryCase:
    """One pregnancy with one delivery, as a HIS would post it."""

    pregnancy_id: str
    encounter_id: str
    residence: str
    institution: str
    lmp: date
    delivered: date
    place: str
    mode: str
    babies: list[Baby] = field(default_factory=list)
    version: int = 1
    voided: bool = False

    def encounter_body(self) -> dict[str, Any]:
        return {"encounter_id": self.encounter_id, "source": "his-test", "version": self.version,
                "type": "delivery", "occurred_at": f"{self.delivered.isoformat()}T09:30:00+08:00",
                "institution_code": self.institution, "subject_id": self.pregnancy_id, "place": self.place,
                "mode": self.mode,
                "babies": [{"sex": b.sex, "birth_weight_g": b.weight, "outcome": b.outcome} for b in self.babies]}


def random_cases(rng: random.Random, county: str, institutions: dict[str, bool], n: int,
                 year: int = 2025) -> list[DeliveryCase]:
    out = []
    for _ in range(n):
        lmp = date(year, 1, 1) + timedelta(days=rng.randint(0, 300))
        gest = rng.choice([rng.randint(150, 200), *[rng.randint(250, 295)] * 6])
        babies = [Baby(rng.choice("FM"), rng.choice([None, rng.randint(900, 4200)]),
                       rng.choice(["live"] * 9 + ["stillbirth"]))
                  for _ in range(rng.choice([1] * 9 + [2]))]
        out.append(DeliveryCase(
            f"P-{uuid.uuid4().hex[:12]}", f"E-{uuid.uuid4().hex[:12]}",
            village(county, rng.randint(1, 3), rng.randint(1, 4)), rng.choice(sorted(institutions)), lmp,
            lmp + timedelta(days=gest), rng.choice(["hospital"] * 8 + ["home", "en_route"]),
            rng.choice(["vaginal", "vaginal", "caesarean", "assisted"]), babies))
    return out


def expected(cases: list[DeliveryCase], licensed: dict[str, bool], region: str,
             period_start: date, period_end: date) -> dict[str, tuple[int, int | None]]:
    """indicators.md straight: counts among cases resident under `region` delivered in the period."""
    lb = wd = facility = caes = 0
    for c in cases:
        if c.voided or not c.residence.startswith(region) or not period_start <= c.delivered <= period_end:
            continue
        gest = (c.delivered - c.lmp).days
        if gest < 196:
            continue
        wd += 1
        for b in c.babies:
            if b.outcome == "live":
                lb += 1
                facility += c.place == "hospital" and licensed[c.institution]
                caes += c.mode == "caesarean"
    return {"live_births": (lb, None), "women_delivered": (wd, None),
            "hospital_delivery_rate": (facility, lb), "caesarean_rate": (caes, lb)}


async def setup_institutions(http: httpx.AsyncClient, stack: Stack, county: str) -> dict[str, bool]:
    insts = {f"H{county}A": True, f"H{county}B": False}
    for code, licensed in insts.items():
        r = await http.put(f"{stack.url('registry')}/v1/institutions/{code}",
                           json={"name": f"医院{code}", "region_code": village(county, 1, 1), "kind": "hospital",
                                 "midwifery_licensed": licensed})
        assert r.status_code in (200, 201), r.text
    return insts


async def post_pregnancy(http: httpx.AsyncClient, stack: Stack, c: DeliveryCase) -> httpx.Response:
    return await http.post(f"{stack.url('registry')}/v1/pregnancies", json={
        "pregnancy_id": c.pregnancy_id, "source": "his-test",
        "mother": {"name": "测试孕妇", "sex": "F", "birth_date": "1994-05-06", "residence_code": c.residence},
        "lmp_date": c.lmp.isoformat(), "registered_on": (c.lmp + timedelta(days=60)).isoformat(),
        "institution_code": c.institution})


async def post_case(http: httpx.AsyncClient, stack: Stack, c: DeliveryCase) -> None:
    r = await post_pregnancy(http, stack, c)
    assert r.status_code in (200, 201), r.text
    r = await http.post(f"{stack.url('registry')}/v1/encounters", json=c.encounter_body())
    assert r.status_code in (200, 201), r.text


async def values(http: httpx.AsyncClient, stack: Stack, region: str, period: str) -> dict[str, tuple[int, int | None]]:
    r = await http.get(f"{stack.url('indicators')}/v1/indicators/values",
                       params={"region": region, "period": period})
    assert r.status_code == 200, r.text
    return {row["code"]: (row["numerator"], row["denominator"]) for row in r.json()["rows"]}


async def wait_values(http: httpx.AsyncClient, stack: Stack, region: str, period: str,
                      want: dict[str, tuple[int, int | None]], timeout: float = 30) -> None:
    async def ok() -> Any:
        got = await values(http, stack, region, period)
        return got if all(got.get(k) == v for k, v in want.items()) else None

    try:
        await wait_for(ok, timeout)
    except AssertionError:
        got = await values(http, stack, region, period)
        raise AssertionError(f"indicators {got} != expected {want}") from None


async def wait_counts(http: httpx.AsyncClient, stack: Stack, region: str, period: str,
                      want: Mapping[str, tuple[int, int | None]], timeout: float = 30) -> None:
    """Wait until the indicators serve exactly these (numerator, denominator) pairs. The API lists every
    requested code, so a missing row is a failure, never read as 0 / 0 (a code the service dropped, or a
    denominator it never counted, must not pass as "nothing happened")."""
    async def ok() -> Any:
        r = await http.get(f"{stack.url('indicators')}/v1/indicators/values",
                           params={"region": region, "period": period, "codes": ",".join(want)})
        assert r.status_code == 200, r.text
        rows = {row["code"]: (row["numerator"], row["denominator"]) for row in r.json()["rows"]}
        assert set(want) <= set(rows), f"codes missing from the answer: {sorted(set(want) - set(rows))}"
        return rows if {k: rows[k] for k in want} == dict(want) else None

    try:
        await wait_for(ok, timeout)
    except AssertionError as e:
        raise AssertionError(f"{region} {period}: want {want}: {e}") from None
