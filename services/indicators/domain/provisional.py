"""Final or provisional (终报 / 快报): whether a value of a period can still change as records arrive on time.

A case anchored in a period may still gain what its look-ahead window allows after the period ends: a woman
delivered on 30 September counts for 产后访视率 if visited by 28 October; a baby born that day for 新生儿访视率
if visited within 28 days. Until the window of every case of the period has closed, the value is provisional
(the number is exact for what has been recorded, but the records due are not all due yet). A period that has
not ended is provisional too. Windows come from the attributes an indicator's counts filter on, so a catalogue
change needs no code here unless it introduces a new look-ahead attribute.
"""
from __future__ import annotations

from datetime import date, timedelta

from indicators.domain import periods
from indicators.domain.catalogue import Count, Indicator
from indicators.domain.units import NEWBORN_VISIT_DAYS, POSTPARTUM_VISIT_DAYS

#: attribute of a counted entity → days after the case's anchor in which a record can still change it
LOOK_AHEAD_DAYS: dict[str, int] = {
    "postpartum_visit_28d": POSTPARTUM_VISIT_DAYS,   # 产后访视 within 28 days of the delivery
    "systematic_management": POSTPARTUM_VISIT_DAYS,  # 系统管理 needs that postpartum visit
    "newborn_visit_28d": NEWBORN_VISIT_DAYS,         # 新生儿访视 within 28 days of birth
    "hbig_hours": 1,                                 # HBIG within 24 hours of birth
    # a maternal infection test at labour is accepted up to 2 days from the delivery (decision 34)
    "hiv_tested": 2, "syphilis_tested": 2, "hbsag_tested": 2, "mother_hbsag_positive": 2,
}


def _window(c: Count | None) -> int:
    if c is None:
        return 0
    return max((LOOK_AHEAD_DAYS.get(cond.attr, 0) for cond in c.where), default=0)


def look_ahead_days(ind: Indicator) -> int:
    """The longest look-ahead window of the indicator's numerator and denominator."""
    return max(_window(ind.numerator), _window(ind.denominator))


def final_on(ind: Indicator, period_key: str) -> date:
    """The first day (China time) on which the indicator's value for the period is final."""
    return periods.parse(period_key).end + timedelta(days=look_ahead_days(ind) + 1)


def status(ind: Indicator, period_key: str, today: date) -> dict[str, object]:
    """`final` and `final_on` for a value row (the API, the tables and the dashboards show them)."""
    on = final_on(ind, period_key)
    return {"final": today >= on, "final_on": on.isoformat()}
