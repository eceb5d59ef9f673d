"""Result validation, subject checks and the follow-up case life, as pure functions."""
from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from screening.domain import followup, model
from screening.domain.followup import Case
from screening.domain.model import DomainError, PersonInfo, PregnancyInfo

BASE = {"screening_id": "S1", "source": "his", "subject_id": "x", "performed_on": "2026-05-01",
        "institution_code": "H1"}
MOTHER = PersonInfo("m", "F", date(1994, 5, 6), [("1994-05-06", "320582001001"), ("2026-03-01", "320582002001")])
CHILD = PersonInfo("c", "M", date(2026, 10, 1), [("2026-10-01", "320582001001")], "m")
PREG = PregnancyInfo("P1", "m", date(2026, 1, 10), date(2026, 3, 1), "320582001001", False, date(2026, 10, 12))


def errors(body: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(DomainError) as e:
        model.parse({**BASE, **body})
    return e.value.errors


def fields(errs: list[dict[str, str]]) -> list[str]:
    return [e["field"] for e in errs]


def test_a_risk_ratio_that_is_not_a_ratio_names_the_field() -> None:
    errs = errors({"type": "prenatal_serum", "t21_risk": "0.0037", "t18_risk": "1/5000", "ntd_risk": "low"})
    assert fields(errs) == ["t21_risk"] and "1/N" in errs[0]["reason"]
    assert fields(errors({"type": "prenatal_serum", "t21_risk": "1/0", "t18_risk": "1/5000",
                          "ntd_risk": "low"})) == ["t21_risk"]
    assert fields(errors({"type": "prenatal_serum", "t21_risk": "1/300", "t18_risk": 300, "ntd_risk": "x"})) == [
        "t18_risk", "ntd_risk"]


def test_unknown_type_unknown_field_partner_where_none_belongs() -> None:
    assert fields(errors({"type": "eye_test"})) == ["type"]
    assert fields(errors({"type": "cfdna", "result": "high_risk", "colour": "red"})) == ["colour"]
    assert fields(errors({"type": "cervical", "method": "hpv", "result": "normal", "partner_id": "p"})) == [
        "partner_id"]
    assert fields(errors({"type": "newborn_metabolic", "conditions": {"pku": "negative"}})) == ["conditions"]
    assert fields(errors({"type": "breast", "method": "ultrasound", "birads": 7})) == ["birads"]
    assert fields(errors({"type": "prepregnancy_exam", "at_risk": False, "risk_factors": ["x"]})) == ["body"]
    assert fields(errors({"type": "cfdna", "result": "high_risk", "performed_on": "2026-13-01"})) == ["performed_on"]


def test_future_dates_are_refused() -> None:
    with pytest.raises(DomainError) as e:
        model.check_dates(date(2026, 5, 2), date(2026, 5, 1))
    assert fields(e.value.errors) == ["performed_on"]


def test_a_newborn_screen_on_an_adult_is_refused() -> None:
    spec = model.TYPES["newborn_metabolic"]
    errs = model.check_person_subject("newborn_metabolic", spec, MOTHER, date(2026, 5, 1))
    assert fields(errs) == ["subject_id"] and "infants" in errs[0]["reason"]
    assert model.check_person_subject("newborn_metabolic", spec, CHILD, date(2026, 10, 4)) == []
    assert fields(model.check_person_subject("newborn_metabolic", spec, CHILD, date(2026, 9, 30))) == ["performed_on"]


def test_women_only_screens_and_adult_only_exams() -> None:
    man = PersonInfo("h", "M", date(1990, 1, 1))
    assert fields(model.check_person_subject("cervical", model.TYPES["cervical"], man, date(2026, 5, 1))) == [
        "subject_id"]
    assert fields(model.check_person_subject("premarital_exam", model.TYPES["premarital_exam"], CHILD,
                                             date(2026, 11, 1))) == ["subject_id"]
    assert fields(model.check_person_subject("nutrition_pack", model.TYPES["nutrition_pack"], CHILD,
                                             date(2026, 11, 1))) == ["subject_id"]


def test_hbig_hours_must_fit_the_day() -> None:
    assert model.check_hbig_hours(10, CHILD, date(2026, 10, 1)) == []
    assert fields(model.check_hbig_hours(200, CHILD, date(2026, 10, 1))) == ["hours_after_birth"]


def test_pregnancy_screens_in_their_gestation_window() -> None:
    serum = model.PrenatalSerumIn(t21_risk="1/300", t18_risk="1/400", ntd_risk="low")
    spec = model.TYPES["prenatal_serum"]
    assert model.check_pregnancy_subject("prenatal_serum", spec, PREG, date(2026, 5, 2), serum) == []  # 16+0
    on = date(2026, 7, 1)
    errs = model.check_pregnancy_subject("prenatal_serum", spec, PREG, on, serum)
    gd = (on - PREG.lmp_date).days
    assert fields(errs) == ["performed_on"] and f"{gd // 7}+{gd % 7} weeks" in errs[0]["reason"]
    voided = PregnancyInfo("P2", "m", date(2026, 1, 10), date(2026, 3, 1), "320582001001", True)
    assert fields(model.check_pregnancy_subject("prenatal_serum", spec, voided, date(2026, 5, 2), serum)) == [
        "subject_id"]


def test_infection_test_timing_against_the_delivery() -> None:
    spec = model.TYPES["maternal_infection_test"]
    during = model.MaternalInfectionTestIn(infection="hiv", timing="pregnancy", result="negative")
    labour = model.MaternalInfectionTestIn(infection="hiv", timing="labour", result="negative")
    assert model.check_pregnancy_subject("maternal_infection_test", spec, PREG, date(2026, 3, 1), during) == []
    assert fields(model.check_pregnancy_subject("maternal_infection_test", spec, PREG, date(2026, 10, 20),
                                                during)) == ["performed_on"]
    assert model.check_pregnancy_subject("maternal_infection_test", spec, PREG, date(2026, 10, 12), labour) == []
    assert fields(model.check_pregnancy_subject("maternal_infection_test", spec, PREG, date(2026, 6, 1),
                                                labour)) == ["performed_on"]


def test_residence_on_a_date() -> None:
    assert MOTHER.residence_on(date(2026, 2, 28)) == "320582001001"
    assert MOTHER.residence_on(date(2026, 3, 1)) == "320582002001"
    assert MOTHER.residence_on(date(1990, 1, 1)) == "320582001001"


def test_idempotency_decisions() -> None:
    assert model.decide_version(None, None, "h", None).action == "create"
    assert model.decide_version(1, "h", "h", None).action == "unchanged"
    assert model.decide_version(1, "h", "g", 2) == model.Decision("correct", 2)
    for v in (None, 1):
        with pytest.raises(DomainError) as e:
            model.decide_version(1, "h", "g", v)
        assert e.value.status == 409


def _case() -> Case:
    return Case("c1", "newborn_metabolic", "positive", "person:c", "c", None, "320582001001", "H1",
                date(2026, 10, 4), date(2026, 10, 11), "his", "S1")


def test_a_case_life_open_actions_closed() -> None:
    c = _case()
    today = date(2026, 11, 1)
    assert c.overdue(date(2026, 10, 12)) and not c.overdue(date(2026, 10, 11))
    c, changed = followup.add_action(c, "contacted", date(2026, 10, 5), today)
    assert changed and c.version == 2 and c.managed()
    same, changed = followup.add_action(c, "contacted", date(2026, 10, 5), today)
    assert not changed and same == c  # a retry of the last action
    c, _ = followup.add_action(c, "diagnosed", date(2026, 10, 8), today, outcome="ch_confirmed")
    c, _ = followup.add_action(c, "closed", date(2026, 10, 10), today, outcome="treated")
    assert (c.status, c.closed_on, c.outcome, c.version) == ("closed", date(2026, 10, 10), "treated", 4)
    assert not c.overdue(today)
    with pytest.raises(DomainError) as e:
        followup.add_action(c, "contacted", date(2026, 10, 20), today)
    assert e.value.status == 409


def test_action_validation() -> None:
    c = _case()
    today = date(2026, 11, 1)
    for action, on, outcome, field in [("contacted", date(2026, 10, 3), None, "on"),
                                       ("contacted", date(2026, 11, 2), None, "on"),
                                       ("closed", date(2026, 10, 5), None, "outcome"),
                                       ("phoned", date(2026, 10, 5), None, "action")]:
        with pytest.raises(DomainError) as e:
            followup.add_action(c, action, on, today, outcome=outcome)
        assert fields(e.value.errors) == [field]
    c, _ = followup.add_action(c, "contacted", date(2026, 10, 9), today)
    with pytest.raises(DomainError) as e:
        followup.add_action(c, "treated", date(2026, 10, 8), today)
    assert fields(e.value.errors) == ["on"]
    lost, _ = followup.add_action(c, "lost", date(2026, 10, 20), today)
    assert (lost.status, lost.outcome) == ("closed", "lost")


def test_correction_closes_with_a_reason_and_a_later_one_reopens() -> None:
    c = _case()
    closed = followup.close_for(c, date(2026, 10, 6), "result corrected to normal")
    assert (closed.status, closed.closed_reason, closed.outcome, closed.version) == (
        "closed", "result corrected to normal", None, 2)
    again = followup.reopen(closed, "positive", date(2026, 10, 11))
    assert (again.status, again.closed_reason, again.version) == ("open", None, 3)
    done, _ = followup.add_action(c, "closed", date(2026, 10, 5), date(2026, 11, 1), outcome="normal")
    assert followup.reopen(done, "positive", date(2026, 10, 11)) == done
