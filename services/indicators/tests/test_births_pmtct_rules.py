"""Births by sex and birth order, PMTCT (预防艾滋病、梅毒和乙肝母婴传播), the examinations' infections and the
counts behind the rates, from hand-computed cases at their boundaries (pure domain: facts in, contributions
out). Expected numbers are worked out in the comments; definitions in docs/indicators-added.md."""
from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

from indicators.domain import units, values
from indicators.domain.facts import Fact
from indicators.tests.test_programme_rules import case, counts, infection, person, screen
from indicators.tests.test_rules import CAT, HOME, LMP, Story

DELIVERED = LMP + timedelta(days=273)
DAY1 = DELIVERED + timedelta(days=1)


def deliver(s: Story, *babies: tuple[str, int | None, str], gest: int = 273, place: str = "hospital") -> Story:
    """A delivery of babies (sex, birth order, outcome); live ones get child persons C1, C2 …"""
    on = LMP + timedelta(days=gest)
    bs = []
    for i, (sex, order, outcome) in enumerate(babies):
        cid = f"C{i + 1}" if outcome == "live" else ""
        bs.append({"sex": sex, "birth_weight_g": 3000, "outcome": outcome, "child_id": cid, "birth_order": order or 0})
        if cid:
            s.facts.append(Fact(f"person:{cid}", f"person:{cid}", 1, False, {
                "person_id": cid, "sex": sex, "birth_date": on.isoformat(), "mother_id": "M",
                "born_in_pregnancy_id": "P", "residence": [{"since": "", "region_code": HOME}]}))
    return s.enc("pregnancy:P", "delivery", on, delivery={
        "place": place, "mode": "vaginal", "babies": bs, "institution_midwifery_licensed": True})


def rate(code: str, c: Counter[tuple[str, str]]) -> float | int | None:
    ind = CAT.by_code()[code]
    return values.value(ind, c[(code, "n")], c[(code, "d")] if ind.denominator else None)


def test_sex_ratio_counts_boys_per_100_girls_and_second_births_by_reported_order() -> None:
    # triplets: boy (order 2), girl (order 3), boy (order not reported) and a stillborn boy (order 2)
    s = deliver(Story(), ("M", 2, "live"), ("F", 3, "live"), ("M", None, "live"), ("M", 2, "stillbirth"))
    c = counts(s, "pregnancy:P")
    assert (c[("live_births_male", "n")], c[("live_births_female", "n")]) == (2, 1)
    # all births: 2 boys ÷ 1 girl × 100 = 200.00; stillbirths are in no count
    assert (c[("sex_ratio_at_birth", "n")], c[("sex_ratio_at_birth", "d")]) == (2, 1)
    assert rate("sex_ratio_at_birth", c) == 200.0
    # order ≥ 2: the order-2 boy and the order-3 girl (the boy without an order is in neither) → 1 ÷ 1 × 100
    assert c[("live_births_second_plus", "n")] == 2
    assert (c[("sex_ratio_second_plus", "n")], c[("sex_ratio_second_plus", "d")]) == (1, 1)


def test_sex_ratio_value_is_rounded_half_up() -> None:
    # seed 004: 总性别比 138.82 → e.g. 118 boys, 85 girls = 138.8235… → 138.82
    ind = CAT.by_code()["sex_ratio_at_birth"]
    assert values.value(ind, 118, 85) == 138.82
    assert values.value(ind, 1, 0) is None


def test_tests_by_timing_during_pregnancy_vs_only_at_labour() -> None:
    s = Story().visit(60)
    infection(s, LMP + timedelta(days=70), "hiv")                               # during pregnancy
    infection(s, DELIVERED, "hiv", timing="labour")                             # and at labour: "pregnancy"
    infection(s, DELIVERED, "syphilis", timing="labour")                        # only at labour
    infection(s, DELIVERED + timedelta(days=1), "hbsag")  # 'pregnancy' dated after the delivery: not counted
    deliver(s, ("F", 1, "live"))
    c = counts(s, "pregnancy:P")
    assert (c[("hiv_tested_in_pregnancy", "n")], c[("hiv_tested_labour_only", "n")]) == (1, 0)
    assert (c[("syphilis_tested_in_pregnancy", "n")], c[("syphilis_tested_labour_only", "n")]) == (0, 1)
    assert (c[("hbsag_tested_in_pregnancy", "n")], c[("hbsag_tested_labour_only", "n")]) == (0, 0)


def test_positives_treatment_and_positivity_rate() -> None:
    s = Story().visit(60)
    k1 = infection(s, LMP + timedelta(days=70), "syphilis", result="positive")
    infection(s, LMP + timedelta(days=70), "hiv", result="positive")
    infection(s, LMP + timedelta(days=70), "hbsag")
    case(s, "pregnancy:P", "K1", "contacted", "treated", screening_key=k1)     # syphilis treated
    deliver(s, ("F", 1, "live"))
    c = counts(s, "pregnancy:P")
    assert c[("syphilis_positive_women", "n")] == 1 and c[("hiv_positive_women", "n")] == 1
    assert c[("hbsag_positive_women", "n")] == 0
    # positivity: 1 positive of 1 tested = 100; HBsAg 0 of 1 tested = 0
    assert rate("syphilis_positive_rate", c) == 100.0 and rate("hbsag_positive_rate", c) == 0.0
    assert (c[("syphilis_treatment_rate", "n")], c[("syphilis_treatment_rate", "d")]) == (1, 1)
    # the HIV positive result has no case with "treated": in the ARV denominator only
    assert (c[("hiv_arv_rate", "n")], c[("hiv_arv_rate", "d")]) == (0, 1)


def test_a_treated_case_of_a_negative_result_does_not_count() -> None:
    s = Story().visit(60)
    k = infection(s, LMP + timedelta(days=70), "hiv")
    case(s, "pregnancy:P", "K1", "treated", screening_key=k)
    deliver(s, ("F", 1, "live"))
    c = counts(s, "pregnancy:P")
    assert c[("hiv_arv_rate", "d")] == 0 and c[("hiv_arv_rate", "n")] == 0


def child_screen(s: Story, child: str, type_: str, on: date, **detail: Any) -> None:
    screen(s, f"person:{child}", type_, on, person=child, **detail)


def test_exposed_infants_hepb_dose1_within_24_hours_and_hiv_syphilis_care() -> None:
    s = Story().visit(60)
    infection(s, LMP + timedelta(days=70), "hbsag", result="positive")
    infection(s, LMP + timedelta(days=70), "syphilis", result="positive")
    infection(s, DELIVERED, "hiv", result="positive", timing="labour")
    deliver(s, ("M", 1, "live"), ("F", 1, "live"))
    # twin 1: dose 1 at 24.0 h (counts: ≤ 24), syphilis test + prophylaxis, HIV prophylaxis without a test
    child_screen(s, "C1", "hepb_vaccine", DAY1, hepb_vaccine={"dose": 1, "hours_after_birth": 24})
    child_screen(s, "C1", "exposed_infant", DELIVERED, exposed_infant={
        "infection": "syphilis", "test_result": "negative", "prophylaxis": True})
    child_screen(s, "C1", "exposed_infant", DELIVERED, exposed_infant={
        "infection": "hiv", "test_result": "not_done", "prophylaxis": True})
    # twin 2: dose 1 at 24.5 h (late); dose 2 is no first dose; HIV tested, no prophylaxis
    child_screen(s, "C2", "hepb_vaccine", DAY1, hepb_vaccine={"dose": 1, "hours_after_birth": 24.5})
    child_screen(s, "C2", "hepb_vaccine", DAY1, hepb_vaccine={"dose": 2, "hours_after_birth": 1})
    child_screen(s, "C2", "exposed_infant", DELIVERED, exposed_infant={
        "infection": "hiv", "test_result": "negative", "prophylaxis": False})
    c = counts(s, "pregnancy:P")
    assert c[("hbsag_exposed_live_births", "n")] == 2
    assert (c[("hepb_dose1_timely_rate", "n")], c[("hepb_dose1_timely_rate", "d")]) == (1, 2)
    assert (c[("hiv_exposed_infant_arv_rate", "n")], c[("hiv_exposed_infant_arv_rate", "d")]) == (1, 2)
    assert (c[("hiv_exposed_infant_test_rate", "n")], c[("hiv_exposed_infant_test_rate", "d")]) == (1, 2)
    assert c[("syphilis_exposed_infant_prophylaxis_rate", "n")] == 1
    assert (c[("syphilis_exposed_infant_test_rate", "n")], c[("syphilis_exposed_infant_test_rate", "d")]) == (1, 2)


def test_a_voided_infant_record_stops_counting() -> None:
    s = Story().visit(60)
    infection(s, LMP + timedelta(days=70), "syphilis", result="positive")
    deliver(s, ("M", 1, "live"))
    screen(s, "person:C1", "exposed_infant", DELIVERED, person="C1", voided=True, exposed_infant={
        "infection": "syphilis", "test_result": "negative", "prophylaxis": True})
    c = counts(s, "pregnancy:P")
    assert (c[("syphilis_exposed_infant_test_rate", "n")], c[("syphilis_exposed_infant_test_rate", "d")]) == (0, 1)


def test_examination_infections_and_persons_by_sex() -> None:
    s = Story()
    person(s, "A", date(1996, 1, 1), sex="M")
    person(s, "B", date(1997, 1, 1), sex="F")
    on = date(2025, 3, 3)
    screen(s, "person:A", "premarital_exam", on, person="A", partner="B", premarital_exam={
        "findings": [], "hiv": "negative", "syphilis": "positive", "hbsag": "positive"})
    screen(s, "person:B", "premarital_exam", on, person="B", partner="A", premarital_exam={
        "findings": [], "hiv": "not_done", "syphilis": "negative", "hbsag": "negative"})
    screen(s, "person:B", "prepregnancy_exam", on, person="B", prepregnancy_exam={
        "at_risk": False, "hiv": "positive", "syphilis": "negative", "hbsag": "not_done"})
    a, b = counts(s, "person:A"), counts(s, "person:B")
    assert a[("premarital_exam_male", "n")] == 1 and b[("premarital_exam_female", "n")] == 1
    assert a[("premarital_syphilis_positive", "n")] + b[("premarital_syphilis_positive", "n")] == 1
    assert a[("premarital_hiv_positive", "n")] + b[("premarital_hiv_positive", "n")] == 0
    # HBsAg positivity: 1 positive of 2 with a result = 50 %
    tot = a + b
    assert (tot[("premarital_hbsag_positive_rate", "n")], tot[("premarital_hbsag_positive_rate", "d")]) == (1, 2)
    assert b[("prepregnancy_hiv_positive", "n")] == 1 and b[("prepregnancy_exam_female", "n")] == 1
    # HBsAg not done: not in the pre-pregnancy positivity denominator
    assert b[("prepregnancy_hbsag_positive_rate", "d")] == 0


def test_counts_behind_the_rates() -> None:
    s = Story(registered_gest=60)
    s.visit(50, counts=False).visit(65).visit(100)  # a pregnancy test alone (day 50) is no antenatal check
    s.enc("person:M", "folic_acid_dispensed", LMP - timedelta(days=30), folic_acid={"person_id": "M", "quantity": 3})
    deliver(s, ("F", 1, "live"), ("M", 1, "live"))
    screen(s, "person:C1", "newborn_hearing", DELIVERED, person="C1",
           newborn_hearing={"round": "initial", "result": "pass"})
    screen(s, "person:C2", "newborn_metabolic", DELIVERED, person="C2", newborn_metabolic={
        "conditions": {"pku": "negative", "ch": "negative"}})
    from indicators.tests.test_programme_rules import by_when
    c = counts(s, "pregnancy:P")
    assert c[("pregnancies_booked", "n")] == 1 and c[("folic_acid_booked_persons", "n")] == 1
    assert c[("hospital_delivery_women", "n")] == 1 and c[("women_delivered", "n")] == 1
    assert c[("hearing_screened_count", "n")] == 1 and c[("metabolic_screened_count", "n")] == 1
    # 初次产前保健: once, on the first counted check (day 65), not on the pregnancy test (day 50)
    assert by_when(s, "pregnancy:P", "first_antenatal_care") == {
        ((LMP + timedelta(days=65)).isoformat(), "n"): 1}


def test_first_antenatal_care_counts_before_any_delivery_and_not_at_home_births() -> None:
    s = Story().visit(70)
    assert counts(s, "pregnancy:P")[("first_antenatal_care", "n")] == 1
    home = deliver(Story(), ("F", 1, "live"), place="home")
    c = counts(home, "pregnancy:P")
    assert c[("first_antenatal_care", "n")] == 0 and c[("hospital_delivery_women", "n")] == 0
    assert c[("women_delivered", "n")] == 1


def test_hiv_positivity_and_the_remaining_examination_counts() -> None:
    # HIV: 1 positive of 1 tested (labour only) = 100 %
    s = Story().visit(60)
    infection(s, DELIVERED, "hiv", result="positive", timing="labour")
    deliver(s, ("F", 1, "live"))
    assert rate("hiv_positive_rate", counts(s, "pregnancy:P")) == 100.0
    e = Story()
    person(e, "A", date(1990, 1, 1), sex="M")
    on = date(2025, 5, 5)
    screen(e, "person:A", "premarital_exam", on, person="A", premarital_exam={
        "findings": [], "hiv": "negative", "syphilis": "negative", "hbsag": "positive"})
    screen(e, "person:A", "prepregnancy_exam", on, person="A", prepregnancy_exam={
        "at_risk": True, "hiv": "negative", "syphilis": "positive", "hbsag": "positive"})
    c = counts(e, "person:A")
    assert c[("premarital_hbsag_positive", "n")] == 1
    assert c[("prepregnancy_exam_male", "n")] == 1 and c[("prepregnancy_exam_female", "n")] == 0
    assert c[("prepregnancy_syphilis_positive", "n")] == 1 and c[("prepregnancy_hbsag_positive", "n")] == 1
    # an exam posted without infection results (older HIS): not done — no positives, out of the denominator
    screen(e, "person:A", "prepregnancy_exam", on, person="A", prepregnancy_exam={"at_risk": False})
    c = counts(e, "person:A")
    assert c[("prepregnancy_exam_male", "n")] == 2 and c[("prepregnancy_hbsag_positive_rate", "d")] == 1


def test_hukou_split_compares_the_mothers_registered_county_with_where_she_lives() -> None:
    # HOME = 320582…: a mother registered in 320582 is local; in 320583 another county of the same province;
    # in 650102 another province; unknown 户籍 is in neither split
    for hukou, county, province in (("320582", 1, 1), ("320583", 0, 1), ("650102", 0, 0), ("", 0, 0)):
        s = Story()
        s.facts[1].body["hukou_code"] = hukou
        deliver(s, ("F", 1, "live"), ("M", 1, "live"))
        c = counts(s, "pregnancy:P")
        assert c[("live_births_hukou_county", "n")] == 2 * county
        assert c[("live_births_hukou_other", "n")] == (2 * (1 - county) if hukou else 0)
        assert c[("live_births_hukou_province", "n")] == 2 * province
        assert c[("women_delivered_hukou_province", "n")] == province


def population_story(*figures: tuple[str, str, int, int, bool]) -> Story:
    """Population figures (region, kind, year, value, voided) filed as the API files them."""
    s = Story()
    for i, (region, kind, year, value, voided) in enumerate(figures):
        s.facts.append(Fact(f"population:{region}:{kind}:{year}", f"population:{region}:{kind}", i + 1, voided,
                            {"region": region, "kind": kind, "year": year, "value": value}))
    return s


def test_a_population_figure_stands_for_its_year_only() -> None:
    s = population_story(("320582", "total", 2025, 54991, False), ("320582", "total", 2026, 55100, False))
    # 2025 enters in 2025-01 and leaves in 2026-01, when 2026's enters: the standing sum is each year's own
    got: Counter[tuple[str, str]] = Counter()
    for c in units.compute("population:320582:total", s.facts, CAT):
        got[(c[0], c[2])] += c[5]
    assert got[("population_total", "^2025-01")] == 54991
    assert got[("population_total", "^2026-01")] == 55100 - 54991
    assert got[("population_total", "^2027-01")] == -55100
    assert got[("birth_rate", "^2025-01")] == 54991  # the birth rate's denominator
    w = counts(population_story(("320582", "women_15_49", 2025, 11810, False)), "population:320582:women_15_49")
    assert w[("general_fertility_rate", "d")] == 0  # in and out: all time nets to 0 (periods see 11810)
    # seed 004: 203 births, 54991 people → 3.69 ‰
    assert values.value(CAT.by_code()["birth_rate"], 203, 54991) == 3.69


def test_population_kinds_are_their_own_counts_and_a_voided_figure_counts_nothing() -> None:
    kinds = {"women_15_49": "population_women_15_49", "married_women_15_49": "population_married_women_15_49",
             "women_35_64": "population_women_35_64", "children_under3": "population_children_under3",
             "children_under7": "population_children_under7"}
    for kind, code in kinds.items():
        c = counts(population_story(("320582", kind, 2025, 900, False)), f"population:320582:{kind}")
        assert c[(code, "n")] == 0  # +900 in 2025-01, −900 in 2026-01: in and out net to 0 over all time
        assert sum(1 for k in c if k[0] == code) == 1
    assert not counts(population_story(("320582", "total", 2025, 5, True)), "population:320582:total")


def test_two_cancer_coverage_divides_women_35_64_screened_by_the_posted_women_35_64() -> None:
    s = population_story(("320582", "women_35_64", 2025, 400, False))
    person(s, "W", date(1980, 6, 1))
    screen(s, "person:W", "cervical", date(2025, 6, 1), person="W", cervical={"method": "hpv", "result": "normal"})
    screen(s, "person:W", "breast", date(2025, 6, 1), person="W", breast={"method": "ultrasound", "birads": 1})
    w = counts(s, "person:W")
    assert w[("cervical_screening_coverage", "n")] == 1 and w[("breast_screening_coverage", "n")] == 1
    d = {c[2]: c[5] for c in units.compute("population:320582:women_35_64", s.facts, CAT)
         if c[0] == "cervical_screening_coverage" and c[1] == "d"}
    assert d == {"^2025-01": 400, "^2026-01": -400}
    # 1 of 400 women 35–64 = 0.25 %
    assert values.value(CAT.by_code()["cervical_screening_coverage"], 1, 400) == 0.25
