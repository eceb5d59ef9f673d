"""Targets (任务数 / 目标值) and how far a value is from them. Pure.

A count target is an annual task (任务数: 婚检 500 对); its completion is achieved ÷ target × 100. A rate target is
a level to reach (`>=`, 孕产妇系统管理率 ≥ 85 %) or not to exceed (`<=`, 剖宫产率 ≤ 40 %). A value is green when it
meets the target; amber when it misses by at most AMBER (a tenth of the target for a count by the year's end,
5 % of the target for a rate); red beyond. A county's target is decomposed to its townships (任务分解) in
proportion to a basis (e.g. last year's count), by largest remainders, so the parts sum to the whole exactly.
"""
from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

from kit.records import fail

from indicators.domain.catalogue import Indicator
from indicators.domain.values import completion_value

AMBER_RATE = Decimal("0.05")
AMBER_COUNT = Decimal("0.10")
#: upper bounds that keep a target meaningful (a count task of a province is far below this)
MAX_COUNT = 10**9


def check(ind: Indicator, target: float, comparison: str | None) -> tuple[Decimal, str]:
    """The target as stored, and its comparison; field errors name `target` / `comparison`."""
    t = Decimal(str(target))
    if not t.is_finite() or t <= 0:
        raise fail("target", "must be a positive number")
    if ind.denominator is None:
        if t != t.to_integral_value() or t > MAX_COUNT:
            raise fail("target", f"a count target (任务数) is a whole number of at most {MAX_COUNT}")
        if comparison not in (None, ">="):
            raise fail("comparison", "a count target is a task to reach (>=)")
        return t, ">="
    if t > ind.factor:
        raise fail("target", f"a rate target is at most {ind.factor} ({ind.unit})")
    if comparison not in (None, ">=", "<="):
        raise fail("comparison", "must be >= (at least) or <= (at most)")
    return t.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), comparison or ">="


def status(value: float | int | None, target: Decimal, comparison: str, *, is_count: bool) -> str | None:
    """green / amber / red (None when there is no value)."""
    if value is None:
        return None
    v = Decimal(str(value))
    margin = target * (AMBER_COUNT if is_count else AMBER_RATE)
    if comparison == "<=":
        return "green" if v <= target else "amber" if v <= target + margin else "red"
    return "green" if v >= target else "amber" if v >= target - margin else "red"


def evaluate(ind: Indicator, value: float | int | None, numerator: int, target: Decimal,
             comparison: str) -> dict[str, object]:
    """What a value row shows about its target."""
    is_count = ind.denominator is None
    out: dict[str, object] = {"target": int(target) if is_count else float(target), "comparison": comparison,
                              "status": status(value, target, comparison, is_count=is_count)}
    if is_count:
        out["completion"] = completion_value(numerator, int(target))
    return out


def decompose(total: int, basis: Mapping[str, int]) -> dict[str, int]:
    """Split a count target over units in proportion to `basis` (equal shares when the basis is all zero),
    by largest remainders: the parts are whole and sum to `total`."""
    if not basis:
        return {}
    weights = dict(basis) if any(basis.values()) else {k: 1 for k in basis}
    whole = sum(weights.values())
    exact = {k: Decimal(total) * w / whole for k, w in weights.items()}
    parts = {k: int(v) for k, v in exact.items()}
    left = total - sum(parts.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - parts[k]), k))[:left]:
        parts[k] += 1
    return parts
