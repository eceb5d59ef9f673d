"""Data-quality score parts (质控评分) as members of a population. Pure.

The quality service evaluates the records and publishes, per institution and month of clinical dates, the counts
behind its scores (`quality.score_parts.changed`, the newest version wins). Each such pair is a unit
``qscore:<institution>:<month>`` whose entities are those counts, weighted, in the population ``quality_month``
(anchor: the month's first day; region: the institution's), one entity per part:

- ``records``: the month's records (timeliness and validity denominator);
- ``timely``: of those, posted within the quality rules' N days (及时率 numerator);
- ``followups_expected`` / ``followups_present``: live births 28+ days old / with a newborn visit (完整率);
- ``open_queries``: queries about the month still open or answered (每百条记录未结质疑数 numerator).

So a year's timeliness is Σ timely / Σ records over its months and institutions, like any other rate of counts.
(`units` imports this module inside its functions: this one builds its Entity.)
"""
from __future__ import annotations

from datetime import date

from indicators.domain.units import Entity, Facts

POPULATION = "quality_month"
PARTS = ("records", "timely", "followups_expected", "followups_present", "open_queries")


def quality_entities(key: str, fs: Facts) -> list[Entity]:
    """One weighted entity per non-zero part of the unit's latest score parts."""
    f = fs.record(key)
    if f is None or f.voided:
        return []
    b = f.body
    month = str(b.get("month") or "")
    if len(month) != 7:
        return []
    anchor = date(int(month[:4]), int(month[5:]), 1)
    region, inst = str(b.get("institution_region") or ""), str(b.get("institution_code") or "")
    return [Entity(POPULATION, anchor, region, inst, {"part": part}, weight=int(b.get(part) or 0))
            for part in PARTS if int(b.get(part) or 0)]
