"""The classification rules (rules/*.json) at every boundary, and the rule-set mechanics."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from screening.domain import model, rules
from screening.domain.rules import RuleError, Rules, RuleSet

RULES = rules.load()
V1 = RULES.current


def classify(t: str, **fields: Any) -> rules.Outcome:
    result = model.TYPES[t].model.model_validate(fields)
    return V1.classify(t, result.facts())


def serum(t21: int, t18: int = 100000, ntd: str = "low") -> str:
    return classify("prenatal_serum", t21_risk=f"1/{t21}", t18_risk=f"1/{t18}", ntd_risk=ntd).classification


def test_serum_t21_cutoff_1_in_270_is_high_risk_and_1_in_271_is_not() -> None:
    assert serum(1) == "high_risk"
    assert serum(270) == "high_risk"
    assert serum(271) == "intermediate_risk"
    assert serum(1000) == "intermediate_risk"
    assert serum(1001) == "normal"


def test_serum_t18_cutoff_1_in_350_and_ntd() -> None:
    assert serum(5000, 350) == "high_risk"
    assert serum(5000, 351) == "normal"
    assert serum(5000, 100000, "high") == "high_risk"


def test_high_risk_serum_opens_a_case_due_in_14_days() -> None:
    o = classify("prenatal_serum", t21_risk="1/100", t18_risk="1/9000", ntd_risk="low")
    assert o.followup is not None and o.rule_version == V1.version
    assert o.followup.due_on(date(2026, 5, 1), None) == date(2026, 5, 15)
    assert classify("prenatal_serum", t21_risk="1/500", t18_risk="1/9000", ntd_risk="low").followup is None


def test_cfdna() -> None:
    assert classify("cfdna", result="high_risk").classification == "high_risk"
    assert classify("cfdna", result="no_call").classification == "inconclusive"
    assert classify("cfdna", result="low_risk").classification == "normal"
    assert classify("cfdna", result="low_risk").followup is None


def test_hearing_refer_rescreen_due_at_42_days_of_age() -> None:
    born = date(2026, 10, 1)
    o = classify("newborn_hearing", round="initial", result="refer")
    assert o.classification == "refer" and o.followup is not None
    assert o.followup.due_on(born + timedelta(days=3), born) == born + timedelta(days=42)
    # screened late: never due sooner than min_days after the screen
    assert o.followup.due_on(born + timedelta(days=40), born) == born + timedelta(days=47)
    r = classify("newborn_hearing", round="rescreen", result="refer")
    assert r.followup is not None and r.followup.due_on(born + timedelta(days=42), born) == born + timedelta(days=90)
    assert classify("newborn_hearing", round="initial", result="pass").classification == "normal"


def test_metabolic_any_positive_is_recalled_within_7_days() -> None:
    o = classify("newborn_metabolic", conditions={"pku": "negative", "ch": "positive"})
    assert o.classification == "positive" and o.followup is not None
    assert o.followup.due_on(date(2026, 10, 4), date(2026, 10, 1)) == date(2026, 10, 11)
    assert classify("newborn_metabolic", conditions={"pku": "negative", "ch": "negative",
                                                     "g6pd": "positive"}).classification == "positive"
    assert classify("newborn_metabolic", conditions={"pku": "negative", "ch": "negative"}).classification == "normal"


def test_premarital_positive_before_findings() -> None:
    f = [{"code": "congenital_heart_disease", "affects_marriage": True}]
    assert classify("premarital_exam", findings=f, hiv="positive", syphilis="negative",
                    hbsag="negative").classification == "positive"
    assert classify("premarital_exam", findings=f, hiv="negative", syphilis="not_done",
                    hbsag="negative").classification == "abnormal"
    no = [{"code": "myopia", "affects_marriage": False}]
    assert classify("premarital_exam", findings=no, hiv="negative", syphilis="negative",
                    hbsag="negative").classification == "normal"


def test_other_types() -> None:
    assert classify("prepregnancy_exam", at_risk=True, risk_factors=["age_35_plus"]).classification == "at_risk"
    assert classify("prepregnancy_exam", at_risk=False).classification == "normal"
    assert classify("maternal_infection_test", infection="syphilis", timing="pregnancy",
                    result="positive").followup is not None
    assert classify("hbig", hours_after_birth=24).classification == "timely"
    assert classify("hbig", hours_after_birth=24.5).classification == "late"
    assert classify("cervical", method="hpv", result="abnormal").classification == "abnormal"
    assert [classify("breast", method="ultrasound", birads=b).classification for b in range(7)] == [
        "abnormal", "normal", "normal", "probably_benign", "abnormal", "abnormal", "abnormal"]
    assert classify("thalassaemia", result="carrier").classification == "carrier"
    assert classify("nutrition_pack", packs=30).classification == "normal"


def test_every_contract_type_has_rules() -> None:
    assert set(V1.types) == set(model.TYPES)


def _set(version: str, since: str, t21: int) -> RuleSet:
    d = {"version": version, "effective_from": since, "types": {"prenatal_serum": [
        {"when": {"fact": "t21_risk_n", "le": t21}, "classification": "high_risk"}]},
        "cases": {"pregnancy_high_risk": {"grades": ["red"], "due_days": 7, "action": "x"}}}
    return RuleSet.from_dict(d)


def test_the_rule_set_in_force_on_the_screening_date_is_used() -> None:
    rs = Rules([_set("a", "2020-01-01", 270), _set("b", "2026-07-01", 300)])
    facts = {"t21_risk_n": 290}
    assert rs.for_date(date(2026, 6, 30)).classify("prenatal_serum", facts).classification == "normal"
    later = rs.for_date(date(2026, 7, 1)).classify("prenatal_serum", facts)
    assert (later.classification, later.rule_version) == ("high_risk", "b")


@pytest.mark.parametrize("when", [{"fact": "x"}, {"fact": "x", "eq": 1, "lt": 2}, {"any": []},
                                  {"fact": "x", "between": [1]}, {"fact": "x", "like": 1}])
def test_malformed_rules_are_refused_at_load(when: dict[str, Any]) -> None:
    with pytest.raises(RuleError):
        RuleSet.from_dict({"version": "x", "effective_from": "2020-01-01",
                           "types": {"cfdna": [{"when": when, "classification": "c"}]},
                           "cases": {"pregnancy_high_risk": {"grades": [], "due_days": 1, "action": ""}}})


def test_hepb_vaccine_exposed_infant_and_prepregnancy_infections() -> None:
    # 首剂乙肝疫苗: dose 1 within 24 h is timely, 24.5 h late; a later dose is not classified
    assert classify("hepb_vaccine", dose=1, hours_after_birth=24).classification == "timely"
    assert classify("hepb_vaccine", dose=1, hours_after_birth=24.5).classification == "late"
    assert classify("hepb_vaccine", dose=2, hours_after_birth=800).classification == "normal"
    # an exposed infant's positive test opens a follow-up case (treatment); negative / not done do not
    pos = classify("exposed_infant", infection="syphilis", test_result="positive", prophylaxis=True)
    assert pos.classification == "positive" and pos.followup is not None
    assert classify("exposed_infant", infection="hiv", test_result="not_done", prophylaxis=True).followup is None
    with pytest.raises(ValueError):
        classify("exposed_infant", infection="hbsag", test_result="negative", prophylaxis=False)
    # 孕前优生: infection results optional (not done when absent), validated when given
    exam = model.TYPES["prepregnancy_exam"].model.model_validate({"at_risk": False})
    assert exam.facts()["hbsag"] == "not_done"
    with pytest.raises(ValueError):
        model.TYPES["prepregnancy_exam"].model.model_validate({"at_risk": False, "hiv": "maybe"})
