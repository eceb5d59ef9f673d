"""Population denominators (人口基数) posted by a bureau: total population, women 15–49, married women 15–49,
women 35–64, children by age — for a region and a year. Pure.

They are not derived from the registry: the registry knows the people who used a service, the bureau knows
(from the statistics bureau / 公安户籍 / its own 人口台账) how many live there. A figure is a fact of the
engine like an event (`population:<region>:<kind>:<year>`, filed under the unit `population:<region>:<kind>`),
so it is stored, recomputed, reconciled and back-filled like every other input.

A year's figure is a standing quantity (期末数) of that year only: it enters at the year's January and leaves
at the next January, so a period ending in year Y — its months, quarters, the year itself — divides by Y's
figure, and a year without a figure has none (the rate is null, not last year's). A figure counts at its own
region and every region above it (a county's figure in its city); a bureau posts one level per kind and year
(a county and its townships both posted would count twice, so the API refuses the second).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from kit.records import fail

#: kind → 中文, what a bureau posts
KINDS: dict[str, str] = {
    "total": "总人口",
    "women_15_49": "育龄妇女数(15-49岁)",
    "married_women_15_49": "已婚育龄妇女数",
    "women_35_64": "35-64岁妇女数(两癌应检)",
    "children_under1": "1岁以下儿童数",
    "children_under3": "3岁以下儿童数",
    "children_under5": "5岁以下儿童数",
    "children_under7": "7岁以下儿童数",
}
POPULATION = "population_figure"
MAX_VALUE = 2 * 10**9  # above China's population: a typo


def record_key(region: str, kind: str, year: int) -> str:
    return f"population:{region}:{kind}:{year}"


def unit_key(region: str, kind: str) -> str:
    return f"population:{region}:{kind}"


def check(region: str, kind: str, year: int, value: int) -> None:
    """Field errors name `kind` / `value` (the region is checked by the caller's scope)."""
    if kind not in KINDS:
        raise fail("kind", f"must be one of {', '.join(KINDS)}")
    if not 0 <= value <= MAX_VALUE:
        raise fail("value", f"a population is a whole number from 0 to {MAX_VALUE}")


def overlapping(region: str, others: Iterable[str]) -> list[str]:
    """The posted regions of the same kind and year that lie above or below `region` (counting both would add
    the same people twice)."""
    return sorted(o for o in others if o != region and (o.startswith(region) or region.startswith(o)))


def population_entities(body_by_year: Iterable[dict[str, Any]]) -> list[tuple[str, date, str, int]]:
    """(kind, anchor, region, weight) of the standing contributions of one region's figures of one kind: each
    year's value enters at 1 January and leaves at the next 1 January."""
    out = []
    for b in body_by_year:
        v, y = int(b.get("value", 0)), int(b["year"])
        if v:
            out.append((b["kind"], date(y, 1, 1), b["region"], v))
            out.append((b["kind"], date(y + 1, 1, 1), b["region"], -v))
    return out
