"""The programme figures of issue 21 (营养包, 叶酸, 终止妊娠, 危重孕产妇, 死亡评审, 出生缺陷, 新生儿破伤风, 体弱儿,
托幼体检) from hand-computed cases at their boundaries (pure domain: facts in, what every period reads out).
Expected numbers are worked out by hand in the comments (docs/indicators-programmes.md)."""
from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest

from indicators.domain import units
from indicators.domain.facts import Fact
from indicators.tests.test_rules import CAT, HOME, LMP, Story, read_periods

CLOCK = "2026-12"


def period_values(s: Story, unit: str, *codes: str, clock: str = CLOCK) -> dict[str, Counter[tuple[str, str]]]:
    """{code: {(period, part): total}}: weights summed, standing populations up to each period end."""
    facts = [*s.facts, Fact(units.CLOCK, units.CLOCK, 1, False, {"month": clock})]
    contribs = units.compute(unit, facts, CAT)
    out: dict[str, Counter[tuple[str, str]]] = {}
    for code in codes:
        out[code] = Counter({(k[0][1:], k[1]): v for k, v in read_periods(contribs, code, clock).items()})
    return out


def born_here(s: Story) -> Story:
    """Story's children as the registry records them: born in the pregnancy P."""
    for f in s.facts:
        if f.record_key.startswith("person:C"):
            f.body["born_in_pregnancy_id"] = "P"
    return s


def person(s: Story, pid: str, birth: str, sex: str = "F") -> None:
    s.facts.append(Fact(f"person:{pid}", f"person:{pid}", 1, False, {
        "person_id": pid, "sex": sex, "birth_date": birth, "residence": [{"since": "", "region_code": HOME}]}))


def test_folic_acid_persons_once_per_period_and_bottles_summed() -> None:
    s = Story()
    s.enc("person:M", "folic_acid_dispensed", date(2025, 3, 10), folic_acid={"person_id": "M", "quantity": 3})
    s.enc("person:M", "folic_acid_dispensed", date(2025, 3, 20), folic_acid={"person_id": "M", "quantity": 2})
    s.enc("person:M", "folic_acid_dispensed", date(2025, 5, 1), folic_acid={"person_id": "M", "quantity": 4})
    v = period_values(s, "person:M", "folic_acid_persons", "folic_acid_bottles")
    # March: one woman, 3 + 2 bottles; the year: still one woman, 3 + 2 + 4 = 9; Q2: one woman, 4
    assert v["folic_acid_persons"][("2025-03", "n")] == 1 and v["folic_acid_bottles"][("2025-03", "n")] == 5
    assert v["folic_acid_persons"][("2025", "n")] == 1 and v["folic_acid_bottles"][("2025", "n")] == 9
    assert v["folic_acid_persons"][("2025Q2", "n")] == 1 and v["folic_acid_bottles"][("2025Q2", "n")] == 4
    s.facts[-1] = Fact(s.facts[-1].record_key, "person:M", 2, True, s.facts[-1].body)   # the May one voided
    v = period_values(s, "person:M", "folic_acid_persons", "folic_acid_bottles")
    assert v["folic_acid_bottles"][("2025", "n")] == 5 and v["folic_acid_persons"][("2025Q2", "n")] == 0


def test_nutrition_packs_children_and_packs() -> None:
    s = born_here(Story().deliver())           # C1 born 2025-10-01; 营养包 are screening results of the child
    for n, (on, packs) in enumerate(((date(2026, 4, 5), 60), (date(2026, 4, 20), 30), (date(2026, 7, 1), 30))):
        s.facts.append(Fact(f"screening:lab/N{n}", "person:C1", 1, False, {
            "screening_key": f"lab/N{n}", "type": "nutrition_pack", "performed_on": on.isoformat(),
            "person_id": "C1", "institution_code": "H2", "residence_code": HOME, "nutrition_pack": {"packs": packs}}))
    v = period_values(s, "person:C1", "nutrition_pack_children", "nutrition_pack_packs")
    kids, given = v["nutrition_pack_children"], v["nutrition_pack_packs"]
    # April: one child, 60 + 30 packs; the year: still one child, 120; H2: one child, 30
    assert (kids[("2026-04", "n")], given[("2026-04", "n")]) == (1, 90)
    assert (kids[("2026", "n")], given[("2026", "n")]) == (1, 120)
    assert (kids[("2026H2", "n")], given[("2026H2", "n")]) == (1, 30)
    s.facts[-1] = Fact(s.facts[-1].record_key, "person:C1", 2, True, s.facts[-1].body)   # the July one voided
    v = period_values(s, "person:C1", "nutrition_pack_children", "nutrition_pack_packs")
    assert v["nutrition_pack_children"][("2026H2", "n")] == 0 and v["nutrition_pack_packs"][("2026", "n")] == 90


@pytest.mark.parametrize("method, gest, abortion, labour", [
    ("vacuum_aspiration", 60, 1, 0), ("medical_abortion", 40, 1, 0), ("dilation_curettage", 90, 1, 0),
    ("induced_labour", 150, 0, 1)])
def test_terminations_by_method(method: str, gest: int, abortion: int, labour: int) -> None:
    on = LMP + timedelta(days=gest)
    s = Story().enc("pregnancy:P", "pregnancy_termination", on, termination={
        "method": method, "reason": "birth_defect" if labour else "elective", "gestational_days": gest})
    codes = ("pregnancy_terminations", "induced_abortions", "mid_term_inductions", "terminations_for_birth_defect")
    v = period_values(s, "pregnancy:P", *codes)
    month = on.isoformat()[:7]
    assert [v[c][(month, "n")] for c in codes] == [1, abortion, labour, labour]
    # a pregnancy that was delivered after all (a stale termination): not a termination
    assert period_values(s.deliver(), "pregnancy:P", "pregnancy_terminations")["pregnancy_terminations"] == {}


def test_infected_pregnancies_ended_by_termination() -> None:
    # syphilis positive at 10 weeks, HIV negative; terminated at 16 weeks: one syphilis-infected termination
    from indicators.tests.test_programme_rules import infection

    s = Story()
    infection(s, LMP + timedelta(days=70), "syphilis", "positive")
    infection(s, LMP + timedelta(days=70), "hiv", "negative")
    on = LMP + timedelta(days=112)
    s.enc("pregnancy:P", "pregnancy_termination", on, termination={
        "method": "induced_labour", "reason": "infection", "gestational_days": 112})
    v = period_values(s, "pregnancy:P", "syphilis_positive_terminations", "hiv_positive_terminations")
    month = on.isoformat()[:7]
    assert (v["syphilis_positive_terminations"][(month, "n")], v["hiv_positive_terminations"][(month, "n")]) == (1, 0)
    # a positive test dated after the termination is not of this pregnancy's episode
    s2 = Story()
    infection(s2, on + timedelta(days=3), "hiv", "positive")
    s2.enc("pregnancy:P", "pregnancy_termination", on, termination={
        "method": "induced_labour", "reason": "infection", "gestational_days": 112})
    assert period_values(s2, "pregnancy:P", "hiv_positive_terminations")["hiv_positive_terminations"][
        (month, "n")] == 0


def test_near_miss_once_per_pregnancy_on_its_first_date() -> None:
    s = Story().deliver()                                 # one live birth, 2025-10-01
    s.enc("pregnancy:P", "maternal_near_miss", date(2025, 9, 30), near_miss={"cause_category": "obstetric_haemorrhage"})
    s.enc("pregnancy:P", "maternal_near_miss", date(2025, 10, 3), near_miss={"cause_category": "other_medical",
                                                                                 "organ_dysfunction": True})
    v = period_values(s, "pregnancy:P", "maternal_near_miss_cases", "maternal_near_miss_ratio")
    assert v["maternal_near_miss_cases"][("2025-09", "n")] == 1 and v["maternal_near_miss_cases"][("2025-10", "n")] == 0
    # the ratio's year: 1 case ÷ 1 live birth (× 1000 when served)
    assert v["maternal_near_miss_ratio"][("2025", "n")] == 1 and v["maternal_near_miss_ratio"][("2025", "d")] == 1


def _death(s: Story, subject: str, died: date, maternal: bool, review: dict[str, Any] | None) -> None:
    det: dict[str, Any] = {"person_id": subject.split(":")[1], "died_on": died.isoformat(), "maternal": maternal}
    if review:
        det["review"] = review
    s.enc(subject, "death", died, death=det)


@pytest.mark.parametrize("review, reviewed, avoidable", [
    (None, 0, 0),
    ({"reviewed_on": "2026-02-01", "cause_category": "obstetric_haemorrhage", "preventability": "avoidable"}, 1, 1),
    ({"reviewed_on": "2026-02-01", "cause_category": "heart_disease", "preventability": "conditionally_avoidable"},
     1, 1),
    ({"reviewed_on": "2026-02-01", "cause_category": "amniotic_fluid_embolism", "preventability": "unavoidable"},
     1, 0)])
def test_maternal_death_review(review: dict[str, Any] | None, reviewed: int, avoidable: int) -> None:
    s = Story().deliver()
    _death(s, "person:M", date(2025, 10, 20), True, review)
    v = period_values(s, "person:M", "maternal_deaths", "maternal_death_review_rate", "maternal_death_avoidable_share")
    assert v["maternal_deaths"][("2025", "n")] == 1
    assert (v["maternal_death_review_rate"][("2025", "n")], v["maternal_death_review_rate"][("2025", "d")]) == (
        reviewed, 1)
    # avoidable among the reviewed: the denominator is the reviewed deaths
    assert (v["maternal_death_avoidable_share"][("2025", "n")], v["maternal_death_avoidable_share"][("2025", "d")]) \
        == (avoidable, reviewed)


def test_under5_death_review() -> None:
    s = born_here(Story().deliver())           # C1 born 2025-10-01, dies at 100 days, reviewed: unavoidable
    _death(s, "person:C1", date(2026, 1, 9), False, {"reviewed_on": "2026-03-01", "cause_category": "pneumonia",
                                                     "preventability": "unavoidable"})
    v = period_values(s, "person:C1", "under5_deaths", "under5_death_review_rate", "under5_death_avoidable_share")
    assert v["under5_deaths"][("2026-01", "n")] == 1
    assert v["under5_death_review_rate"][("2026", "n")] == 1 == v["under5_death_review_rate"][("2026", "d")]
    share = v["under5_death_avoidable_share"]
    assert share[("2026", "n")] == 0 and share[("2026", "d")] == 1


@pytest.mark.parametrize("day, counted", [(0, 1), (6, 1), (7, 0)])
def test_birth_defects_found_within_7_days_count_on_the_birth_date(day: int, counted: int) -> None:
    s = born_here(Story().deliver())            # C1 born 2025-10-01
    born = date(2025, 10, 1)
    s.enc("person:C1", "birth_defect", born + timedelta(days=day), birth_defect={
        "categories": ["cleft_lip", "cleft_palate", "congenital_heart_disease"]})
    codes = ("birth_defects", "birth_defect_rate", "birth_defects_cleft", "birth_defects_chd", "birth_defects_ntd")
    v = period_values(s, "person:C1", *codes)
    # one child; two cleft categories are one child in the cleft group; the rate's denominator lives in the
    # pregnancy unit (live births)
    assert [v[c][("2025-10", "n")] for c in codes] == [counted, counted, counted, counted, 0]


def test_birth_defect_groups_one_child_per_group_across_diagnoses() -> None:
    s = born_here(Story().deliver(babies=2))    # twins C1, C2 born 2025-10-01
    s.enc("person:C1", "birth_defect", date(2025, 10, 1), birth_defect={"categories": ["polydactyly"]})
    s.enc("person:C1", "birth_defect", date(2025, 10, 3), birth_defect={"categories": ["down_syndrome",
                                                                                       "polydactyly"]})
    s.enc("person:C1", "birth_defect", date(2025, 10, 20), birth_defect={"categories": ["spina_bifida"]})  # day 19
    codes = ("birth_defects", "birth_defects_polydactyly", "birth_defects_down_syndrome", "birth_defects_ntd")
    v = period_values(s, "person:C1", *codes)
    assert [v[c][("2025", "n")] for c in codes] == [1, 1, 1, 0]
    assert period_values(s, "person:C2", "birth_defects")["birth_defects"] == {}
    # the pregnancy unit gives the rate's denominator: two live births
    rate = period_values(s, "pregnancy:P", "birth_defect_rate")["birth_defect_rate"]
    assert rate[("2025", "d")] == 2 and rate[("2025", "n")] == 0


def test_birth_defect_of_a_child_not_born_here_is_not_counted() -> None:
    s = Story()
    person(s, "K", "2025-10-01")
    s.enc("person:K", "birth_defect", date(2025, 10, 2), birth_defect={"categories": ["polydactyly"]})
    assert period_values(s, "person:K", "birth_defects")["birth_defects"] == {}


def test_neonatal_tetanus_once_per_child_on_onset() -> None:
    s = born_here(Story().deliver())
    s.enc("person:C1", "neonatal_tetanus", date(2025, 10, 9), neonatal_tetanus={"died": False})
    s.enc("person:C1", "neonatal_tetanus", date(2025, 10, 12), neonatal_tetanus={"died": True})
    v = period_values(s, "person:C1", "neonatal_tetanus_cases", "neonatal_tetanus_rate")
    assert v["neonatal_tetanus_cases"][("2025", "n")] == 1 and v["neonatal_tetanus_rate"][("2025-10", "n")] == 1


def test_at_risk_children_enrolled_managed_at_period_end_and_closed() -> None:
    s = born_here(Story().deliver())
    # enrolled 2026-01-15, closed recovered 2026-03-10; enrolled again 2026-05-02, still open
    s.enc("person:C1", "at_risk_child", date(2026, 1, 15), at_risk_child={
        "conditions": ["anaemia"], "closed_on": "2026-03-10", "outcome": "recovered"})
    s.enc("person:C1", "at_risk_child", date(2026, 5, 2), at_risk_child={
        "conditions": ["malnutrition"], "closed_on": "", "outcome": ""})
    v = period_values(s, "person:C1", "at_risk_children_enrolled", "at_risk_children_managed",
                      "at_risk_recovery_rate")
    managed = v["at_risk_children_managed"]
    # at the end of January and February one case is open; none at the end of March (nor of Q1), April; from May
    # the second case: the year 2026 ends with 1
    assert [managed[(m, "n")] for m in ("2026-01", "2026-02", "2026-03", "2026Q1", "2026-04", "2026-05", "2026")] \
        == [1, 1, 0, 0, 0, 1, 1]
    assert v["at_risk_children_enrolled"][("2026", "n")] == 2 and v["at_risk_children_enrolled"][("2026Q1", "n")] == 1
    assert (v["at_risk_recovery_rate"][("2026-03", "n")], v["at_risk_recovery_rate"][("2026-03", "d")]) == (1, 1)


def test_nursery_checks_children_and_staff_once_per_period() -> None:
    s = born_here(Story().deliver())
    for on in (date(2026, 9, 1), date(2026, 9, 15)):
        s.enc("person:C1", "nursery_health_check", on, nursery_check={"role": "child", "nursery": "龙城幼儿园"})
    person(s, "T", "1990-01-01")
    s.enc("person:T", "nursery_health_check", date(2026, 9, 2), nursery_check={
        "role": "staff", "nursery": "龙城幼儿园", "abnormal": True})
    s.enc("person:T", "nursery_health_check", date(2026, 11, 2), nursery_check={
        "role": "staff", "nursery": "龙城幼儿园", "abnormal": False})
    kids = period_values(s, "person:C1", "nursery_children_checked")["nursery_children_checked"]
    assert kids[("2026-09", "n")] == 1 and kids[("2026", "n")] == 1
    staff = period_values(s, "person:T", "nursery_staff_checked", "nursery_staff_abnormal_rate")
    assert staff["nursery_staff_checked"][("2026", "n")] == 1
    # the latest check decides: abnormal in September, fit in November → the year's rate is 0 of 1
    rate = staff["nursery_staff_abnormal_rate"]
    assert (rate[("2026-09", "n")], rate[("2026", "n")], rate[("2026", "d")]) == (1, 0, 1)


def test_a_death_ends_the_management_of_a_child_at_risk() -> None:
    s = born_here(Story().deliver())
    s.enc("person:C1", "at_risk_child", date(2026, 1, 15), at_risk_child={"conditions": ["anaemia"]})
    _death(s, "person:C1", date(2026, 4, 3), False, None)
    managed = period_values(s, "person:C1", "at_risk_children_managed")["at_risk_children_managed"]
    # open at the end of January to March; the death in April ends it (no closing: not in the recovery rate)
    assert [managed[(m, "n")] for m in ("2026-01", "2026-03", "2026-04", "2026")] == [1, 1, 0, 0]
