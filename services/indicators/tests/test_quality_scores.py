"""Hand-computed tests of the data-quality figures (质控评分): the quality service's score-parts events become the
units ``qscore:<institution>:<month>``, whose weighted parts are the three indicators' numerators and denominators,
summed over months and institutions like any other count."""
from __future__ import annotations

from collections import Counter
from datetime import date

from kit.events import NewEvent, envelope
from mch.events.v1 import quality_pb2 as qpb

from indicators.domain import periods, units
from indicators.domain.facts import Fact
from indicators.domain.values import value
from indicators.events.translate import to_facts
from indicators.tests.test_rules import CAT

REGION = "321324100001"  # the institution's 12-digit region


def parts_event(inst: str, month: str, records: int, timely: int, expected: int, present: int, open_q: int,
                version: int = 1) -> Fact:
    """A quality.score_parts.changed event as the quality service publishes it, read by the indicators."""
    msg = qpb.ScorePartsChanged(institution_code=inst, institution_region=REGION, month=month, records=records,
                                timely=timely, followups_expected=expected, followups_present=present,
                                open_queries=open_q, timeliness_days=7, version=version)
    env = envelope(NewEvent("quality.score_parts.changed", msg, f"quality-score:{inst}:{month}", REGION),
                   "quality")
    [fact] = to_facts(env)
    return fact


def tally(facts: list[Fact], period: str) -> Counter[tuple[str, str]]:
    """What the units add to `period` (each fact is its own unit, as the engine files it)."""
    out: Counter[tuple[str, str]] = Counter()
    for f in facts:
        for code, part, when, region, inst, weight in units.compute(f.subject_key, [f], CAT):
            assert region == REGION and inst == f.body["institution_code"]
            if period in periods.keys_of(date.fromisoformat(when)):
                out[(code, part)] += weight
    return out


def test_one_month_gives_the_three_figures() -> None:
    f = parts_event("H1", "2026-03", records=40, timely=30, expected=10, present=7, open_q=2)
    assert f.record_key == f.subject_key == "qscore:H1:2026-03" and f.version == 1
    c = tally([f], "2026-03")
    assert c[("quality_timeliness_rate", "n")] == 30 and c[("quality_timeliness_rate", "d")] == 40
    assert c[("quality_completeness_rate", "n")] == 7 and c[("quality_completeness_rate", "d")] == 10
    assert c[("quality_open_queries_per_100", "n")] == 2 and c[("quality_open_queries_per_100", "d")] == 40
    by = CAT.by_code()
    assert value(by["quality_timeliness_rate"], 30, 40) == 75.0                # 30 / 40 × 100
    assert value(by["quality_completeness_rate"], 7, 10) == 70.0               # 7 / 10 × 100
    assert value(by["quality_open_queries_per_100"], 2, 40) == 5.0             # 2 per 40 records = 5 per 100


def test_a_year_sums_the_months_and_institutions() -> None:
    # H1: March 40 records (30 timely), April 20 (20 timely); H2: March 10 (1 timely), 3 open queries
    facts = [parts_event("H1", "2026-03", 40, 30, 10, 7, 2), parts_event("H1", "2026-04", 20, 20, 5, 5, 1),
             parts_event("H2", "2026-03", 10, 1, 0, 0, 3)]
    c = tally(facts, "2026")
    assert (c[("quality_timeliness_rate", "n")], c[("quality_timeliness_rate", "d")]) == (30 + 20 + 1, 40 + 20 + 10)
    assert (c[("quality_completeness_rate", "n")], c[("quality_completeness_rate", "d")]) == (7 + 5, 10 + 5)
    assert (c[("quality_open_queries_per_100", "n")], c[("quality_open_queries_per_100", "d")]) == (2 + 1 + 3, 70)
    q1 = tally(facts, "2026Q1")  # April is not in the first quarter
    assert q1[("quality_timeliness_rate", "d")] == 50 and q1[("quality_open_queries_per_100", "n")] == 5


def test_a_month_without_records_adds_nothing_and_a_newer_version_replaces_the_parts() -> None:
    empty = parts_event("H1", "2026-05", 0, 0, 0, 0, 0)
    assert not units.compute(empty.subject_key, [empty], CAT)
    # the unit reads its one record: the engine keeps the highest version of it, whose parts are the unit's
    newer = parts_event("H1", "2026-03", 41, 31, 10, 8, 1, version=2)
    c = tally([newer], "2026-03")
    assert c[("quality_timeliness_rate", "n")] == 31 and c[("quality_open_queries_per_100", "n")] == 1
    assert units.unit_kind(newer.subject_key) == "qscore"
