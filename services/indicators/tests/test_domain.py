"""Indicator domain, hand-computed: periods, region roll-up, the 28-week boundary, twins, stillbirths,
rounding, and the catalogue as data."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from indicators.domain import catalogue, periods, regions, units
from indicators.domain.facts import Fact
from indicators.domain.values import value
from indicators.engine import counter_delta, expand

CAT = catalogue.load()


def test_period_keys_include_the_statistical_year() -> None:
    assert periods.keys_of(date(2021, 9, 30))[:5] == ("2021-09", "2021Q3", "2021H2", "2021", "2021SY")
    assert periods.keys_of(date(2021, 10, 1))[:5] == ("2021-10", "2021Q4", "2021H2", "2021", "2022SY")
    assert periods.keys_of(date(2021, 6, 30))[2] == "2021H1"


@pytest.mark.parametrize("key, start, end", [
    ("2021SY", date(2020, 10, 1), date(2021, 9, 30)),
    ("2021H2", date(2021, 7, 1), date(2021, 12, 31)),
    ("2021Q1", date(2021, 1, 1), date(2021, 3, 31)),
    ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
    ("2021", date(2021, 1, 1), date(2021, 12, 31)),
])
def test_period_parse(key: str, start: date, end: date) -> None:
    p = periods.parse(key)
    assert (p.start, p.end) == (start, end)


@pytest.mark.parametrize("bad", ["21", "2021Q5", "2021H3", "2021-13", "2021sy", "2021-1"])
def test_period_parse_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        periods.parse(bad)


def test_statistical_year_has_twelve_months() -> None:
    assert periods.parse("2022SY").months()[0] == "2021-10" and len(periods.parse("2022SY").months()) == 12


def test_region_prefixes_roll_up_the_tree() -> None:
    assert regions.prefixes("320582101001") == ("", "32", "3205", "320582", "320582101", "320582101001")
    assert regions.child_level("3205") == 6 and regions.child_level("320582") == 9
    assert regions.is_prefix("") and regions.is_prefix("320582101") and not regions.is_prefix("3205821")


def _facts(gest_days: int, babies: list[dict[str, object]], mode: str = "vaginal", place: str = "hospital",
           licensed: bool = True, residence: list[tuple[str, str]] | None = None) -> list[Fact]:
    lmp = date(2021, 1, 1)
    delivered = lmp + timedelta(days=gest_days)
    preg = Fact("pregnancy:P", "pregnancy:P", 1, False,
                {"mother_id": "M", "lmp_date": lmp.isoformat(), "residence_code": "320582101001"})
    enc = Fact("encounter:h/E", "pregnancy:P", 1, False, {
        "type": "delivery", "occurred_on": delivered.isoformat(), "institution_code": "H1",
        "delivery": {"place": place, "mode": mode, "babies": babies, "institution_midwifery_licensed": licensed}})
    out = [preg, enc]
    if residence:
        out.append(Fact("person:M", "person:M", 2, False,
                        {"residence": [{"since": s, "region_code": r} for s, r in residence]}))
    return out


def _counts(facts: list[Fact]) -> dict[tuple[str, str], int]:
    c: dict[tuple[str, str], int] = {}
    for code, part, *_ in units.compute("pregnancy:P", facts, CAT):
        c[(code, part)] = c.get((code, part), 0) + 1
    return c


LIVE = {"sex": "F", "birth_weight_g": 3000, "outcome": "live"}
STILL = {"sex": "M", "birth_weight_g": 2000, "outcome": "stillbirth"}


def test_28_weeks_is_the_threshold_of_a_live_birth_and_a_woman_delivered() -> None:
    assert _counts(_facts(196, [LIVE]))[("live_births", "n")] == 1      # 28+0
    assert _counts(_facts(196, [LIVE]))[("women_delivered", "n")] == 1
    assert _counts(_facts(195, [LIVE])) == {}                           # 27+6: neither


def test_twins_are_two_live_births_and_one_woman() -> None:
    c = _counts(_facts(266, [LIVE, LIVE], mode="caesarean"))
    assert c[("live_births", "n")] == 2 and c[("women_delivered", "n")] == 1
    assert c[("caesarean_rate", "n")] == 2 and c[("caesarean_rate", "d")] == 2


def test_a_stillbirth_is_not_a_live_birth_but_the_woman_delivered() -> None:
    c = _counts(_facts(266, [LIVE, STILL]))
    assert c[("live_births", "n")] == 1 and c[("women_delivered", "n")] == 1
    c = _counts(_facts(266, [STILL]))
    assert ("live_births", "n") not in c and c[("women_delivered", "n")] == 1


def test_facility_delivery_needs_a_hospital_place_and_a_licensed_institution() -> None:
    assert _counts(_facts(266, [LIVE]))[("hospital_delivery_rate", "n")] == 1
    assert ("hospital_delivery_rate", "n") not in _counts(_facts(266, [LIVE], place="home"))
    assert ("hospital_delivery_rate", "n") not in _counts(_facts(266, [LIVE], licensed=False))
    assert _counts(_facts(266, [LIVE], place="home"))[("hospital_delivery_rate", "d")] == 1


def test_region_is_the_mothers_residence_on_the_delivery_date() -> None:
    facts = _facts(266, [LIVE], residence=[("1990-01-01", "320582101001"), ("2021-09-24", "320582102003")])
    (region,) = {c[3] for c in units.compute("pregnancy:P", facts, CAT)}
    assert region == "320582102003"  # moved on 2021-09-24, delivered 2021-09-24 (day 266)
    facts = _facts(266, [LIVE], residence=[("1990-01-01", "320582101001"), ("2021-09-25", "320582102003")])
    (region,) = {c[3] for c in units.compute("pregnancy:P", facts, CAT)}
    assert region == "320582101001"


def test_a_voided_delivery_contributes_nothing() -> None:
    facts = _facts(266, [LIVE])
    facts[1] = Fact(facts[1].record_key, facts[1].subject_key, 2, True, facts[1].body)
    assert units.compute("pregnancy:P", facts, CAT) == []


def test_counter_delta_retracts_the_old_and_adds_the_new() -> None:
    old = [("live_birth", "2021-09-30", "320582101001", "H1", 1)]
    new = [("live_birth", "2021-10-01", "320582101001", "H1", 1)]
    d = counter_delta(old, new)
    assert d[("2021-09", "3205", "", "live_birth")] == -1
    assert d[("2021-10", "3205", "", "live_birth")] == 1
    assert d[("2021-10", "320582101001", "H1", "live_birth")] == 1
    assert len(expand(new[0])) == 6 * 2  # stored by month only: 6 region levels × (all, its institution)
    assert expand(("child_u3", "@2021Q3", "320582101001", "", 1))[0][0] == "@2021Q3"


def test_indicators_counting_the_same_population_share_one_measure() -> None:
    by_code = CAT.by_code()
    births = by_code["caesarean_rate"].denominator
    assert births is not None and by_code["live_births"].numerator.key == births.key == "live_birth"
    assert by_code["caesarean_rate"].numerator.key != "live_birth"  # filtered: its own measure
    assert len(CAT.measures) < len(CAT.parts())
    # stored per measure, read per indicator part: the same contributions either way
    facts = _facts(266, [LIVE, LIVE])
    per_part = units.compute("pregnancy:P", facts, CAT)
    per_measure = units.compute_measured("pregnancy:P", facts, CAT)
    assert len(per_measure) < len(per_part)
    expanded = sorted((code, part, *m[1:]) for code, part, key in CAT.parts() for m in per_measure if m[0] == key)
    assert expanded == per_part


def test_reporting_periods_are_sums_of_stored_months_and_their_own_key() -> None:
    assert periods.stored_keys("2021SY") == [*(f"2020-{m}" for m in ("10", "11", "12")),
                                             *(f"2021-{m:02d}" for m in range(1, 10)), "@2021SY"]
    assert periods.stored_keys("2021Q3") == ["2021-07", "2021-08", "2021-09", "@2021Q3"]
    assert periods.stored_keys("2021-09") == ["2021-09", "@2021-09"]
    assert periods.stored_key("2021-09-30") == "2021-09" and periods.stored_key("@2021H2") == "@2021H2"


@pytest.mark.parametrize("n, d, want", [(514, 1290, 39.84), (1, 8, 12.5), (1, 3, 33.33), (2, 3, 66.67),
                                        (5, 0, None), (0, 7, 0.0), (1, 800, 0.13)])
def test_rates_round_half_up_and_are_null_without_denominator(n: int, d: int, want: float | None) -> None:
    assert value(CAT.by_code()["caesarean_rate"], n, d) == want


def test_half_up_not_bankers_rounding() -> None:
    # 1/8 = 12.5 %, 1/16 = 6.25 %, 1/400 = 0.25 %: exact halves at the third decimal round up
    ind = CAT.by_code()["caesarean_rate"]
    assert value(ind, 1, 1600) == 0.06  # 0.0625 → 0.06
    assert value(ind, 1, 3200) == 0.03  # 0.03125 → 0.03
    assert value(ind, 1, 40000) == 0.0  # 0.0025 → 0.00
    assert value(ind, 1, 8000) == 0.01  # 0.0125 → 0.01
    assert value(ind, 1, 2000 * 4) == 0.01


def test_catalogue_is_data_and_a_filter_change_changes_the_count() -> None:
    doc = {"version": 9, "indicators": [{"code": "x", "name_zh": "x", "name_en": "x", "unit": "%", "factor": 100,
                                         "numerator": {"population": "live_birth",
                                                       "where": [["birth_weight_g", "<", 2500]]},
                                         "denominator": {"population": "live_birth"}}]}
    cat = catalogue.parse(doc)
    light = {"sex": "F", "birth_weight_g": 2400, "outcome": "live"}
    got = units.compute("pregnancy:P", _facts(266, [LIVE, light]), cat)
    assert sorted(c[1] for c in got) == ["d", "d", "n"]
