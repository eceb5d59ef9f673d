"""The small demo county (tests/demo_county.py, shared with the demo and dashboard tests) gives plausible values for
the birth, PMTCT, 户籍, examination, population and count figures, in the ranges the seeds report; the
reconciliation from the stored facts then finds no difference."""
from __future__ import annotations

from typing import Any

import httpx
from indicators.domain import catalogue
from indicators.engine import Engine
from kit.db import Database

from tests.conftest import Stack, wait_for
from tests.demo_county import BIRTHS, small_county


async def _values(http: httpx.AsyncClient, stack: Stack, region: str, period: str) -> dict[str, Any]:
    r = await http.get(f"{stack.url('indicators')}/v1/indicators/values", params={"region": region, "period": period})
    assert r.status_code == 200, r.text
    return {row["code"]: row for row in r.json()["rows"]}


async def test_demo_county_figures_are_plausible(stack: Stack, http: httpx.AsyncClient) -> None:
    county = await small_county(stack)
    year = str(county.year)

    async def ready() -> Any:
        v = await _values(http, stack, county.code, year)
        return v if v["population_total"]["value"] and v["hiv_positive_women"]["value"] \
            and v["syphilis_treatment_rate"]["denominator"] else None
    v = await wait_for(ready, 60)
    val = {c: row["value"] for c, row in v.items()}
    # 出生率: births ÷ a population the demo derives from an 8.6 ‰ birth rate (the seeds: 3.69 ‰ a township)
    assert 6 <= val["birth_rate"] <= 11, val["birth_rate"]
    assert val["population_total"] >= BIRTHS * 100
    # 出生性别比 of a county of ~160 births: wide, but boys and girls both born; second+ births reported
    assert 60 <= val["sex_ratio_at_birth"] <= 160 and val["live_births_second_plus"] > 0
    assert val["live_births_male"] + val["live_births_female"] == val["live_births"]
    # 户籍: most mothers local (seed 001: 疆内户籍 310 of 310 reported)
    assert val["live_births_hukou_province"] >= 0.85 * val["live_births"]
    assert 0 < val["live_births_hukou_other"] <= 0.2 * val["live_births"]
    # PMTCT (seeds 000, 002): tested in pregnancy nearly all, HBsAg 2–10 %, treatment and infant care ≥ 50 %
    assert val["hbsag_tested_in_pregnancy"] >= 0.95 * val["women_delivered"]
    assert 2 <= val["hbsag_positive_rate"] <= 10
    assert val["hepb_dose1_timely_rate"] >= 80 and val["hbig_rate"] >= 80
    assert val["syphilis_positive_women"] >= 1 and val["hiv_positive_women"] >= 1
    assert val["hbsag_exposed_live_births"] >= val["hbsag_positive_women"] * 0.9
    # counts behind the rates, with the rates they come from
    assert val["pregnancies_booked"] > 0 and val["first_antenatal_care"] > 0
    assert val["hospital_delivery_women"] >= 0.95 * val["women_delivered"]
    assert val["folic_acid_booked_persons"] == v["folic_acid_uptake_rate"]["numerator"]
    assert val["hearing_screened_count"] == v["hearing_screening_rate"]["numerator"]
    # examinations: both partners examined, so men ≈ women (seed 000: 651 and 651)
    assert val["premarital_exam_male"] > 0 and abs(val["premarital_exam_male"] - val["premarital_exam_female"]) \
        <= 0.1 * val["premarital_exam_female"]
    assert val["prepregnancy_exam_female"] > 0
    # 两癌 coverage of the posted women 35–64: a few per cent a year
    assert 0 < val["cervical_screening_coverage"] < 20
    # after the demo load (population figures posted through the API included) the stored counts are exactly the
    # recomputation from the stored facts
    db = Database.for_service(stack.settings, "indicators", pool_size=1)
    try:
        async with db.connect() as conn:
            diffs = await Engine(catalogue.load()).reconcile(conn)
    finally:
        await db.dispose()
    assert [x for x in diffs if str(x["region"]).startswith(county.code)] == []
