"""From stored counts to reported values: value = numerator ÷ denominator × factor, half-up to 2 places."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from indicators.domain.catalogue import Indicator


def value(ind: Indicator, numerator: int, denominator: int | None) -> float | int | None:
    if ind.denominator is None:
        return numerator
    if not denominator:
        return None
    v = (Decimal(numerator) * ind.factor / Decimal(denominator)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return float(v)


def completion_value(achieved: int, target: int) -> float | None:
    """任务完成率: achieved ÷ target × 100, half-up to 2 places (seed 000: 688 ÷ 500 → 137.6)."""
    if not target:
        return None
    return float((Decimal(achieved) * 100 / Decimal(target)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
