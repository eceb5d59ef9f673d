"""The demo county's programme records (issue 21): pregnancies ended by a termination (人工流产 / 引产),
maternal near misses (危重孕产妇), reviews of maternal and child deaths (死亡评审), birth defects found in the
first week (出生缺陷), neonatal tetanus, children at risk under management (体弱儿专案) and nursery health checks
of children and staff (托幼机构体检). Rates in county.json (`terminations_per_birth` ...).

Drawn from a random stream of their own, so that the rest of the plan stays what it was for a seed.
"""
from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from demo.county import Institution

DEFECTS = {"congenital_heart_disease": 35, "polydactyly": 14, "hypospadias": 8, "cleft_lip_palate": 5,
           "cleft_lip": 3, "syndactyly": 5, "microtia": 4, "clubfoot": 5, "down_syndrome": 3, "hydrocephalus": 2,
           "spina_bifida": 2, "anorectal_atresia": 2, "other": 12}
REVIEW_CAUSES = {"maternal": ("obstetric_haemorrhage", "hypertensive_disorder", "amniotic_fluid_embolism",
                              "heart_disease", "other_medical"),
                 "child": ("prematurity_low_birth_weight", "birth_asphyxia", "pneumonia",
                           "congenital_heart_disease", "injury")}
NURSERIES = ("城关幼儿园", "东湖幼儿园", "龙城幼儿园", "西山中心幼儿园", "南桥幼儿园", "实验幼儿园")


def rng(g: Any) -> random.Random:
    """The generator's programme stream (created once per generator)."""
    if not hasattr(g, "_programme_rng"):
        g._programme_rng = random.Random(f"{g.prefix}:{g.county.code}:{g.year}:programmes")
    return g._programme_rng  # type: ignore[no-any-return]


def chance(g: Any, rate: str) -> bool:
    return rng(g).random() < float(g.rates[rate])


def review(g: Any, died: date, kind: str) -> dict[str, Any]:
    """死亡评审 of a death (the `review` of its encounter), when the review has met by today (within 3 months)."""
    r = rng(g)
    on = died + timedelta(days=r.randint(20, 90))
    if on > g.today or not chance(g, "death_reviewed"):
        return {}
    avoidable = chance(g, "death_avoidable")
    return {"review": {"reviewed_on": on.isoformat(), "cause_category": r.choice(REVIEW_CAUSES[kind]),
                       "preventability": r.choice(("avoidable", "conditionally_avoidable")) if avoidable
                       else "unavoidable"}}


def near_miss(g: Any, pid: str, delivered: date, lmp: date, hospital: Institution) -> None:
    """危重孕产妇, on the delivery day or in the days before it (never after a maternal death)."""
    if not chance(g, "near_miss"):
        return
    on = max(lmp, delivered - timedelta(days=rng(g).randint(0, 5)))
    if on <= g.today:
        g.encounter("after_birth", "maternal_near_miss", on, hospital, pid,
                    cause_category=rng(g).choice(REVIEW_CAUSES["maternal"]),
                    organ_dysfunction=rng(g).random() < 0.3)


def newborn(g: Any, cref: str, born: date, alive_until: date, hospital: Institution, centre: Institution) -> None:
    """A live birth's first weeks and years: a birth defect found in the first week, neonatal tetanus, 体弱儿."""
    r = rng(g)
    last = min(g.today, alive_until)
    if chance(g, "birth_defect_7d"):
        on = born + timedelta(days=r.choice((0, 0, 0, 1, 2, 3, 5)))
        if on <= last:
            cats = r.choices(list(DEFECTS), weights=list(DEFECTS.values()), k=r.choice((1, 1, 1, 2)))
            g.encounter("after_birth", "birth_defect", on, hospital, cref, categories=sorted(set(cats)))
    if chance(g, "neonatal_tetanus"):
        on = born + timedelta(days=r.randint(4, 14))
        if on <= last:
            g.encounter("after_birth", "neonatal_tetanus", on, hospital, cref, died=False)
    at_risk(g, cref, born + timedelta(days=r.randint(30, 120)), last, centre, "after_birth")


def at_risk(g: Any, cref: str, on: date, last: date, centre: Institution, step: str) -> None:
    """体弱儿专案: enrolled at a check, closed (结案) 2–6 months later when that has happened by today."""
    if on > last or not chance(g, "at_risk_enrolled"):
        return
    r = rng(g)
    fields: dict[str, Any] = {"conditions": [r.choice(("anaemia", "malnutrition", "rickets", "obesity",
                                                       "premature_or_low_birth_weight"))]}
    closed = on + timedelta(days=r.randint(60, 180))
    if closed <= last:
        fields.update(closed_on=closed.isoformat(),
                      outcome="recovered" if chance(g, "at_risk_recovered") else r.choice(("improved", "lost")))
    g.encounter(step, "at_risk_child", on, centre, cref, **fields)


def prior_child(g: Any, cref: str, born: date, centre: Institution) -> None:
    """A child of an earlier cohort this year: 体弱儿 at a check, and the nursery's yearly check at 3–6."""
    r = rng(g)
    start = date(g.year, 1, 1)
    at_risk(g, cref, start + timedelta(days=r.randint(0, 364)), g.today, centre, "cohort_checks")
    on = date(g.year, r.randint(3, 11), r.randint(1, 28))
    age = (on - born).days / 365.25
    if on <= g.today and 3 <= age < 7 and chance(g, "nursery_checked"):
        g.encounter("cohort_checks", "nursery_health_check", on, centre, cref, role="child",
                    nursery=r.choice(NURSERIES), abnormal=r.random() < 0.04)


def nursery_staff(g: Any, births: int) -> None:
    """Nursery and kindergarten staff (幼师, 保育员): registered persons with their yearly check."""
    r = rng(g)
    for _ in range(round(births * float(g.rates["nursery_staff_per_birth"]))):
        on = date(g.year, r.randint(2, 10), r.randint(1, 28))
        if on > g.today:
            continue
        residence = g.residence()
        ref = f"@p:{g.new_id('T')}"
        g.plan["persons"].add("/v1/persons", g.person(g.adult_birth(on, 20, 50, 33), r.random() < 0.95, residence),
                              ref, "person")
        g.encounter("cohort_checks", "nursery_health_check", on, g.county.health_centre(int(residence[6:9])), ref,
                    role="staff", nursery=r.choice(NURSERIES), abnormal=chance(g, "nursery_staff_abnormal"))


def terminations(g: Any, births: int) -> None:
    """Booked pregnancies ended by a termination: 人工流产 in the first trimester, 引产 (induced labour) from 14
    weeks, some for a birth defect found by prenatal diagnosis."""
    r = rng(g)
    methods = g.rates["termination_methods"]
    for _ in range(round(births * float(g.rates["terminations_per_birth"]))):
        method = r.choices(list(methods), weights=list(methods.values()))[0]
        gest = r.randint(100, 180) if method == "induced_labour" else r.randint(45, 90)
        on = date(g.year, 1, 1) + timedelta(days=r.randint(0, 364))
        lmp = on - timedelta(days=gest)
        booked = lmp + timedelta(days=min(gest - 3, r.randint(40, 70)))
        if on > g.today:
            continue
        residence = g.residence()
        centre = g.county.health_centre(int(residence[6:9]))
        hospital = r.choice(g.county.hospitals)
        pid = g.new_id("P")
        g.plan["pregnancies"].add("/v1/pregnancies", {
            "pregnancy_id": pid, "source": "demo-his", "mother": g.person(g.adult_birth(on, 19, 44, 29.5), True,
                                                                         residence),
            "lmp_date": lmp.isoformat(), "registered_on": booked.isoformat(), "institution_code": centre.code},
            f"@m:{pid}", "mother")
        reason = "birth_defect" if method == "induced_labour" and chance(g, "induced_labour_for_birth_defect") \
            else r.choice(("elective", "elective", "maternal_disease", "fetal_death"))
        g.encounter("antenatal", "pregnancy_termination", on, hospital, pid, method=method, reason=reason)
