"""Each quality rule kind on hand-made records; an aggregate rule and an outlier on hand-computed monthly counts;
the query life cycle; and a property test of the reconciliation on random histories."""
from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from quality.domain import queries, rules
from quality.domain.records import (
    Baby,
    Certificate,
    Encounter,
    FollowupCase,
    Person,
    Pregnancy,
    PregnancyFile,
)

RS = rules.load()
TODAY = date(2026, 6, 1)
H = "H320582001"


def ids(findings: list[rules.Finding]) -> list[str]:
    return sorted(f.rule_id for f in findings)


def delivery(on: date, days: int, weights: list[int], key: str = "his/D1", kids: list[str] | None = None,
             mode: str = "vaginal", outcomes: list[str] | None = None) -> Encounter:
    kids = kids or ["" for _ in weights]
    outcomes = outcomes or ["live" for _ in weights]
    return Encounter(key, "delivery", on, H, "P1", "M1", gestational_days=days, mode=mode,
                     babies=tuple(Baby(w, o, k) for w, o, k in zip(weights, outcomes, kids, strict=True)))


def pfile(lmp: date = date(2025, 6, 1), booked: date = date(2025, 8, 1), mother_born: date = date(1995, 1, 1),
          encounters: list[Encounter] | None = None) -> PregnancyFile:
    return PregnancyFile(Pregnancy("P1", "M1", lmp, booked, H), Person("M1", mother_born), encounters or [])


# ---------------------------------------------------------------- per record
def test_birthweight_against_gestation_uses_the_band_of_the_completed_week() -> None:
    lo26, hi26 = RS.birthweight_band[26]
    assert ids(rules.encounter_findings(RS, delivery(date(2026, 1, 1), 26 * 7 + 3, [3800]))) == ["Q101"]
    assert rules.encounter_findings(RS, delivery(date(2026, 1, 1), 26 * 7 + 6, [hi26])) == []
    assert ids(rules.encounter_findings(RS, delivery(date(2026, 1, 1), 26 * 7, [hi26 + 1]))) == ["Q101"]
    assert ids(rules.encounter_findings(RS, delivery(date(2026, 1, 1), 26 * 7, [lo26 - 1]))) == ["Q101"]
    assert rules.encounter_findings(RS, delivery(date(2026, 1, 1), 40 * 7, [3400, 0])) == []  # 0 = not weighed
    assert rules.encounter_findings(RS, delivery(date(2026, 1, 1), 19 * 7, [3400])) == []  # week outside table
    twins = rules.encounter_findings(RS, delivery(date(2026, 1, 1), 39 * 7, [200, 3000, 6000]))
    assert [f.key for f in twins] == ["Q101:his/D1#0", "Q101:his/D1#2"]
    assert rules.encounter_findings(RS, delivery(date(2026, 1, 1), 26 * 7, [3800]).__class__(
        "k", "delivery", date(2026, 1, 1), H, voided=True, gestational_days=26 * 7,
        babies=(Baby(3800, "live"),))) == []


def test_child_check_z_beyond_the_who_flags() -> None:
    def check(**z: float) -> list[str]:
        return ids(rules.encounter_findings(RS, Encounter("his/C1", "child_check", date(2026, 1, 1), H,
                                                          person_id="K1", z=z)))
    assert check(weight_for_age_z=-5.99, height_for_age_z=5.99, weight_for_height_z=4.99) == []
    assert check(weight_for_age_z=5.01) == ["Q104"]
    assert check(height_for_age_z=-6.2) == ["Q104"]
    assert check(weight_for_height_z=-5.01) == ["Q104"]
    assert check() == []  # not computable: no z on the event


def test_high_risk_case_past_its_due_date() -> None:
    case = FollowupCase("c1", "pregnancy_high_risk", "open", date(2026, 5, 31), H)
    assert ids(rules.case_findings(RS, case, TODAY)) == ["Q203"]
    assert rules.case_findings(RS, case, date(2026, 5, 31)) == []
    assert rules.case_findings(RS, FollowupCase("c1", "pregnancy_high_risk", "closed", date(2026, 5, 1), H),
                               TODAY) == []
    assert rules.case_findings(RS, FollowupCase("c2", "newborn_hearing", "open", date(2026, 5, 1), H), TODAY) == []
    assert rules.case_next_check(case, date(2026, 5, 20)) == date(2026, 6, 1)


# ---------------------------------------------------------------- per pregnancy
def test_dates_out_of_order_go_to_the_record_out_of_place() -> None:
    d = delivery(date(2026, 3, 1), 273, [3300])
    late_visit = Encounter("his/V9", "prenatal_visit", date(2026, 3, 5), "H2", "P1", "M1")
    early_pp = Encounter("his/PP1", "postpartum_visit", date(2026, 2, 20), "H3", "P1", "M1")
    ok_pp = Encounter("his/PP2", "postpartum_visit", date(2026, 3, 8), "H3", "P1", "M1")
    found = rules.dates_order_findings(RS, pfile(encounters=[d, late_visit, early_pp, ok_pp]))
    assert sorted((f.record_key, f.institution_code) for f in found) == [("his/PP1", "H3"), ("his/V9", "H2")]
    booked_before_lmp = rules.dates_order_findings(RS, pfile(lmp=date(2025, 6, 1), booked=date(2025, 5, 1)))
    assert [f.record_key for f in booked_before_lmp] == ["pregnancy:P1"]


def test_delivery_without_a_booking_before_it() -> None:
    d = delivery(date(2026, 3, 1), 273, [3300])
    assert ids(rules.booking_findings(RS, pfile(booked=date(2026, 3, 1), encounters=[d]))) == ["Q103"]
    assert rules.booking_findings(RS, pfile(booked=date(2026, 2, 28), encounters=[d])) == []


@pytest.mark.parametrize(("born", "flagged"), [(date(2013, 8, 2), True), (date(2013, 8, 1), False),
                                                (date(1965, 8, 1), False), (date(1964, 8, 1), True)])
def test_mother_younger_than_12_or_older_than_60_at_booking(born: date, flagged: bool) -> None:
    # booked 2025-08-01: born 2013-08-02 is 11, 2013-08-01 is 12; 1965-08-01 is 60, 1964-08-01 is 61
    assert ids(rules.mother_age_findings(RS, pfile(mother_born=born))) == (["Q105"] if flagged else [])


def test_twins_whose_birth_dates_disagree() -> None:
    d = delivery(date(2026, 3, 1), 259, [2500, 2400], kids=["K1", "K2"])
    f = pfile(encounters=[d])
    f.children = {"K1": Person("K1", date(2026, 3, 1), "P1"), "K2": Person("K2", date(2026, 3, 2), "P1")}
    assert rules.twins_findings(RS, f) == []  # one day apart: born either side of midnight
    f.children["K2"] = Person("K2", date(2026, 3, 9), "P1")
    assert ids(rules.twins_findings(RS, f)) == ["Q106"]


def test_missing_newborn_visit_and_certificate_after_the_deadline() -> None:
    born = date(2026, 3, 1)
    d = delivery(born, 273, [3300, 3100], kids=["K1", "K2"], outcomes=["live", "live"])
    f = pfile(encounters=[d])
    # day 28 after birth: not yet; day 29: both children lack a visit; day 31: also a certificate
    assert rules.followup_findings(RS, f, born + timedelta(days=28)) == []
    assert ids(rules.followup_findings(RS, f, born + timedelta(days=29))) == ["Q201", "Q201"]
    assert ids(rules.followup_findings(RS, f, born + timedelta(days=31))) == ["Q201", "Q201", "Q202", "Q202"]
    f.child_encounters = {"K1": [Encounter("his/C1", "child_check", born + timedelta(days=7), H, person_id="K1",
                                           is_newborn_visit=True)]}
    f.certificates = {"K1": [Certificate("Q1", "K1", "first", "voided", H)],
                      "K2": [Certificate("Q2", "K2", "first", "issued", H)]}
    found = rules.followup_findings(RS, f, born + timedelta(days=31))
    assert sorted(f.key for f in found) == ["Q201:his/D1#K2", "Q202:his/D1#K1"]
    assert rules.pregnancy_next_check(RS, f, born) == born + timedelta(days=29)
    assert rules.pregnancy_next_check(RS, f, born + timedelta(days=40)) is None


# ---------------------------------------------------------------- per institution and month
def test_aggregate_rules_left_operator_right_on_hand_counted_months() -> None:
    # H: March 3 deliveries, one a caesarean with a stillbirth (2 live births); April 2 deliveries, both
    # caesareans, 2 live births; booked: March 4, April 1; HIV tested: March 4, April 2
    m = {(H, "2026-03"): {"women_delivered": 3, "live_births": 2, "caesareans": 1, "booked": 4, "hiv_tested": 4},
         (H, "2026-04"): {"women_delivered": 2, "live_births": 2, "caesareans": 2, "booked": 1, "hiv_tested": 2},
         (H, "2026-05"): {"caesareans": 1}}
    found = rules.aggregate_findings(RS, m)
    assert sorted((f.rule_id, f.period) for f in found) == [
        ("Q301", "2026-03"),  # 2 live births < 3 women delivered
        ("Q302", "2026-05"),  # 1 caesarean > 0 deliveries (a month without deliveries counts 0)
        ("Q303", "2026-04"),  # 2 tested > 1 booked
    ]


def test_modified_z_score_outlier_of_monthly_deliveries() -> None:
    counts = [20, 22, 19, 21, 20, 23, 18, 21, 20, 22, 19, 60]  # 2025-07 .. 2026-06
    months = [f"{2025 + (6 + i) // 12:04d}-{(6 + i) % 12 + 1:02d}" for i in range(12)]
    m = {(H, mo): {"women_delivered": n} for mo, n in zip(months, counts, strict=True)}
    # by hand: median 20.5; |x - 20.5| = .5 1.5 1.5 .5 .5 2.5 2.5 .5 .5 1.5 1.5 39.5 -> MAD 1.5;
    # M(60) = 0.6745 * 39.5 / 1.5 = 17.76 > 3.5
    found = rules.outlier_findings(RS, m, ["2026-06"])
    assert [(f.rule_id, f.period) for f in found] == [("Q401", "2026-06")]
    assert "17.76" in found[0].detail
    z = rules.modified_z(counts)
    assert z is not None and abs(z[-1] - 0.6745 * 39.5 / 1.5) < 1e-9
    assert rules.outlier_findings(RS, m, ["2026-05"]) == []  # 19 against its window: |M| small
    few = {(H, mo): {"women_delivered": n} for mo, n in list(zip(months, counts, strict=True))[-5:]}
    assert rules.outlier_findings(RS, few, ["2026-06"]) == []  # fewer than min_months of history


# ---------------------------------------------------------------- queries
def test_query_life_cycle() -> None:
    f = rules.Finding("Q101", "Q101:his/D1#0", "his/D1", H, "3800 g at 26 weeks", "2026-03")
    [q] = queries.reconcile({}, {f.key: f}, set(), TODAY, RS.query_due_days)
    assert (q.status, q.due_on, q.level(TODAY)) == ("open", TODAY + timedelta(days=14), "institution")
    assert q.level(TODAY + timedelta(days=15)) == "bureau"  # overdue: escalated to the bureau above
    a = queries.answer(q, "核实无误", "u1")
    assert (a.status, a.comment, a.answered_by) == ("answered", "核实无误", "u1")
    assert queries.reconcile({q.key: a}, {f.key: f}, set(), TODAY, 14) == []
    [c] = queries.reconcile({q.key: a}, {}, set(), TODAY, 14)
    assert c.status == "corrected"
    [w] = queries.reconcile({q.key: a}, {}, {"his/D1"}, TODAY, 14)
    assert w.status == "withdrawn"
    [back] = queries.reconcile({q.key: c}, {f.key: f}, set(), TODAY, 14)
    assert back.status == "open" and back.version == c.version + 1
    acc = queries.accept(q, None, "bureau", TODAY)
    assert acc.status == "accepted"
    with pytest.raises(queries.DomainError):
        queries.answer(c, "x", "u1")


def test_rule_file_is_checked_when_loaded(tmp_path: object) -> None:
    import json
    from pathlib import Path

    doc = json.loads(sorted(rules.RULES_DIR.glob("v*.json"))[-1].read_text(encoding="utf-8"))
    doc["rules"][-2]["check"]["operator"] = "≈"
    p = Path(str(tmp_path)) / "v9.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(rules.RuleError):
        rules.load(p)


# ---------------------------------------------------------------- property: reconcile = recompute
def test_reconciling_any_history_leaves_open_exactly_the_findings_of_the_final_state() -> None:
    """Random sequences of finding sets (a unit evaluated again after each event) with answers in between: the
    live queries are always exactly the last evaluation's findings, the others closed."""
    rng = random.Random(18)
    keys = [f"Q101:his/D{i}#0" for i in range(8)]
    for _ in range(300):
        existing: dict[str, queries.Query] = {}
        for _step in range(rng.randint(1, 8)):
            found = {k: rules.Finding("Q101", k, k[5:-2], H, "d", "2026-03") for k in keys if rng.random() < 0.4}
            voided = {k[5:-2] for k in keys if rng.random() < 0.2}
            for q in queries.reconcile(existing, found, voided, TODAY, 14):
                existing[q.key] = q
            for k, q in list(existing.items()):
                if q.status == "open" and rng.random() < 0.3:
                    existing[k] = queries.answer(q, "ok", "u")
        live = {k for k, q in existing.items() if q.status in queries.LIVE}
        assert live == set(found)
