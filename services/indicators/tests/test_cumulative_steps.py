"""Per-period counts of cumulative periods (累计, 截止N月底) stored as steps of their window: the sum of the steps
up to N equals the count of 1–N月 computed directly from the per-period entities (a child counted once in the
window, by its latest check there), for every window, month, measure, region and institution."""
from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta
from typing import Any

from indicators.domain import catalogue, periods, units
from indicators.domain.facts import Fact

CAT = catalogue.load()
HOME, AWAY = "320582101001", "320582102003"
YEARS = (2024, 2025, 2026, 2027)
CUMULATIVE = [f"{y}-01..{n:02d}" for y in YEARS for n in range(1, 13)] + \
             [f"{y}SY..{n:02d}" for y in YEARS for n in range(1, 13)]


def _child(rng: random.Random, i: int) -> list[Fact]:
    birth = date(2023, 6, 1) + timedelta(days=rng.randint(0, 900))
    moves = [{"since": "", "region_code": HOME}]
    if rng.random() < 0.5:
        moves.append({"since": (birth + timedelta(days=rng.randint(30, 700))).isoformat(), "region_code": AWAY})
    facts = [Fact(f"person:K{i}", f"person:K{i}", 1, False, {
        "person_id": f"K{i}", "sex": "F", "birth_date": birth.isoformat(), "mother_id": "",
        "registered_on": birth.isoformat(), "residence": moves})]
    for j in range(rng.randint(0, 9)):
        on = birth + timedelta(days=rng.randint(0, 1200))
        cc: dict[str, Any] = {"weight_kg": rng.choice([0, 6.5, 9.0]), "height_cm": rng.choice([0, 70.0]),
                              "weight_for_age_z": rng.choice([-2.5, -1.0, 0.3]),
                              "height_for_age_z": rng.choice([-2.2, 0.1]),
                              "haemoglobin_g_l": rng.choice([0, 100, 120]),
                              "feeding": rng.choice(["", "exclusive_breastfeeding", "mixed"])}
        facts.append(Fact(f"encounter:h/K{i}E{j}", f"person:K{i}", 1, False, {
            "encounter_key": f"h/K{i}E{j}", "type": "child_health_check", "occurred_on": on.isoformat(),
            "institution_code": rng.choice(["H1", "H2"]), "institution_region": HOME, "child_check": cc}))
    return facts


def _direct(ents: list[units.Entity], key: str) -> Counter[tuple[str, str, str]]:
    """The count of a cumulative period from its own per-period entities (or those of the ordinary period it
    equals): what was stored under `@<key>` before the steps."""
    want = periods.canonical(key)
    out: Counter[tuple[str, str, str]] = Counter()
    for e in ents:
        if e.period == want:
            for m, count in CAT.measures_by_population.get(e.population, ()):
                if count.counts(e.attrs):
                    out[(m, e.region, e.institution)] += e.weight
    return +out


def _read(measured: list[units.Measured], key: str) -> Counter[tuple[str, str, str]]:
    """What the store reads for `key` from the per-period contributions (`@` keys and steps)."""
    own = set(periods.stored_keys(key)) - set(periods.parse(key).months())
    out: Counter[tuple[str, str, str]] = Counter()
    for m, when, region, inst, w in measured:
        if when in own:
            out[(m, region, inst)] += w
    return +out


def test_steps_sum_to_every_cumulative_period_of_random_children() -> None:
    rng = random.Random(17)
    clock = Fact(units.CLOCK, units.CLOCK, 1, False, {"month": "2027-12"})
    for i in range(40):
        facts = [*_child(rng, i), clock]
        ents = units.entities(f"person:K{i}", facts)
        measured = units.compute_measured(f"person:K{i}", facts, CAT)
        assert not [c for c in measured if c[1].startswith("@") and periods.is_cumulative(c[1][1:])]
        for key in CUMULATIVE:
            assert _read(measured, key) == _direct(ents, key), (i, key)


def test_a_child_checked_twice_in_1_to_9_counts_once() -> None:
    """Checks in February and May 2026 (weight and height): 1–9月 has one child checked (健康管理), not two; the
    window's one step is +1 in February (1–2月 is the first with a check; 1–3月 is Q1's own count), and none
    after."""
    facts = [Fact("person:K", "person:K", 1, False, {
        "person_id": "K", "sex": "F", "birth_date": "2024-05-05", "mother_id": "M",
        "residence": [{"since": "", "region_code": HOME}]}),
        Fact(units.CLOCK, units.CLOCK, 1, False, {"month": "2026-12"})]
    for j, on in enumerate(("2026-02-10", "2026-05-20")):
        facts.append(Fact(f"encounter:h/E{j}", "person:K", 1, False, {
            "encounter_key": f"h/E{j}", "type": "child_health_check", "occurred_on": on, "institution_code": "H1",
            "institution_region": HOME, "child_check": {"weight_kg": 12.0, "height_cm": 85.0}}))
    contribs = units.compute("person:K", facts, CAT)
    mgmt = [c for c in contribs if c[0] == "under7_health_management_rate"]

    def read(key: str, part: str) -> int:
        keys = set(periods.stored_keys(key))
        return sum(c[5] for c in mgmt if c[1] == part and c[2] in keys)

    assert [read(f"2026-01..{n:02d}", "n") for n in range(1, 13)] == [0] + [1] * 11
    assert read("2026SY..09", "n") == 1 and read("2026SY..01", "n") == 0
    steps = sorted((c[2], c[1], c[5]) for c in mgmt if c[2].startswith("+2026-01.."))
    assert steps == [("+2026-01..02", "n", 1)]


def test_step_keys_of_a_window() -> None:
    # 10–2月 of the statistical year 2026: the count of 10–12月 (2025Q4) and the steps of January and February
    assert periods.step_keys("2026SY..02") == ("@2025Q4", "+2026SY..01", "+2026SY..02")
    assert periods.step_keys("2026-01..11") == ("@2026H1", *(f"+2026-01..{m:02d}" for m in range(7, 12)))
    assert periods.stored_keys("2026-01..02") == ["2026-01", "2026-02", "@2026-01", "+2026-01..02"]
    assert periods.stored_keys("2026-01..03") == ["2026-01", "2026-02", "2026-03", "@2026Q1"]
    assert [periods.window_step(k) for k in ("2026Q1", "2025Q4", "2026SY", "2025-10", "2026H2", "2026-05")] == [
        ("2026-01", 3), ("2026SY", 12), ("2026SY", 9), ("2026SY", 10), None, None]


def test_systematic_bounds_agree_with_the_exact_422_count() -> None:
    """The shortcut of `units.systematic` (bounds on the checks due) decides as the exact pro-rating does."""
    rng = random.Random(422)
    for _ in range(20000):
        birth = date(2022, 1, 1) + timedelta(days=rng.randint(0, 1500))
        start = birth + timedelta(days=rng.randint(-400, 1000))
        end = start + timedelta(days=rng.randint(0, 400))
        checks = rng.randint(0, 6)
        assert units.systematic(checks, birth, start, end) == (checks >= units.checks_due(birth, start, end)), \
            (checks, birth, start, end)
