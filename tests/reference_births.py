"""An independent reference of the birth, PMTCT, 户籍 and count indicators of docs/indicators-added.md, over
the families a property test posted (tests/reference.py's Family and Child, with the extra fields below) —
sharing no code with the indicators service. Deliberately plain: one loop, every question asked again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tests import reference as ref
from tests.reference import Family

INFECTIONS = ("hiv", "syphilis", "hbsag")

CODES = ("live_births_male", "live_births_female", "sex_ratio_at_birth", "live_births_second_plus",
         "sex_ratio_second_plus",
         *(f"{i}_{s}" for i in INFECTIONS for s in ("tested_in_pregnancy", "tested_labour_only", "positive_women",
                                                    "positive_rate")),
         "hiv_arv_rate", "syphilis_treatment_rate", "hbsag_exposed_live_births", "hepb_dose1_timely_rate",
         "hiv_exposed_infant_arv_rate", "hiv_exposed_infant_test_rate", "syphilis_exposed_infant_prophylaxis_rate",
         "syphilis_exposed_infant_test_rate", "pregnancies_booked", "first_antenatal_care",
         "hospital_delivery_women", "folic_acid_booked_persons", "hearing_screened_count", "metabolic_screened_count",
         "live_births_hukou_county", "live_births_hukou_other", "live_births_hukou_province",
         "women_delivered_hukou_province")
COUNTS = tuple(c for c in CODES if not c.endswith(("_rate", "ratio_at_birth", "ratio_second_plus")))


@dataclass
class Extra:
    """What a family's records say beyond tests/reference.py's Family (kept by the test, by pregnancy id)."""

    hukou: str = ""                                   # the mother's 户籍 county ("" = not posted)
    treated: set[str] = field(default_factory=set)    # infections whose positive result's case records 'treated'
    #: by child person id: birth order, first-dose hours, (infection, tested, prophylaxis) records kept
    order: dict[int, int | None] = field(default_factory=dict)   # index of the baby → 孩次
    dose1_hours: dict[str, list[float]] = field(default_factory=dict)
    care: dict[str, list[tuple[str, bool, bool]]] = field(default_factory=dict)


def values(families: list[Family], extra: dict[str, Extra], region: str, start: date,
           end: date) -> dict[str, tuple[int, int | None]]:
    out: dict[str, list[int]] = {c: [0, 0] for c in CODES}

    def add(code: str, n: bool | int, d: bool | int = 0) -> None:
        out[code][0] += int(n)
        out[code][1] += int(d)

    # the women as finally identified (a merged duplicate registration is hers; an unmerged one her own, with no
    # extras of its own: it is a second, undelivered booking)
    for f in ref.identities(families):
        x = extra.get(f.pregnancy_id) or Extra()
        if start <= f.booked <= end and f.residence_on(f.booked).startswith(region):
            add("pregnancies_booked", 1)
            took = any((f.lmp - d).days <= 90 and (d - f.lmp).days <= 84 for d in f.folic_acid)
            add("folic_acid_booked_persons", took)
        if f.visits:
            first = min(v.on for v in f.visits)
            if start <= first <= end and f.residence_on(first).startswith(region):
                add("first_antenatal_care", 1)
        on = f.delivered
        if on is None or not start <= on <= end or (on - f.lmp).days < 196:
            continue
        home = f.residence_on(on)
        if not home.startswith(region):
            continue
        facility = f.place == "hospital" and f.licensed
        add("hospital_delivery_women", facility)
        positive: dict[str, bool] = {}
        for inf in INFECTIONS:
            mine = [t for t in f.infection_tests if t.infection == inf and (t.timing == "labour" or t.on <= on)]
            during = any(t.timing == "pregnancy" for t in mine)
            positive[inf] = any(t.positive for t in mine)
            add(f"{inf}_tested_in_pregnancy", during)
            add(f"{inf}_tested_labour_only", not during and bool(mine))
            add(f"{inf}_positive_women", positive[inf])
            add(f"{inf}_positive_rate", positive[inf], bool(mine))
        add("hiv_arv_rate", positive["hiv"] and "hiv" in x.treated, positive["hiv"])
        add("syphilis_treatment_rate", positive["syphilis"] and "syphilis" in x.treated, positive["syphilis"])
        province = bool(x.hukou) and x.hukou[:2] == home[:2]
        add("women_delivered_hukou_province", province)
        for i, b in enumerate(f.babies):
            if not b.live:
                continue
            order = x.order.get(i)
            add("live_births_male", b.sex == "M")
            add("live_births_female", b.sex == "F")
            add("sex_ratio_at_birth", b.sex == "M", b.sex == "F")
            second = order is not None and order >= 2
            add("live_births_second_plus", second)
            add("sex_ratio_second_plus", second and b.sex == "M", second and b.sex == "F")
            add("hearing_screened_count", b.hearing)
            add("metabolic_screened_count", b.metabolic)
            add("live_births_hukou_county", bool(x.hukou) and x.hukou == home[:6])
            add("live_births_hukou_other", bool(x.hukou) and x.hukou != home[:6])
            add("live_births_hukou_province", province)
            care = x.care.get(b.person_id, [])
            if positive["hbsag"]:
                add("hbsag_exposed_live_births", 1)
                add("hepb_dose1_timely_rate", any(h <= 24 for h in x.dose1_hours.get(b.person_id, [])), 1)
            if positive["hiv"]:
                add("hiv_exposed_infant_arv_rate", any(c[0] == "hiv" and c[2] for c in care), 1)
                add("hiv_exposed_infant_test_rate", any(c[0] == "hiv" and c[1] for c in care), 1)
            if positive["syphilis"]:
                add("syphilis_exposed_infant_prophylaxis_rate", any(c[0] == "syphilis" and c[2] for c in care), 1)
                add("syphilis_exposed_infant_test_rate", any(c[0] == "syphilis" and c[1] for c in care), 1)
    return {c: (n, None) if c in COUNTS else (n, d) for c, (n, d) in out.items()}


EXAM_CODES = tuple(f"{e}_{s}" for e in ("premarital", "prepregnancy")
                   for s in ("exam_male", "exam_female", "syphilis_positive", "hiv_positive", "hbsag_positive",
                             "hbsag_positive_rate"))


def exam_values(exams: list[Any], region: str, start: date, end: date) -> dict[str, tuple[int, int | None]]:
    """婚检 / 孕前优生 persons by sex and their infection results (tests/reference_programmes.py's Exam records, as
    finally recorded), by exam date, where the person lived that day."""
    out: dict[str, list[int]] = {c: [0, 0] for c in EXAM_CODES}
    for e in exams:
        if e.type not in ("premarital_exam", "prepregnancy_exam") or not start <= e.on <= end \
                or not e.person.lives_on(e.on).startswith(region):
            continue
        k = e.type.split("_")[0]
        out[f"{k}_exam_male"][0] += e.person.sex == "M"
        out[f"{k}_exam_female"][0] += e.person.sex == "F"
        for inf in ("syphilis", "hiv", "hbsag"):
            out[f"{k}_{inf}_positive"][0] += e.results.get(inf) == "positive"
        out[f"{k}_hbsag_positive_rate"][0] += e.results.get("hbsag") == "positive"
        out[f"{k}_hbsag_positive_rate"][1] += e.results.get("hbsag") in ("negative", "positive")
    return {c: (n, d) if c.endswith("_rate") else (n, None) for c, (n, d) in out.items()}
