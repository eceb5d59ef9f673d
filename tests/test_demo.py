"""The demo generator: deterministic for a seed, realistic rates, posted through the real APIs."""
from __future__ import annotations

from datetime import date

from stdnum.cn import ric

from demo import county as county_mod
from demo.generate import live_plan, year_plan
from demo.plan import refs_in, resolve
from tests.conftest import Stack
from tests.demo_county import small_county

TODAY = date(2026, 6, 30)


def test_same_seed_same_plan_other_seed_other_plan() -> None:
    c = county_mod.load()
    a, b = year_plan(c, 5, 2025, 300, TODAY), year_plan(c, 5, 2025, 300, TODAY)
    assert [(s.name, [o.body for o in s.ops]) for s in a.ordered()] == [
        (s.name, [o.body for o in s.ops]) for s in b.ordered()]
    other = year_plan(c, 6, 2025, 300, TODAY)
    assert [o.body for o in other["pregnancies"].ops] != [o.body for o in a["pregnancies"].ops]


def test_a_year_has_the_county_rates() -> None:
    """Orders of magnitude of the seeds: ~1,300 live births, early booking ~88%, caesarean ~40%, high risk
    20–45%, premarital exam ~90% of couples; 13 townships; nothing dated after today."""
    c = county_mod.load()
    plan = year_plan(c, 7, 2025, None, TODAY)
    assert len(c.townships) == 13 and len(c.hospitals) >= 3
    cases = [x for x in plan.cases if x.get("delivered")]
    live = [b for x in cases for b in x["babies"] if b["outcome"] == "live"]
    assert 1200 <= len(live) <= 1400
    early = sum(1 for x in cases if (x["booked"] - x["lmp"]).days < 91) / len(cases)
    assert 0.84 <= early <= 0.92
    caes = sum(1 for x in cases for b in x["babies"] if b["outcome"] == "live" and x["mode"] == "caesarean")
    assert 0.35 <= caes / len(live) <= 0.45
    high = sum(1 for x in cases if x["risk"] in ("orange", "red", "purple")) / len(cases)
    assert 0.20 <= high <= 0.45
    couples = len(plan["marriages"].ops)
    exams = [o.body for o in plan["screenings"].ops + plan["screenings_with_followup"].ops
             if o.body["type"] == "premarital_exam"]
    assert 0.85 <= len(exams) / 2 / couples <= 0.95
    for step in plan.ordered():
        for op in step.ops:
            for k in ("occurred_at", "registered_on", "performed_on", "on", "received_on"):
                if k in op.body:
                    assert op.body[k][:10] <= TODAY.isoformat(), (step.name, op.body)
    mothers = [o.body["mother"]["id_number"] for o in plan["pregnancies"].ops]
    assert len(set(mothers)) == len(mothers)
    assert all(ric.is_valid(n) for n in mothers)


def test_every_reference_points_to_an_earlier_step() -> None:
    plan = year_plan(county_mod.load(), 3, 2025, 200, TODAY)
    defined: set[str] = set()
    for step in plan.ordered():
        for op in step.ops:
            for ref in refs_in(op.body) + refs_in(op.path):
                assert any(ref == d or ref.startswith(d + ":") for d in defined), (step.name, ref)
        defined |= {op.key for op in step.ops if op.key}
    assert resolve({"a": ["@x:1/y"]}, {"@x:1": "P1"}) == {"a": ["P1/y"]}


def test_live_plan_delivers_today() -> None:
    plan = live_plan(county_mod.load(), 1, TODAY, 3, "t1")
    assert len(plan["deliveries"].ops) == 3
    assert all(o.body["occurred_at"].startswith(TODAY.isoformat()) for o in plan["deliveries"].ops)


async def test_small_county_through_the_real_apis(stack: Stack) -> None:
    county = await small_county(stack)
    by = {r.name: r for r in county.results}
    assert by["institutions"].accepted == by["institutions"].planned
    assert by["pregnancies"].accepted == by["pregnancies"].planned, by["pregnancies"].line()
    assert by["deliveries"].accepted == by["deliveries"].planned, by["deliveries"].line()
