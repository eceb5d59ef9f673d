"""Every registry-fed indicator from hand-computed cases, at its boundaries (pure domain: facts in,
contributions out). Expected numbers are worked out by hand in the comments."""
from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest

from indicators.domain import catalogue, periods, units
from indicators.domain.facts import Fact

CAT = catalogue.load()
LMP = date(2025, 1, 1)
HOME = "320582101001"


class Story:
    """A pregnancy (P) of mother M with optional encounters; children C1, C2 …"""

    def __init__(self, registered_gest: int = 60) -> None:
        self.facts: list[Fact] = [
            Fact("pregnancy:P", "pregnancy:P", 1, False, {
                "pregnancy_id": "P", "mother_id": "M", "lmp_date": LMP.isoformat(),
                "registered_on": (LMP + timedelta(days=registered_gest)).isoformat(),
                "institution_code": "H1", "residence_code": HOME}),
            Fact("person:M", "person:M", 1, False, {"person_id": "M", "sex": "F", "birth_date": "1995-05-05",
                                                     "residence": [{"since": "", "region_code": HOME}]}),
        ]
        self.n = 0

    def enc(self, subject: str, type_: str, on: date, **detail: Any) -> Story:
        self.n += 1
        body: dict[str, Any] = {"encounter_key": f"h/E{self.n}", "type": type_, "occurred_on": on.isoformat(),
                                "institution_code": "H1", "institution_region": HOME}
        body.update(detail)
        self.facts.append(Fact(f"encounter:h/E{self.n}", subject, 1, False, body))
        return self

    def visit(self, gest_days: int, grade: str = "", counts: bool = True) -> Story:
        return self.enc("pregnancy:P", "prenatal_visit", LMP + timedelta(days=gest_days), prenatal_visit={
            "gestational_days": gest_days, "risk_grade": grade, "counts_as_antenatal_check": counts})

    def deliver(self, gest_days: int = 273, babies: int = 1, weights: tuple[int, ...] = (3200, 3100),
                place: str = "hospital") -> Story:
        bs = []
        on = LMP + timedelta(days=gest_days)
        for i in range(babies):
            cid = f"C{i + 1}"
            bs.append({"sex": "F", "birth_weight_g": weights[i], "outcome": "live", "child_id": cid})
            self.facts.append(Fact(f"person:{cid}", f"person:{cid}", 1, False, {
                "person_id": cid, "sex": "F", "birth_date": on.isoformat(), "mother_id": "M",
                "residence": [{"since": "", "region_code": HOME}]}))
        return self.enc("pregnancy:P", "delivery", on, delivery={
            "place": place, "mode": "vaginal", "babies": bs, "institution_midwifery_licensed": True})

    @property
    def delivered_on(self) -> date:
        return next(date.fromisoformat(f.body["occurred_on"]) for f in self.facts if f.body.get("type") == "delivery")

    def postpartum(self, day: int) -> Story:
        return self.enc("pregnancy:P", "postpartum_visit", self.delivered_on + timedelta(days=day))

    def counts(self, unit: str = "pregnancy:P", clock: str | None = None) -> Counter[tuple[str, str]]:
        facts = list(self.facts)
        if clock:
            facts.append(Fact(units.CLOCK, units.CLOCK, 1, False, {"month": clock}))
        return Counter((c[0], c[1]) for c in units.compute(unit, facts, CAT))


def test_early_booking_needs_booking_and_first_check_before_13_weeks() -> None:
    # 12+6 = day 90 counts, 13+0 = day 91 does not; denominator is live births (twins: 2)
    s = Story(registered_gest=90).visit(90).deliver(babies=2)
    c = s.counts()
    assert c[("early_booking_rate", "n")] == 1 and c[("early_booking_rate", "d")] == 2
    assert Story(registered_gest=90).visit(91).deliver().counts()[("early_booking_rate", "n")] == 0
    assert Story(registered_gest=91).visit(60).deliver().counts()[("early_booking_rate", "n")] == 0


def test_antenatal_checks_count_days_with_a_counted_check() -> None:
    s = Story()
    for g in (60, 100, 140, 180):
        s.visit(g)
    s.visit(180)                    # same day twice: one check
    s.visit(200, counts=False)      # pregnancy test only: not a check
    c = s.deliver().counts()
    assert c[("antenatal_check_rate", "n")] == 1 and c[("antenatal_5plus_rate", "n")] == 0
    s = Story()
    for g in (60, 100, 140, 180, 220):
        s.visit(g)
    assert s.deliver().counts()[("antenatal_5plus_rate", "n")] == 1
    assert Story().deliver().counts()[("antenatal_check_rate", "n")] == 0


@pytest.mark.parametrize("day, counted", [(0, True), (28, True), (29, False)])
def test_postpartum_visit_within_28_days(day: int, counted: bool) -> None:
    c = Story().deliver().postpartum(day).counts()
    assert c[("postpartum_visit_rate", "n")] == int(counted) and c[("postpartum_visit_rate", "d")] == 1


def test_systematic_management_needs_all_four() -> None:
    def story(first: int = 70, n: int = 5, place: str = "hospital", pp: int | None = 7) -> int:
        s = Story()
        for i in range(n):
            s.visit(first + 30 * i)
        s.deliver(place=place)
        if pp is not None:
            s.postpartum(pp)
        return s.counts()[("systematic_management_rate", "n")]

    assert story() == 1
    assert story(first=91) == 0          # first check at 13+0
    assert story(n=4) == 0               # four checks
    assert story(place="home") == 0      # not a facility delivery
    assert story(pp=None) == 0           # no postpartum visit
    assert story(pp=29) == 0             # too late


def test_high_risk_share_uses_the_highest_grade() -> None:
    c = Story().visit(60, "yellow").visit(100, "orange").visit(140, "green").deliver().counts()
    assert c[("high_risk_share", "n")] == 1 and c[("high_risk_share", "d")] == 1
    assert Story().visit(60, "yellow").deliver().counts()[("high_risk_share", "n")] == 0


def test_newborn_visit_and_low_birth_weight_per_live_birth() -> None:
    s = Story().deliver(babies=2, weights=(2499, 2500))
    born = s.delivered_on
    s.enc("person:C1", "newborn_visit", born + timedelta(days=28))
    s.enc("person:C2", "newborn_visit", born + timedelta(days=29))
    c = s.counts()
    assert c[("newborn_visit_rate", "n")] == 1 and c[("newborn_visit_rate", "d")] == 2
    assert c[("low_birth_weight_rate", "n")] == 1 and c[("low_birth_weight_rate", "d")] == 2


def test_unweighed_births_leave_the_low_birth_weight_denominator() -> None:
    c = Story().deliver(weights=(0, 0)).counts()
    assert c[("low_birth_weight_rate", "d")] == 0 and c[("live_births", "n")] == 1


def _death_counts(birth: date, died: date, maternal: bool = False) -> Counter[tuple[str, str]]:
    s = Story()
    s.facts.append(Fact("person:K", "person:K", 1, False, {"person_id": "K", "sex": "M",
                                                           "birth_date": birth.isoformat(),
                                                           "residence": [{"since": "", "region_code": HOME}]}))
    s.enc("person:K", "death", died, death={"person_id": "K", "died_on": died.isoformat(), "maternal": maternal})
    return s.counts("person:K")


@pytest.mark.parametrize("age_days, neonatal", [(27, 1), (28, 0)])
def test_neonatal_death_is_under_28_days(age_days: int, neonatal: int) -> None:
    c = _death_counts(date(2025, 3, 1), date(2025, 3, 1) + timedelta(days=age_days))
    assert c[("neonatal_mortality_rate", "n")] == neonatal and c[("infant_mortality_rate", "n")] == 1


def test_infant_and_under5_deaths_by_birthday() -> None:
    assert _death_counts(date(2024, 3, 1), date(2025, 2, 28))[("infant_mortality_rate", "n")] == 1
    assert _death_counts(date(2024, 3, 1), date(2025, 3, 1))[("infant_mortality_rate", "n")] == 0
    c = _death_counts(date(2020, 3, 1), date(2025, 2, 28))
    assert c[("under5_mortality_rate", "n")] == 1 and c[("infant_mortality_rate", "n")] == 0
    assert _death_counts(date(2020, 3, 1), date(2025, 3, 1))[("under5_mortality_rate", "n")] == 0


def test_maternal_death_counts_on_its_death_date() -> None:
    c = _death_counts(date(1990, 1, 1), date(2025, 6, 1), maternal=True)
    assert c[("maternal_mortality_ratio", "n")] == 1 and c[("under5_mortality_rate", "n")] == 0


def test_live_births_anchor_periods_at_the_statistical_year_edge() -> None:
    s = Story().deliver(gest_days=(date(2025, 9, 30) - LMP).days)
    facts = s.facts
    when = {c[2] for c in units.compute("pregnancy:P", facts, CAT) if c[0] == "live_births"}
    assert when == {"2025-09-30"}
    from indicators.domain.periods import stored_key, stored_keys
    assert stored_key("2025-09-30") in stored_keys("2025SY") and stored_key("2025-09-30") not in stored_keys("2026SY")
    assert stored_key("2025-10-01") in stored_keys("2026SY") and stored_key("2025-10-01") in stored_keys("2025")


def _child(birth: date, checks: list[tuple[date, dict[str, Any]]], born_here: bool = True) -> Story:
    s = Story()
    s.facts.append(Fact("person:K", "person:K", 1, False, {
        "person_id": "K", "sex": "F", "birth_date": birth.isoformat(), "mother_id": "M" if born_here else "",
        "residence": [{"since": "", "region_code": HOME}]}))
    for on, cc in checks:
        s.enc("person:K", "child_health_check", on, child_check=cc)
    return s


def read_periods(contribs: list[units.Contribution], code: str, clock: str) -> dict[tuple[str, str], int]:
    """What the store reads for every reporting period of 2015–2030 (flows by month, per-period counts, standing
    populations up to the period end), as {("@<period>", part): total} for the non-zero ones."""
    today = date.fromisoformat(clock + "-01")
    keys = [k for y in range(2015, 2031) for k in (f"{y}", f"{y}SY", f"{y}H1", f"{y}H2",
                                                     *(f"{y}Q{q}" for q in range(1, 5)),
                                                     *(f"{y}-{m:02d}" for m in range(1, 13)))]
    out: Counter[tuple[str, str]] = Counter()
    for c in contribs:
        if c[0] == code:
            for k in keys:
                if periods.counts_in(c[2], k, today):
                    out[("@" + k, c[1])] += c[5]
    return {k: v for k, v in out.items() if v}


def _by_period(s: Story, code: str, clock: str = "2026-11") -> dict[tuple[str, str], int]:
    facts = [*s.facts, Fact(units.CLOCK, units.CLOCK, 1, False, {"month": clock})]
    return read_periods(units.compute("person:K", facts, CAT), code, clock)


def test_checks_due_422_pro_rated() -> None:
    b = date(2024, 1, 1)
    assert units.checks_due(b, date(2024, 1, 1), date(2024, 12, 31)) == 4   # the whole first year
    assert units.checks_due(b, date(2025, 1, 1), date(2025, 12, 31)) == 2   # second year
    assert units.checks_due(b, date(2024, 1, 1), date(2024, 6, 30)) == 2    # 4 × 182/366 = 1.99 → 2
    assert units.checks_due(b, date(2024, 1, 1), date(2024, 3, 31)) == 1    # 4 × 91/366 = 0.99 → 1
    assert units.checks_due(b, date(2024, 1, 1), date(2024, 1, 31)) == 0    # 4 × 31/366 = 0.34 → 0
    # 2024-07-01 … 2025-06-30: year 1 for 184 days (4×184/366 = 2.01), year 2 for 181 days (2×181/365 = 0.99)
    assert units.checks_due(b, date(2024, 7, 1), date(2025, 6, 30)) == 3


def test_under3_systematic_management_in_a_year() -> None:
    birth = date(2024, 1, 1)
    wh = {"weight_kg": 8.0, "height_cm": 70.0}
    four = [(date(2024, m, 15), wh) for m in (3, 6, 9, 12)]
    got = _by_period(_child(birth, four), "under3_systematic_management_rate")
    assert got[("@2024", "n")] == 1 and got[("@2024", "d")] == 1
    got = _by_period(_child(birth, four[:3]), "under3_systematic_management_rate")
    assert ("@2024", "n") not in got and got[("@2024", "d")] == 1
    # under 3 at the end of 2026-11? born 2024-01-01: yes (third birthday 2027-01-01)
    assert got[("@2026-11", "d")] == 1 and ("@2027", "d") not in got  # 2027 has not started on the clock


def test_under7_population_follows_age_residence_and_death() -> None:
    birth = date(2019, 3, 10)   # seventh birthday 2026-03-10
    s = _child(birth, [(date(2025, 5, 1), {"weight_kg": 20.0, "height_cm": 110.0}),
                       (date(2026, 1, 5), {"weight_kg": 21.0, "height_cm": 0})])
    got = _by_period(s, "under7_health_management_rate")
    assert got[("@2025", "d")] == 1 and got[("@2025", "n")] == 1
    assert got[("@2026-02", "d")] == 1 and ("@2026-01", "n") not in got   # no height: not a health check
    assert ("@2026-03", "d") not in got and ("@2026Q1", "d") not in got   # seven at the end of March
    assert ("@2026SY", "d") not in got
    s.enc("person:K", "death", date(2025, 12, 20), death={"person_id": "K", "died_on": "2025-12-20"})
    got = _by_period(s, "under7_health_management_rate")
    assert ("@2025-12", "d") not in got and got[("@2025-11", "d")] == 1


def test_the_standing_population_moves_with_the_child_and_matches_every_period_end() -> None:
    """A child born 2024-01-20 moves from HOME to AWAY on 2025-05-10: under 7 counted at HOME at the end of
    every period up to April 2025 and at AWAY from May 2025 (the residence at the period end decides); under 3
    up to December 2026 (third birthday 2027-01-20 is after 2026-12-31)."""
    away = "320582102003"
    s = _child(date(2024, 1, 20), [])
    s.facts[-1].body["residence"] = [{"since": "", "region_code": HOME}, {"since": "2025-05-10", "region_code": away}]
    facts = [*s.facts, Fact(units.CLOCK, units.CLOCK, 1, False, {"month": "2030-12"})]
    contribs = [c for c in units.compute("person:K", facts, CAT) if c[0] == "under7_health_management_rate"]
    standing = sorted((c[2], c[3], c[5]) for c in contribs if c[2].startswith("^"))
    # entered at HOME in January 2024, left HOME and entered AWAY in May 2025, left at the seventh birthday;
    # at the third birthday the run is split (under 3 → not): for the under-7 count the two net to zero
    assert standing == [("^2024-01", HOME, 1), ("^2025-05", HOME, -1), ("^2025-05", away, 1),
                        ("^2027-01", away, -1), ("^2027-01", away, 1), ("^2031-01", away, -1)]
    at_home = read_periods([c for c in contribs if c[3] == HOME], "under7_health_management_rate", "2030-12")
    assert at_home[("@2024-01", "d")] == 1 and at_home[("@2025Q1", "d")] == 1 and at_home[("@2025-04", "d")] == 1
    assert ("@2025-05", "d") not in at_home and ("@2025", "d") not in at_home and ("@2023", "d") not in at_home
    u3 = _by_period(s, "under3_systematic_management_rate", clock="2030-12")
    assert u3[("@2026", "d")] == 1 and ("@2027-01", "d") not in u3 and u3[("@2026-12", "d")] == 1


def test_a_child_first_seen_later_counts_from_then() -> None:
    s = _child(date(2022, 6, 1), [(date(2025, 2, 10), {"weight_kg": 14.0, "height_cm": 95.0})], born_here=False)
    got = _by_period(s, "under7_health_management_rate")
    assert ("@2025-01", "d") not in got and got[("@2025-02", "d")] == 1 and got[("@2025Q1", "d")] == 1


def test_latest_check_in_the_period_decides_growth_and_feeding() -> None:
    birth = date(2025, 1, 1)
    s = _child(birth, [
        (date(2025, 2, 1), {"weight_kg": 3.5, "feeding": "exclusive_breastfeeding", "weight_for_age_z": -2.5}),
        (date(2025, 3, 1), {"weight_kg": 5.0, "feeding": "mixed", "weight_for_age_z": -1.0,
                            "height_for_age_z": "NaN"}),
        (date(2025, 8, 1), {"weight_kg": 7.0, "feeding": "exclusive_breastfeeding", "weight_for_age_z": -2.1,
                            "haemoglobin_g_l": 105}),   # 7 months: not an infant 0–5 months any more
    ])
    ebf = _by_period(s, "exclusive_breastfeeding_rate")
    assert ebf[("@2025-02", "n")] == 1 and ebf[("@2025Q1", "d")] == 1 and ("@2025Q1", "n") not in ebf
    assert ("@2025-08", "d") not in ebf and ebf[("@2025", "d")] == 1 and ("@2025", "n") not in ebf
    uw = _by_period(s, "under5_underweight_rate")
    assert uw[("@2025Q1", "d")] == 1 and ("@2025Q1", "n") not in uw and uw[("@2025", "n")] == 1
    st = _by_period(s, "under5_stunting_rate")
    assert ("@2025-03", "d") not in st            # height-for-age not computable: not in the denominator
    an = _by_period(s, "under5_anaemia_rate")
    assert an[("@2025-08", "n")] == 1 and an[("@2025", "d")] == 1
