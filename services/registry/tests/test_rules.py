"""Pure registry rules: region table validation, WHO z-scores against hand-computed LMS values, maternal deaths,
encounter checks."""
from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from registry.domain import encounters as enc
from registry.domain.growth import zscores
from registry.domain.model import DomainError, Pregnancy
from registry.domain.regions import RegionTable, parse_csv

TABLE = RegionTable.of(["32", "3205", "320582", "320583", "320583101", "320583101001"])


@pytest.mark.parametrize(("code", "ok"), [
    ("320582999999", True),     # county known, no townships loaded: township/village checked structurally
    ("320584101001", False),    # county not in the table
    ("320583101001", True),     # township and village loaded and known
    ("320583102001", False),    # county has townships loaded: 102 is not one of them
    ("320583101002", False),    # township has villages loaded: 002 is not one of them
    ("3205821010", False),      # not 12 digits
])
def test_residence_codes_are_checked_against_the_table(code: str, ok: bool) -> None:
    assert (TABLE.problem(code) is None) == ok


def test_an_empty_table_checks_the_structure_only() -> None:
    assert RegionTable.of([]).problem("329999001001") is None
    assert RegionTable.of([]).problem("990582101001") is not None


def test_region_file_parsing() -> None:
    assert parse_csv("# comment\ncode,name\n32,江苏省\n320582,张家港市\n") == [("32", "江苏省"), ("320582", "张家港市")]
    with pytest.raises(ValueError):
        parse_csv("code,name\n3205X,bad\n")


def lms_z(x: float, L: float, M: float, S: float) -> float:
    return float(((x / M) ** L - 1) / (L * S))


def test_z_scores_match_values_derived_by_hand_from_the_who_lms_tables() -> None:
    # WHO 2006 weight-for-age at birth: boys L=0.3487 M=3.3464 S=0.14602; girls L=0.3809 M=3.2322 S=0.14171;
    # length-for-age at birth, boys: L=1 M=49.8842 S=0.03795
    boy = zscores("M", 0, 4.0, 52.0)
    assert boy.weight_for_age == pytest.approx(lms_z(4.0, 0.3487, 3.3464, 0.14602), abs=1e-3)  # 1.26
    assert boy.height_for_age == pytest.approx(lms_z(52.0, 1, 49.8842, 0.03795), abs=1e-3)  # 1.12
    girl = zscores("F", 0, 2.9, None)
    assert girl.weight_for_age == pytest.approx(lms_z(2.9, 0.3809, 3.2322, 0.14171), abs=1e-3)  # -0.75
    assert math.isnan(girl.height_for_age) and math.isnan(girl.weight_for_height)
    assert math.isnan(zscores("M", 2000, 18.0, 110.0).weight_for_age)  # beyond 60 months
    assert math.isnan(zscores("M", 100, None, None).weight_for_age)


PREG = Pregnancy("P", "s", "M1", date(2025, 1, 1), date(2025, 2, 20), "H", "320582101001")
MOTHER = enc.Person("M1", "F", date(1995, 1, 1), [(date(1995, 1, 1), "320582101001")])


def test_maternal_death_is_in_pregnancy_or_within_42_days_of_its_end() -> None:
    delivered = PREG.__class__(**{**PREG.__dict__, "delivered_on": date(2025, 10, 1)})
    assert enc.maternal_pregnancy(MOTHER, date(2025, 11, 12), [delivered]) == delivered  # day 42
    assert enc.maternal_pregnancy(MOTHER, date(2025, 11, 13), [delivered]) is None  # day 43
    assert enc.maternal_pregnancy(MOTHER, date(2025, 6, 1), [PREG]) == PREG  # still pregnant
    assert enc.maternal_pregnancy(MOTHER, date(2024, 12, 1), [PREG]) is None  # before the LMP
    man = enc.Person("X", "M", date(1990, 1, 1))
    assert enc.maternal_pregnancy(man, date(2025, 6, 1), [PREG]) is None


def test_prenatal_visit_rules() -> None:
    errs, body = enc.prenatal_visit(PREG, MOTHER, date(2025, 4, 1), {"risk_grade": "red"})
    assert not errs and body["gestational_days"] == (date(2025, 4, 1) - PREG.lmp_date).days
    errs, _ = enc.prenatal_visit(PREG, MOTHER, date(2024, 12, 31), {})
    assert [e["field"] for e in errs] == ["occurred_at"]
    errs, _ = enc.prenatal_visit(PREG, MOTHER, date(2025, 4, 1), {"gestational_weeks": 45})
    assert [e["field"] for e in errs] == ["gestational_weeks"]
    dead = enc.Person("M1", "F", date(1995, 1, 1), died_on=date(2025, 3, 1))
    errs, _ = enc.prenatal_visit(PREG, dead, date(2025, 4, 1), {})
    assert [e["field"] for e in errs] == ["occurred_at"]


def test_a_second_delivery_closes_nothing_twice() -> None:
    closed = PREG.__class__(**{**PREG.__dict__, "delivered_on": date(2025, 10, 1)})
    with pytest.raises(DomainError) as e:
        enc.delivery(closed, MOTHER, date(2025, 10, 2), {"place": "hospital", "mode": "vaginal", "babies": []}, [],
                     False)
    assert e.value.status == 409


def test_live_births_become_children_resident_with_the_mother() -> None:
    on = PREG.lmp_date + timedelta(days=270)
    errs, body, kids = enc.delivery(PREG, MOTHER, on, {"place": "hospital", "mode": "vaginal", "babies": [
        {"sex": "F", "birth_weight_g": 3000, "outcome": "live"}, {"sex": "M", "outcome": "stillbirth"}]}, [], False)
    assert not errs and len(kids) == 1 and body["babies"][1]["child_id"] is None
    assert (kids[0].mother_id, kids[0].born_in, kids[0].residence) == ("M1", "P", [(on, "320582101001")])
    # a correction keeps the child ids it gave
    _, again, kids2 = enc.delivery(PREG, MOTHER, on, {"place": "home", "mode": "vaginal", "babies": [
        {"sex": "F", "birth_weight_g": 3100, "outcome": "live"}]}, body["babies"], True)
    assert not kids2 and again["babies"][0]["child_id"] == kids[0].person_id
