"""Rules of the programme encounters (registry domain/encounters_programmes.py) at their boundaries."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from kit.records import DomainError

from registry.domain import encounters_programmes as rules
from registry.domain.model import Pregnancy

LMP = date(2025, 1, 1)
TODAY = date(2026, 6, 30)
BORN = date(2025, 10, 1)


def preg(ended: date | None = None) -> Pregnancy:
    return Pregnancy("P", "his", "M", LMP, LMP + timedelta(days=40), "H1", "320582101001", delivered_on=ended)


def fields(errs: list[dict[str, str]]) -> list[str]:
    return [e["field"] for e in errs]


@pytest.mark.parametrize("gest, ok", [(195, True), (196, False)])
def test_termination_only_before_28_weeks(gest: int, ok: bool) -> None:
    errs, body = rules.termination(preg(), None, LMP + timedelta(days=gest), {"method": "induced_labour",
                                                                             "reason": "other"}, False)
    assert (errs == []) == ok and body["gestational_days"] == gest


def test_termination_of_an_ended_pregnancy_is_a_conflict_unless_it_corrects_itself() -> None:
    with pytest.raises(DomainError):
        rules.termination(preg(LMP + timedelta(days=60)), None, LMP + timedelta(days=70),
                          {"method": "vacuum_aspiration", "reason": "elective"}, False)
    errs, _ = rules.termination(preg(LMP + timedelta(days=60)), None, LMP + timedelta(days=62),
                                {"method": "vacuum_aspiration", "reason": "elective"}, True)
    assert errs == []


@pytest.mark.parametrize("after_end, ok", [(42, True), (43, False)])
def test_near_miss_up_to_42_days_after_the_end(after_end: int, ok: bool) -> None:
    end = LMP + timedelta(days=270)
    errs, _ = rules.near_miss(preg(end), None, end + timedelta(days=after_end), {"cause_category": "other"})
    assert (errs == []) == ok


@pytest.mark.parametrize("typ, age_days, extra, ok", [
    ("neonatal_tetanus", 28, {}, True), ("neonatal_tetanus", 29, {}, False),
    ("at_risk_child", 7 * 365, {"conditions": ["anaemia"]}, True),
    ("nursery_health_check", 400, {"role": "staff", "nursery": "x"}, False),
    ("nursery_health_check", 400, {"role": "child", "nursery": "x"}, True),
    ("birth_defect", -1, {"categories": ["other"]}, False)])
def test_person_encounters_by_age(typ: str, age_days: int, extra: dict[str, object], ok: bool) -> None:
    errs, _ = rules.person_encounter(typ, "C", "F", BORN, None, BORN + timedelta(days=age_days), extra, TODAY)
    assert (errs == []) == ok, errs


def test_at_risk_closing_needs_its_outcome_and_a_date_between_enrolment_and_today() -> None:
    on = BORN + timedelta(days=60)
    close = on + timedelta(days=30)

    def check(**f: object) -> list[str]:
        return fields(rules.person_encounter("at_risk_child", "C", "F", BORN, None, on,
                                             {"conditions": ["anaemia"], **f}, TODAY)[0])

    assert check(closed_on=close) == ["outcome"]
    assert check(outcome="recovered") == ["closed_on"]
    assert check(closed_on=on - timedelta(days=1), outcome="recovered") == ["closed_on"]
    assert check(closed_on=close, outcome="recovered") == []


def test_a_review_is_between_the_death_and_today() -> None:
    died = date(2026, 1, 1)
    review = {"cause_category": "pneumonia", "preventability": "unavoidable"}
    assert fields(rules.death_review(died, {**review, "reviewed_on": died - timedelta(days=1)}, TODAY)[0]) == [
        "review.reviewed_on"]
    errs, body = rules.death_review(died, {**review, "reviewed_on": died}, TODAY)
    assert errs == [] and body["review"]["reviewed_on"] == "2026-01-01"
    assert rules.death_review(died, None, TODAY) == ([], {})
