"""Targets: what is accepted, red / amber / green, and decomposition by largest remainders. Hand-computed."""
from __future__ import annotations

from decimal import Decimal

import pytest
from kit.records import DomainError

from indicators.domain import catalogue
from indicators.domain import targets as t

CAT = catalogue.load().by_code()


def test_count_targets_are_whole_tasks_and_rate_targets_bounded_by_the_factor() -> None:
    assert t.check(CAT["live_births"], 500, None) == (Decimal(500), ">=")
    assert t.check(CAT["systematic_management_rate"], 85, None) == (Decimal("85.00"), ">=")
    assert t.check(CAT["caesarean_rate"], 40, "<=") == (Decimal("40.00"), "<=")
    for code, target, comp, field in (("live_births", 12.5, None, "target"), ("live_births", 5, "<=", "comparison"),
                                      ("caesarean_rate", 101, None, "target"), ("caesarean_rate", 0, None, "target"),
                                      ("caesarean_rate", float("inf"), None, "target")):
        with pytest.raises(DomainError) as e:
            t.check(CAT[code], target, comp)
        assert e.value.errors[0]["field"] == field, (code, target)


def test_status_green_amber_red() -> None:
    # at least 85 %: amber down to 85 − 4.25
    assert [t.status(v, Decimal(85), ">=", is_count=False) for v in (85, 80.75, 80.74, None)] == [
        "green", "amber", "red", None]
    # at most 40 %: amber up to 42
    assert [t.status(v, Decimal(40), "<=", is_count=False) for v in (40, 42, 42.01)] == ["green", "amber", "red"]
    # a task of 500: amber from 450
    assert [t.status(v, Decimal(500), ">=", is_count=True) for v in (500, 450, 449)] == ["green", "amber", "red"]
    assert t.evaluate(CAT["live_births"], 688, 688, Decimal(500), ">=")["completion"] == 137.6


def test_decompose_by_largest_remainders_sums_to_the_whole() -> None:
    assert t.decompose(500, {"a": 1, "b": 1, "c": 1}) == {"a": 167, "b": 167, "c": 166}
    assert t.decompose(100, {"a": 30, "b": 70}) == {"a": 30, "b": 70}
    assert t.decompose(10, {"a": 0, "b": 0}) == {"a": 5, "b": 5}
    parts = t.decompose(1001, {"a": 7, "b": 13, "c": 29, "d": 0})
    assert sum(parts.values()) == 1001 and parts["d"] == 0
    assert t.decompose(5, {}) == {}


def test_filing_deadlines_of_the_statistical_year() -> None:
    from datetime import date

    from indicators.domain import approval
    assert [approval.deadline(k) for k in ("2025Q4", "2026Q1", "2026Q2", "2026Q3", "2026SY", "2026SY..09",
                                           "2026-01..09", "2026", "2026-05", "2026-01..05")] == [
        date(2026, 1, 10), date(2026, 4, 10), date(2026, 7, 10), date(2026, 10, 12), date(2026, 10, 12),
        date(2026, 10, 12), date(2026, 10, 12), date(2027, 1, 10), date(2026, 6, 10), date(2026, 6, 10)]
    c = approval.completeness({"a": ("approved", date(2026, 10, 12)), "b": ("submitted", date(2026, 10, 13)),
                               "c": ("", None)}, date(2026, 10, 12))
    assert (c["expected"], c["submitted"], c["on_time"], c["completeness"], c["timeliness"]) == (
        3, 2, 1, 66.67, 33.33)


def test_approval_levels_with_institutions() -> None:
    from indicators.domain import approval
    annual = approval.configured_levels(report="annual")
    monthly = approval.configured_levels(report="monthly")
    assert annual == (9, 6, 4) and monthly == (99, 9, 6)
    assert approval.configured_levels("county,city") == (6, 4)
    assert approval.level_below("320582", annual) == 9 and approval.level_below("320582101", annual) is None
    assert approval.level_below("320582101", monthly) == 99 and approval.level_below("inst:H1", monthly) is None
    assert approval.level_above("inst:H1", monthly, "320582101001") == "320582101"
    assert approval.level_above("320582101", annual) == "320582" and approval.level_above("3205", annual) is None
    with pytest.raises(ValueError):
        approval.configured_levels("township,hamlet")
    for unit, levels in (("inst:H1", annual), ("inst:a/b", monthly), ("320582101001", annual)):
        with pytest.raises(DomainError) as e:
            approval.check_target("annual", "2025", unit, levels)
        assert e.value.errors[0]["field"] == "unit"
