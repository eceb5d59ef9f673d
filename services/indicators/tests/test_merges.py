"""Merged subjects (合并) in the pure unit rules: a merged-away unit has no entities, the canonical unit reads the
merged subjects' facts as its own, and a merge fact's aliases vanish when it is unmerged."""
from __future__ import annotations

from datetime import date, timedelta

from indicators.domain import merges, units
from indicators.domain.facts import Fact

LMP = date(2025, 1, 10)
HOME = "320582101001"


def _person(pid: str) -> Fact:
    return Fact(f"person:{pid}", f"person:{pid}", 1, False, {
        "person_id": pid, "sex": "F", "birth_date": "1994-05-06", "residence": [{"since": "", "region_code": HOME}]})


def _pregnancy(pid: str, mother: str, lmp: date, booked: date) -> Fact:
    return Fact(f"pregnancy:{pid}", f"pregnancy:{pid}", 1, False, {
        "pregnancy_id": pid, "mother_id": mother, "lmp_date": lmp.isoformat(), "registered_on": booked.isoformat(),
        "residence_code": HOME, "institution_code": "H1"})


FACTS = [_person("A"), _person("B"), _pregnancy("PA", "A", LMP, LMP + timedelta(days=50)),
         _pregnancy("PB", "B", LMP + timedelta(days=4), LMP + timedelta(days=70)),
         Fact("encounter:his/F1", "person:B", 1, False, {
             "type": "folic_acid_dispensed", "occurred_on": (LMP - timedelta(days=30)).isoformat(),
             "encounter_key": "his/F1", "institution_code": "H2"})]
MERGE = Fact("merge:m1", "merge:m1", 1, False, {"merge_id": "m1", "survivor_id": "A", "duplicate_id": "B",
                                                 "pregnancies": [{"duplicate_id": "PB", "survivor_id": "PA"}]})


def _booked(key: str, alias: dict[str, str] | None) -> list[units.Entity]:
    return [e for e in units.entities(key, FACTS, alias) if e.population == "pregnancy_booked"]


def test_two_registrations_of_one_pregnancy_are_booked_once_with_the_care_of_both() -> None:
    alone = _booked("pregnancy:PA", None) + _booked("pregnancy:PB", None)
    assert [e.attrs["folic_acid"] for e in alone] == [False, True]  # B's folic acid is B's pregnancy's
    alias = dict(merges.aliases(MERGE))
    assert alias == {"person:B": "person:A", "pregnancy:PB": "pregnancy:PA"}
    merged = _booked("pregnancy:PA", alias) + _booked("pregnancy:PB", alias)
    assert len(merged) == 1 and merged[0].anchor == LMP + timedelta(days=50) and merged[0].attrs["folic_acid"]
    assert units.entities("person:B", FACTS, alias) == [] and units.dependencies("person:B", FACTS, alias) == []


def test_an_unmerged_merge_says_nothing() -> None:
    unmerged = Fact(MERGE.record_key, MERGE.subject_key, 2, True, MERGE.body)
    assert merges.aliases(unmerged) == [] and merges.is_merge(unmerged.record_key)
