"""Screening, follow-up, programme (women) and certificate indicators from hand-computed cases at their
boundaries (pure domain: facts in, contributions out). Expected numbers are worked out in the comments."""
from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from indicators.domain import catalogue, units
from indicators.domain.facts import Fact
from indicators.engine import counter_delta
from indicators.tests.test_rules import CAT, HOME, LMP, Story, read_periods

Counts = Counter[tuple[str, str]]


def screen(s: Story, subject: str, type_: str, on: date, person: str = "M", partner: str = "",
           classification: str = "normal", version: int = 1, voided: bool = False, **detail: Any) -> str:
    """A screening result filed under `subject` (as translate files it); returns its screening key."""
    s.n += 1
    key = f"lab/S{s.n}"
    body: dict[str, Any] = {"screening_key": key, "type": type_, "performed_on": on.isoformat(),
                            "person_id": person, "partner_id": partner, "institution_code": "H2",
                            "institution_region": HOME, "residence_code": HOME, "classification": classification,
                            "pregnancy_id": "P" if subject == "pregnancy:P" else ""}
    body.update(detail)
    s.facts.append(Fact(f"screening:{key}", subject, version, voided, body))
    return key


def infection(s: Story, on: date, infection_: str, result: str = "negative", timing: str = "pregnancy") -> str:
    return screen(s, "pregnancy:P", "maternal_infection_test", on, maternal_infection_test={
        "infection": infection_, "timing": timing, "result": result})


def case(s: Story, subject: str, case_id: str, *actions: str, screening_key: str = "", due: date = LMP,
         closed_on: date | None = None, outcome: str = "", closed_reason: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {
        "case_id": case_id, "screening_key": screening_key, "pregnancy_id": "P", "region_code": HOME,
        "institution_code": "H2", "opened_on": LMP.isoformat(), "due_on": due.isoformat(),
        "status": "closed" if closed_on else "open", "closed_on": closed_on.isoformat() if closed_on else "",
        "outcome": outcome, "closed_reason": closed_reason, "version": 1,
        "actions": [{"action": a, "on": LMP.isoformat(), "outcome": ""} for a in actions]}
    # filed twice, as translate files a FollowupCaseChanged: its own unit, and the pregnancy's
    s.facts.append(Fact(f"followup:{case_id}", f"followup:{case_id}", 1, False, body))
    if subject:
        s.facts.append(Fact(f"case:{case_id}", subject, 1, False, body))
    return body


def person(s: Story, pid: str, birth: date, sex: str = "F") -> None:
    s.facts.append(Fact(f"person:{pid}", f"person:{pid}", 1, False, {
        "person_id": pid, "sex": sex, "birth_date": birth.isoformat(),
        "residence": [{"since": "", "region_code": HOME}]}))


def counts(s: Story, unit: str, clock: str | None = None, catalogue_: catalogue.Catalogue = CAT) -> Counts:
    facts = list(s.facts)
    if clock:
        facts.append(Fact(units.CLOCK, units.CLOCK, 1, False, {"month": clock}))
    out: Counts = Counter()
    for c in units.compute(unit, facts, catalogue_):
        out[(c[0], c[1])] += c[5]
    return out


def by_when(s: Story, unit: str, code: str, clock: str | None = None) -> dict[tuple[str, str], int]:
    facts = list(s.facts)
    if clock:
        facts.append(Fact(units.CLOCK, units.CLOCK, 1, False, {"month": clock}))
    out: Counter[tuple[str, str]] = Counter()
    for c in units.compute(unit, facts, CAT):
        if c[0] == code:
            out[(c[2], c[1])] += c[5]
    return dict(out)


# --- maternal: infection tests, HBIG, prenatal screening, high risk ---------------------------------------

@pytest.mark.parametrize("days_after_delivery, tested", [(-100, 1), (0, 1), (1, 0)])
def test_infection_tests_in_pregnancy_count_up_to_the_delivery_day(days_after_delivery: int, tested: int) -> None:
    s = Story().deliver(babies=2)   # twins: one woman delivered
    infection(s, s.delivered_on + timedelta(days=days_after_delivery), "hiv")
    infection(s, s.delivered_on + timedelta(days=2), "syphilis", timing="labour")   # at labour: counts
    c = counts(s, "pregnancy:P")
    assert c[("hiv_test_rate", "n")] == tested and c[("hiv_test_rate", "d")] == 1
    assert c[("syphilis_test_rate", "n")] == 1 and c[("hbsag_test_rate", "n")] == 0
    assert c[("hbsag_test_rate", "d")] == 1


def test_a_voided_test_does_not_count() -> None:
    s = Story().deliver()
    screen(s, "pregnancy:P", "maternal_infection_test", s.delivered_on, voided=True, version=2,
           maternal_infection_test={"infection": "hiv", "result": "negative"})
    assert counts(s, "pregnancy:P")[("hiv_test_rate", "n")] == 0


def test_hbig_within_the_hour_limit_for_births_to_hbsag_positive_mothers() -> None:
    # twins of an HBsAg+ mother: C1 given HBIG at 24.0 h (counts), C2 at 24.5 h (does not) → 1 / 2
    s = Story().deliver(babies=2)
    infection(s, s.delivered_on - timedelta(days=30), "hbsag", "positive")
    screen(s, "person:C1", "hbig", s.delivered_on, person="C1", hbig={"hours_after_birth": 24.0})
    screen(s, "person:C2", "hbig", s.delivered_on, person="C2", hbig={"hours_after_birth": 24.5})
    c = counts(s, "pregnancy:P")
    assert c[("hbig_rate", "n")] == 1 and c[("hbig_rate", "d")] == 2
    # the hour limit is a catalogue parameter: 48 h → both count
    doc = json.loads(catalogue.CATALOGUE_FILE.read_text(encoding="utf-8"))
    doc["parameters"]["hbig_hours"]["value"] = 48
    c48 = counts(s, "pregnancy:P", catalogue_=catalogue.parse(doc))
    assert c48[("hbig_rate", "n")] == 2 and catalogue.parse(doc).digest != CAT.digest


def test_hbig_denominator_needs_a_positive_mother() -> None:
    s = Story().deliver()
    infection(s, s.delivered_on, "hbsag", "negative")
    screen(s, "person:C1", "hbig", s.delivered_on, person="C1", hbig={"hours_after_birth": 2})
    assert counts(s, "pregnancy:P")[("hbig_rate", "d")] == 0


def test_prenatal_screening_of_women_delivered_and_of_booked_pregnancies() -> None:
    s = Story().deliver()
    c = counts(s, "pregnancy:P")
    assert c[("prenatal_screening_rate", "n")] == 0 and c[("prenatal_screening_rate", "d")] == 1
    assert c[("booked_screening_rate", "n")] == 0 and c[("booked_screening_rate", "d")] == 1
    screen(s, "pregnancy:P", "prenatal_serum", LMP + timedelta(days=110), prenatal_serum={"t21_risk_n": 2000})
    c = counts(s, "pregnancy:P")
    assert c[("prenatal_screening_rate", "n")] == 1 and c[("booked_screening_rate", "n")] == 1
    # the booked-screening rate is anchored on the booking date (day 60), not on the screening
    assert by_when(s, "pregnancy:P", "booked_screening_rate") == {
        ((LMP + timedelta(days=60)).isoformat(), "n"): 1, ((LMP + timedelta(days=60)).isoformat(), "d"): 1}


def test_booked_pregnancy_screened_before_delivery_counts_without_delivery() -> None:
    s = Story()
    screen(s, "pregnancy:P", "cfdna", LMP + timedelta(days=100), cfdna={"result": "low_risk"})
    c = counts(s, "pregnancy:P")
    assert c[("booked_screening_rate", "n")] == 1 and c[("prenatal_screening_rate", "d")] == 0


def test_high_risk_prenatal_screen_followed_up_by_a_contact() -> None:
    s = Story()
    on = LMP + timedelta(days=112)
    k1 = screen(s, "pregnancy:P", "prenatal_serum", on, classification="high_risk",
                prenatal_serum={"t21_risk_n": 150})
    k2 = screen(s, "pregnancy:P", "cfdna", on + timedelta(days=10), classification="high_risk",
                cfdna={"result": "high_risk"})
    screen(s, "pregnancy:P", "cfdna", on + timedelta(days=20), cfdna={"result": "low_risk"})
    case(s, "pregnancy:P", "K1", "contacted", screening_key=k1)
    case(s, "pregnancy:P", "K2", "diagnosed", screening_key=k2)   # no contact action
    got = by_when(s, "pregnancy:P", "prenatal_high_risk_followup_rate")
    assert got == {(on.isoformat(), "n"): 1, (on.isoformat(), "d"): 1,
                   ((on + timedelta(days=10)).isoformat(), "d"): 1}


def test_high_risk_management_needs_a_case_with_an_action() -> None:
    s = Story().visit(60, "orange").deliver()
    c = counts(s, "pregnancy:P")
    assert c[("high_risk_management_rate", "n")] == 0 and c[("high_risk_management_rate", "d")] == 1
    case(s, "pregnancy:P", "K1")                       # opened, nothing done yet
    assert counts(s, "pregnancy:P")[("high_risk_management_rate", "n")] == 0
    case(s, "pregnancy:P", "K2", "contacted")
    assert counts(s, "pregnancy:P")[("high_risk_management_rate", "n")] == 1
    low = Story().visit(60, "yellow").deliver()
    case(low, "pregnancy:P", "K3", "contacted")
    assert counts(low, "pregnancy:P")[("high_risk_management_rate", "d")] == 0


# --- newborn screening and certificates of live births ---------------------------------------------------

def test_metabolic_needs_pku_and_ch_and_hearing_any_round() -> None:
    s = Story().deliver(babies=2)
    screen(s, "person:C1", "newborn_metabolic", s.delivered_on + timedelta(days=3), person="C1",
           newborn_metabolic={"conditions": {"pku": "negative", "ch": "positive"}})
    screen(s, "person:C2", "newborn_metabolic", s.delivered_on + timedelta(days=3), person="C2",
           newborn_metabolic={"conditions": {"pku": "negative"}})
    screen(s, "person:C2", "newborn_hearing", s.delivered_on + timedelta(days=40), person="C2",
           newborn_hearing={"round": "rescreen", "result": "pass"})
    c = counts(s, "pregnancy:P")
    assert c[("metabolic_screening_rate", "n")] == 1 and c[("metabolic_screening_rate", "d")] == 2
    assert c[("hearing_screening_rate", "n")] == 1 and c[("hearing_screening_rate", "d")] == 2


def cert(s: Story, serial: str, kind: str, child: str = "C1", status: str = "issued", issued: str = "2025-10-10",
         voided: str = "", superseded: str = "", inst: str = "H1") -> None:
    body = {"serial": serial, "kind": kind, "status": status, "child_id": child, "institution_code": inst,
            "institution_region": HOME, "prepared_on": issued, "issued_on": issued, "voided_on": voided,
            "superseded_on": superseded, "version": 1}
    s.facts.append(Fact(f"cert:{serial}", f"cert:{serial}", 1, False, body))
    s.facts.append(Fact(f"certificate:{serial}", f"person:{child}", 1, False, body))


def test_first_issue_rate_per_live_birth_in_the_institution() -> None:
    # twins born at H1: C1 has a first certificate (later superseded by a replacement: still first-issued),
    # C2 only a certificate voided as wrongly issued → 1 / 2
    s = Story().deliver(babies=2)
    cert(s, "A000000001", "first", status="superseded", superseded="2025-11-01")
    cert(s, "A000000002", "replacement", issued="2025-11-01")
    cert(s, "A000000003", "first", child="C2", status="voided", voided="2025-10-12")
    c = counts(s, "pregnancy:P")
    assert c[("cert_first_issue_rate", "n")] == 1 and c[("cert_first_issue_rate", "d")] == 2
    assert by_when(s, "pregnancy:P", "cert_first_issue_rate")[(s.delivered_on.isoformat(), "d")] == 2


def test_certificate_actions_by_kind_void_and_supersession() -> None:
    s = Story()
    cert(s, "A1", "first", status="superseded", issued="2025-09-30", superseded="2025-10-01")
    cert(s, "A2", "reissue", issued="2025-10-01")
    cert(s, "A3", "first_out_of_institution", status="voided", issued="2025-10-02", voided="2025-10-03")
    cert(s, "A4", "replacement", status="prepared", issued="")   # not sealed yet: nothing
    total: Counts = Counter()
    for serial in ("A1", "A2", "A3", "A4"):
        total += counts(s, f"cert:{serial}")
    # A3 was voided as wrongly issued: 废证 (counted from its voided stock movement), not 签发
    assert total[("certs_issued", "n")] == 2 and total[("certs_first", "n")] == 1
    assert total[("certs_reissued", "n")] == 1 and total[("certs_first_out_of_institution", "n")] == 0
    assert total[("certs_replaced", "n")] == 0
    assert total[("certs_voided", "n")] == 0 and total[("certs_superseded", "n")] == 1
    # the void's movements as the certificates service emits them: back out of "issued", into "voided"
    stock(s, "v1", "issued", "2025-10-03", 1)
    stock(s, "v2", "voided", "2025-10-03", -1)
    for m in ("v1", "v2"):
        total += counts(s, f"stock:{m}", clock="2025-10")
    # 废证率 = voided ÷ (issued + voided) = 1 ÷ 3
    assert total[("certs_voided", "n")] == 1
    assert total[("cert_void_rate", "n")] == 1 and total[("cert_void_rate", "d")] == 3
    # the supersession of A1 counts on its own date, in the next statistical year from its issue
    assert by_when(s, "cert:A1", "certs_superseded") == {("2025-10-01", "n"): 1}


def stock(s: Story, mid: str, kind: str, on: str, qty: int, inst: str = "H1") -> None:
    s.facts.append(Fact(f"stock:{mid}", f"stock:{mid}", 1, False, {
        "movement_id": mid, "institution_code": inst, "institution_region": HOME, "kind": kind, "on": on,
        "quantity": qty}))


def _stock_at(s: Story, mids: list[str], clock: str) -> dict[str, int]:
    """期末库存 of every reporting period, as the store reads it (periods not started by the clock have none)."""
    facts = [*s.facts, Fact(units.CLOCK, units.CLOCK, 1, False, {"month": clock})]
    contribs = [c for m in mids for c in units.compute(f"stock:{m}", facts, CAT)]
    return {k.removeprefix("@"): n for (k, _), n in read_periods(contribs, "cert_stock_closing", clock).items()}


def test_stock_closing_is_opening_plus_received_minus_issued_minus_voided() -> None:
    # seed 001 in miniature: opening 1275 (received 2024-12-01), +6000 in 2025-03, −5575 issued in 2025-06,
    # 3 blanks spoiled on 2025-06-30 → closing 2025Q2 = 1275 + 6000 − 5575 − 3 = 1697
    s = Story()
    stock(s, "m1", "received", "2024-12-01", 1275)
    stock(s, "m2", "received", "2025-03-15", 6000)
    stock(s, "m3", "issued", "2025-06-10", -5575)
    stock(s, "m4", "voided", "2025-06-30", -3)
    closing = _stock_at(s, ["m1", "m2", "m3", "m4"], clock="2025-09")
    assert closing["2024-12"] == 1275 and closing["2024"] == 1275
    assert closing["2025Q1"] == 1275 + 6000 and closing["2025Q2"] == 1697
    assert closing["2025Q3"] == 1697 and closing["2025-07"] == 1697
    assert closing["2025SY"] == 1697        # statistical year to 30 Sep 2025
    assert "2025Q4" not in closing           # the clock has not reached it yet
    # opening (closing of Q1) + received − issued − voided in Q2 = closing of Q2
    assert closing["2025Q1"] + 0 - 5575 - 3 == closing["2025Q2"]
    voided: Counts = Counter()
    for m in ("m1", "m2", "m3", "m4"):
        voided += counts(s, f"stock:{m}", clock="2025-09")
    assert voided[("certs_voided", "n")] == 3
    assert voided[("cert_stock_received", "n")] == 1275 + 6000   # 申领: what came in, read directly


def test_received_counts_allocations_in_and_out() -> None:
    # the bureau receives 500 and allocates 200 to H1: the bureau's own 申领 is 500 − 200, H1's 200, the total 500
    s = Story()
    stock(s, "m1", "received", "2025-03-01", 500, inst="")
    stock(s, "m2", "allocated", "2025-03-02", -200, inst="")
    stock(s, "m3", "allocated", "2025-03-02", 200, inst="H1")
    got: Counts = Counter()
    for m in ("m1", "m2", "m3"):
        got += counts(s, f"stock:{m}", clock="2025-09")
    assert got[("cert_stock_received", "n")] == 500 - 200 + 200


def test_stock_is_standing_and_reads_follow_the_clock() -> None:
    s = Story()
    stock(s, "m1", "received", "2025-06-15", 100)
    before = _stock_at(s, ["m1"], clock="2025-06")
    after = _stock_at(s, ["m1"], clock="2025-07")
    assert "2025-07" not in before and after["2025-07"] == 100 and after["2025-06"] == 100
    assert "2025-05" not in after and after["2025"] == 100 and after["2025Q2"] == 100
    # one standing contribution from the movement's month on, whatever the clock: the clock moving changes
    # nothing stored, and the stock unit does not depend on it
    facts = [*s.facts, Fact(units.CLOCK, units.CLOCK, 1, False, {"month": "2025-06"})]
    old = units.compute_measured("stock:m1", facts, CAT)
    facts[-1] = Fact(units.CLOCK, units.CLOCK, 2, False, {"month": "2025-07"})
    assert units.compute_measured("stock:m1", facts, CAT) == old
    closing = CAT.by_code()["cert_stock_closing"].numerator.key
    assert [c for c in old if c[0] == closing] == [(closing, "^2025-06", HOME, "H1", 100)]
    assert counter_delta([], old)[("^2025-06", HOME, "H1", closing)] == 100
    assert units.dependencies("stock:m1", s.facts) == []


# --- women: premarital, pre-pregnancy, 两癌, thalassaemia ---------------------------------------------------

def premarital(s: Story, pid: str, partner: str, on: date, findings: bool = False, hiv: str = "negative") -> None:
    screen(s, f"person:{pid}", "premarital_exam", on, person=pid, partner=partner, premarital_exam={
        "findings": [{"code": "x", "affects_marriage": True}] if findings else [], "hiv": hiv})


def _couple_total(s: Story, pids: list[str], code: str) -> dict[tuple[str, str], int]:
    out: Counter[tuple[str, str]] = Counter()
    for p in pids:
        out.update(by_when(s, f"person:{p}", code))
    return dict(out)


def test_premarital_persons_couples_findings_and_hiv() -> None:
    s = Story()
    premarital(s, "A", "B", date(2025, 3, 1), findings=True)
    premarital(s, "B", "A", date(2025, 3, 5), hiv="not_done")
    premarital(s, "X", "Y", date(2025, 3, 2))            # Y never examined: a person, not a couple
    c: Counts = Counter()
    for p in ("A", "B", "X", "Y"):
        c += counts(s, f"person:{p}")
    assert c[("premarital_exam_persons", "n")] == 3 and c[("premarital_exam_couples", "n")] == 1
    assert c[("premarital_disease_rate", "n")] == 1 and c[("premarital_disease_rate", "d")] == 3
    assert c[("premarital_hiv_test_rate", "n")] == 2 and c[("premarital_hiv_test_rate", "d")] == 3
    # the couple counts once, when the second partner is examined
    assert _couple_total(s, ["A", "B"], "premarital_exam_couples") == {("2025-03-05", "n"): 1}


def test_premarital_couple_named_on_one_record_only() -> None:
    s = Story()
    premarital(s, "A", "B", date(2025, 3, 9))
    premarital(s, "B", "", date(2025, 3, 1))
    assert _couple_total(s, ["A", "B"], "premarital_exam_couples") == {("2025-03-09", "n"): 1}


def test_premarital_exam_rate_against_marriages() -> None:
    # 3 persons examined, one marriage registered (2 persons) → 3 / 2 would be 150 %: the denominator is the
    # marriage unit's, the numerator the persons'
    s = Story()
    premarital(s, "A", "B", date(2025, 3, 1))
    premarital(s, "B", "A", date(2025, 3, 1))
    s.facts.append(Fact("marriage:m1", "marriage:m1", 1, False, {
        "registration_key": "m1", "registered_on": "2025-03-10", "region_code": HOME, "person_ids": ["A", "B"]}))
    c = counts(s, "person:A") + counts(s, "person:B") + counts(s, "marriage:m1")
    assert c[("premarital_exam_rate", "n")] == 2 and c[("premarital_exam_rate", "d")] == 2
    assert c[("marriage_registrations_persons", "n")] == 2


def test_prepregnancy_couples_and_risk() -> None:
    s = Story()
    screen(s, "person:A", "prepregnancy_exam", date(2025, 4, 1), person="A", partner="B",
           prepregnancy_exam={"at_risk": True})
    screen(s, "person:B", "prepregnancy_exam", date(2025, 3, 30), person="B", partner="A",
           prepregnancy_exam={"at_risk": False})
    screen(s, "person:Z", "prepregnancy_exam", date(2025, 4, 2), person="Z", prepregnancy_exam={"at_risk": False})
    c: Counts = Counter()
    for p in ("A", "B", "Z"):
        c += counts(s, f"person:{p}")
    assert c[("prepregnancy_exam_count", "n")] == 2       # A+B once, Z alone
    assert c[("prepregnancy_risk_rate", "n")] == 1 and c[("prepregnancy_risk_rate", "d")] == 3
    # the couple counts in the period of its first exam
    assert _couple_total(s, ["A", "B"], "prepregnancy_exam_count") == {("2025-03-30", "n"): 1}


def test_thalassaemia_couples() -> None:
    s = Story()
    for p, q in (("A", "B"), ("B", "A")):
        screen(s, f"person:{p}", "thalassaemia", date(2025, 5, 1), person=p, partner=q,
               thalassaemia={"result": "carrier"})
    assert _couple_total(s, ["A", "B"], "thalassaemia_screening_count") == {("2025-05-01", "n"): 1}


@pytest.mark.parametrize("birth, counted", [
    (date(1990, 6, 1), 1),    # 35th birthday on the screening day
    (date(1990, 6, 2), 0),    # one day short of 35
    (date(1960, 6, 2), 1),    # 64, one day before the 65th birthday
    (date(1960, 6, 1), 0),    # 65 today
])
def test_two_cancers_count_women_35_to_64(birth: date, counted: int) -> None:
    s = Story()
    person(s, "W", birth)
    screen(s, "person:W", "cervical", date(2025, 6, 1), person="W", cervical={"method": "hpv", "result": "abnormal"})
    screen(s, "person:W", "breast", date(2025, 6, 1), person="W", breast={"method": "ultrasound", "birads": 3})
    c = counts(s, "person:W")
    assert c[("cervical_screening_count", "n")] == counted and c[("breast_screening_count", "n")] == counted
    assert c[("cervical_abnormal_rate", "n")] == counted and c[("cervical_abnormal_rate", "d")] == counted
    assert c[("breast_abnormal_rate", "n")] == 0 and c[("breast_abnormal_rate", "d")] == counted


def test_breast_birads_0_and_4_are_abnormal_and_unknown_age_is_not_counted() -> None:
    s = Story()
    person(s, "W", date(1980, 1, 1))
    screen(s, "person:W", "breast", date(2025, 6, 1), person="W", breast={"birads": 4})
    screen(s, "person:W", "breast", date(2025, 7, 1), person="W", breast={"birads": 0})
    screen(s, "person:V", "breast", date(2025, 6, 1), person="V", breast={"birads": 5})  # no registry person
    assert counts(s, "person:W")[("breast_abnormal_rate", "n")] == 2
    assert counts(s, "person:V")[("breast_screening_count", "n")] == 0


# --- follow-up completion -----------------------------------------------------------------------------------

@pytest.mark.parametrize("closed_after_due, outcome, reason, n, d", [
    (0, "treated", "", 1, 1),       # closed on the due date
    (1, "treated", "", 0, 1),       # a day late
    (-5, "lost", "", 0, 1),         # lost to follow-up is no outcome
    (None, "", "", 0, 1),           # still open
    (-1, "", "result corrected to normal", 0, 0),   # never due
])
def test_followup_completion_by_due_date(closed_after_due: int | None, outcome: str, reason: str, n: int,
                                         d: int) -> None:
    s = Story()
    due = date(2025, 9, 30)
    closed = due + timedelta(days=closed_after_due) if closed_after_due is not None else None
    case(s, "", "K", "contacted", due=due, closed_on=closed, outcome=outcome, closed_reason=reason)
    got = by_when(s, "followup:K", "followup_completion_rate")
    assert got.get((due.isoformat(), "n"), 0) == n and got.get((due.isoformat(), "d"), 0) == d


# --- registry-fed indicators not covered in test_rules ---------------------------------------------------

def test_wasting_and_overweight_by_weight_for_height() -> None:
    from indicators.tests.test_rules import _by_period, _child
    s = _child(date(2024, 1, 1), [(date(2025, 2, 1), {"weight_kg": 9.0, "weight_for_height_z": -2.01}),
                                  (date(2025, 5, 1), {"weight_kg": 9.5, "weight_for_height_z": 2.01}),
                                  (date(2025, 8, 1), {"weight_kg": 9.9, "weight_for_height_z": 2.0})])
    w = _by_period(s, "under5_wasting_rate")
    o = _by_period(s, "under5_overweight_rate")
    assert w[("@2025Q1", "n")] == 1 and ("@2025Q2", "n") not in w
    assert o[("@2025Q2", "n")] == 1 and ("@2025Q3", "n") not in o and o[("@2025Q3", "d")] == 1


@pytest.mark.parametrize("offset, counted", [(-90, 1), (-91, 0), (84, 1), (85, 0)])
def test_folic_acid_from_3_months_before_to_12_weeks(offset: int, counted: int) -> None:
    s = Story()
    s.enc("person:M", "folic_acid_dispensed", LMP + timedelta(days=offset), folic_acid={"person_id": "M"})
    c = counts(s, "pregnancy:P")
    assert c[("folic_acid_uptake_rate", "n")] == counted and c[("folic_acid_uptake_rate", "d")] == 1


def test_every_catalogue_indicator_has_a_hand_computed_test() -> None:
    here = Path(__file__).parent
    text = "".join(p.read_text(encoding="utf-8") for p in here.glob("test_*.py"))
    missing = [i.code for i in CAT.indicators if f'"{i.code}"' not in text]
    assert not missing


@pytest.mark.parametrize("gest_days, counted", [(195, False), (196, True)])
def test_a_child_born_alive_before_28_weeks_is_in_no_child_indicator(gest_days: int, counted: bool) -> None:
    # 27+6 weeks: a miscarriage in MCH statistics — neither a live birth nor a child (nor a neonatal death)
    s = Story().deliver(gest_days=gest_days)
    child = next(f for f in s.facts if f.record_key == "person:C1")
    s.facts.remove(child)
    s.facts.append(Fact("person:C1", "person:C1", 1, False, {**child.body, "born_in_pregnancy_id": "P"}))
    s.enc("person:C1", "death", s.delivered_on + timedelta(days=3),
          death={"person_id": "C1", "died_on": (s.delivered_on + timedelta(days=3)).isoformat()})
    c = counts(s, "person:C1", clock="2026-11")
    assert c[("neonatal_mortality_rate", "n")] == int(counted)
    assert counts(s, "pregnancy:P")[("live_births", "n")] == int(counted)
    assert units.person_dependencies("person:C1", s.facts)[:2] == [units.CLOCK, "pregnancy:P"]
