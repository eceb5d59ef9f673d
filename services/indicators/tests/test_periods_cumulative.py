"""Cumulative periods (累计, 截止N月底) and final/provisional values, hand-computed."""
from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from indicators.domain import catalogue, periods, provisional

CAT = catalogue.load()


@pytest.mark.parametrize("key, start, end", [
    ("2026-01..09", date(2026, 1, 1), date(2026, 9, 30)),
    ("2024-01..02", date(2024, 1, 1), date(2024, 2, 29)),
    ("2026SY..03", date(2025, 10, 1), date(2026, 3, 31)),
    ("2026SY..11", date(2025, 10, 1), date(2025, 11, 30)),
    ("2026SY..09", date(2025, 10, 1), date(2026, 9, 30)),
])
def test_cumulative_parse(key: str, start: date, end: date) -> None:
    p = periods.parse(key)
    assert (p.start, p.end) == (start, end)
    assert p.months()[0] == f"{start.year}-{start.month:02d}" and p.months()[-1] == f"{end.year}-{end.month:02d}"


@pytest.mark.parametrize("bad", ["2026-02..09", "2026-01..13", "2026-01..9", "2026SY..00", "2026Q1..03",
                                 "2026-01..", "..09"])
def test_cumulative_parse_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        periods.parse(bad)


def test_cumulative_periods_equal_to_ordinary_ones_are_stored_as_those() -> None:
    assert [periods.canonical(k) for k in ("2026-01..01", "2026-01..03", "2026-01..06", "2026-01..12",
                                           "2026-01..09")] == ["2026-01", "2026Q1", "2026H1", "2026", "2026-01..09"]
    assert [periods.canonical(k) for k in ("2026SY..10", "2026SY..12", "2026SY..09", "2026SY..03")] == [
        "2025-10", "2025Q4", "2026SY", "2026SY..03"]
    assert periods.stored_keys("2026-01..03") == ["2026-01", "2026-02", "2026-03", "@2026Q1"]


def test_keys_of_lists_every_cumulative_period_containing_the_day_once() -> None:
    for day in (date(2026, 1, 15), date(2026, 5, 31), date(2025, 10, 1), date(2026, 12, 31)):
        keys = periods.keys_of(day)
        assert len(keys) == len(set(keys))
        # every key is its own canonical form, and contains the day
        for k in keys:
            assert periods.canonical(k) == k
            p = periods.parse(k)
            assert p.start <= day <= p.end, (k, day)
        # and every cumulative period containing the day is there, possibly as the ordinary one it equals
        y, sy = day.year, day.year + 1 if day.month >= 10 else day.year
        candidates = [f"{y}-01..{n:02d}" for n in range(1, 13)] + [f"{sy}SY..{n:02d}" for n in range(1, 13)]
        for k in candidates:
            p = periods.parse(k)
            if p.start <= day <= p.end:
                assert periods.canonical(k) in keys, (k, day)


def test_a_flow_counts_in_a_cumulative_period_iff_in_one_of_its_months() -> None:
    rng = random.Random(7)
    today = date(2030, 1, 1)
    for _ in range(500):
        day = date(2025, 9, 1) + timedelta(days=rng.randint(0, 500))
        for key in ("2026-01..09", "2026SY..03", "2026-01..03", "2026SY..12"):
            months = periods.parse(key).months()
            assert periods.counts_in(day.isoformat(), key, today) == (day.isoformat()[:7] in months)


def test_targets_apply_to_cumulative_periods_of_the_year() -> None:
    assert periods.target_year("2026-01..09") == 2026 and periods.target_year("2026SY..03") == 2026
    assert periods.target_year("2026Q1") is None


def test_final_after_the_look_ahead_window_closes() -> None:
    by_code = CAT.by_code()
    pp = by_code["postpartum_visit_rate"]
    assert provisional.look_ahead_days(pp) == 28
    assert provisional.look_ahead_days(by_code["newborn_visit_rate"]) == 28
    assert provisional.look_ahead_days(by_code["live_births"]) == 0
    # 1–9月: the 28-day postpartum visit of a woman delivered on 30 September is due by 28 October
    assert provisional.final_on(pp, "2026-01..09") == date(2026, 10, 29)
    assert provisional.status(pp, "2026-01..09", date(2026, 10, 28))["final"] is False
    assert provisional.status(pp, "2026-01..09", date(2026, 10, 29))["final"] is True
    # a count with no window is final the day after the period ends; a period not over is provisional
    lb = by_code["live_births"]
    assert provisional.status(lb, "2026-09", date(2026, 10, 1)) == {"final": True, "final_on": "2026-10-01"}
    assert provisional.status(lb, "2026-09", date(2026, 9, 30))["final"] is False
