"""The demo county's programme records (issue 21) are of the seeds' order of magnitude: terminations, near
misses, birth defects found in the first week (of the order of 100 per 10 000 births), reviewed deaths, 体弱儿,
nursery checks of children 3–6 and of staff (a county of 17 227 children under 7 checked 1 613 kindergarten
children and 217 teachers: seed 000)."""
from __future__ import annotations

from collections import Counter
from datetime import date

from demo import county as county_mod
from demo.generate import year_plan

TODAY = date(2026, 6, 30)


def test_a_year_has_plausible_programme_records() -> None:
    c = county_mod.load()
    plan = year_plan(c, 7, 2025, None, TODAY)
    encounters = [o.body for s in plan.ordered() for o in s.ops if s.name != "screenings" and "type" in o.body
                  and "encounter_id" in o.body]
    by_type = Counter(e["type"] for e in encounters)
    live = sum(1 for x in plan.cases if x.get("delivered") for b in x["babies"] if b["outcome"] == "live")
    assert 30 <= by_type["pregnancy_termination"] <= 80            # 0.04 per birth
    assert 3 <= by_type["maternal_near_miss"] <= 25                # ~8 per 1 000 deliveries
    assert 60 / 10000 <= by_type["birth_defect"] / live <= 170 / 10000
    assert by_type["neonatal_tetanus"] <= 2
    staff = [e for e in encounters if e["type"] == "nursery_health_check" and e["role"] == "staff"]
    kids = [e for e in encounters if e["type"] == "nursery_health_check" and e["role"] == "child"]
    assert 120 <= len(staff) <= 220 and 1500 <= len(kids) <= 2600
    assert 300 <= by_type["at_risk_child"] <= 1000
    deaths = [e for e in encounters if e["type"] == "death"]
    assert deaths and sum("review" in e for e in deaths) >= len(deaths) // 2
    methods = Counter(e["method"] for e in encounters if e["type"] == "pregnancy_termination")
    assert methods["induced_labour"] and methods["vacuum_aspiration"]
