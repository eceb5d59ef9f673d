"""Rules of the programme encounter types (issue 21): 人工终止妊娠 / 引产, 危重孕产妇, 出生缺陷,
新生儿破伤风, 体弱儿专案, 托幼机构健康检查, and the review of a death (死亡评审).

Pure functions, in the shape of `encounters.py`: the stored state and a posted encounter in, the fields to keep
(with derived ones) or the reasons to refuse out. Kept in their own module so the typed encounter union can take
them over one by one; `encounters.decide` dispatches here for the types in `PROGRAMME_PREGNANCY_TYPES` and
`PROGRAMME_PERSON_TYPES`.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from kit.records import field_error

from registry.domain.model import MAX_GESTATION_DAYS, Pregnancy, fail

Errors = list[dict[str, str]]

PROGRAMME_PREGNANCY_TYPES = ("pregnancy_termination", "maternal_near_miss")
PROGRAMME_PERSON_TYPES = ("birth_defect", "neonatal_tetanus", "at_risk_child",
                          "nursery_health_check")
#: 28 weeks: from here on a pregnancy ends with a delivery (a stillbirth, 死产), not a termination
VIABLE_GESTATION_DAYS = 28 * 7
#: a maternal near miss happens during pregnancy or within 42 days of its end, as a maternal death does
NEAR_MISS_DAYS_AFTER_END = 42
NEONATAL_DAYS = 28
AT_RISK_MAX_YEARS = 7
#: 托幼机构: children up to their 8th birthday (the last kindergarten year), staff from 16
NURSERY_CHILD_MAX_YEARS = 8
NURSERY_STAFF_MIN_YEARS = 16


def add_months(day: date, months: int) -> date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def _after_death(died_on: date | None, on: date, what: str) -> Errors:
    if died_on is not None and on > died_on:
        return [field_error("occurred_at", f"{what} on {on} is after the death of the person on {died_on}")]
    return []


# --- pregnancy encounters -------------------------------------------------------------------------------

def termination(p: Pregnancy, mother_died: date | None, on: date, f: dict[str, Any],
                is_correction: bool) -> tuple[Errors, dict[str, Any]]:
    """人工终止妊娠 (人工流产 / 引产) before 28 weeks: it ends the episode as a delivery does (a later visit or
    delivery is refused); at 28 weeks or more the pregnancy ends with a delivery (stillbirth) instead."""
    if p.delivered_on is not None and not is_correction:
        raise fail("subject_id", f"the pregnancy already ended on {p.delivered_on} (a delivery or a termination):"
                   " the episode is closed", 409)
    errs: Errors = []
    gest = p.gestational_days(on)
    if on < p.lmp_date:
        errs.append(field_error("occurred_at", f"termination on {on} is before the LMP {p.lmp_date}"))
    elif gest >= VIABLE_GESTATION_DAYS:
        errs.append(field_error("occurred_at", f"termination at {gest // 7}+{gest % 7} weeks: from 28 weeks a "
                                "pregnancy ends with a delivery (post a delivery with a stillbirth)"))
    errs += _after_death(mother_died, on, "termination")
    return errs, {"method": f["method"], "reason": f["reason"], "gestational_days": max(gest, 0)}


def near_miss(p: Pregnancy, mother_died: date | None, on: date, f: dict[str, Any]) -> tuple[Errors, dict[str, Any]]:
    """危重孕产妇: during the pregnancy or within 42 days of its end."""
    errs: Errors = []
    if on < p.lmp_date:
        errs.append(field_error("occurred_at", f"near miss on {on} is before the LMP {p.lmp_date}"))
    elif p.delivered_on is not None and (on - p.delivered_on).days > NEAR_MISS_DAYS_AFTER_END:
        errs.append(field_error("occurred_at", f"near miss more than {NEAR_MISS_DAYS_AFTER_END} days after the end "
                                f"of the pregnancy on {p.delivered_on}"))
    elif p.delivered_on is None and p.gestational_days(on) > MAX_GESTATION_DAYS + NEAR_MISS_DAYS_AFTER_END:
        errs.append(field_error("occurred_at", "near miss long after the pregnancy could have ended: post its "
                                "delivery or termination first"))
    errs += _after_death(mother_died, on, "near miss")
    return errs, {"cause_category": f["cause_category"], "organ_dysfunction": bool(f.get("organ_dysfunction")),
                  "gestational_days": max(p.gestational_days(on), 0)}


# --- person encounters ----------------------------------------------------------------------------------

def _age_errors(birth: date, on: date, lo: date | None, hi: date | None, what: str) -> Errors:
    if on < birth:
        return [field_error("occurred_at", f"{what} on {on} is before the person's birth on {birth}")]
    if lo is not None and on < lo:
        return [field_error("occurred_at", f"{what} on {on}: the person is too young (from {lo})")]
    if hi is not None and on > hi:
        return [field_error("occurred_at", f"{what} on {on}: the person is too old (until {hi})")]
    return []


def person_encounter(typ: str, person_id: str, sex: str, birth: date, died_on: date | None, on: date,
                     f: dict[str, Any], today: date) -> tuple[Errors, dict[str, Any]]:
    """The rules of one programme encounter about a person (a child, or a nursery's staff member)."""
    body: dict[str, Any] = {"person_id": person_id, "age_days": max((on - birth).days, 0)}
    errs = _after_death(died_on, on, typ.replace("_", " "))
    if typ == "birth_defect":
        errs += _age_errors(birth, on, None, None, "birth defect diagnosis")
        body["categories"] = sorted(set(f["categories"]))
    elif typ == "neonatal_tetanus":
        errs += _age_errors(birth, on, None, birth + timedelta(days=NEONATAL_DAYS), "neonatal tetanus onset")
        body["died"] = bool(f.get("died"))
    elif typ == "at_risk_child":
        errs += _age_errors(birth, on, None, add_months(birth, 12 * AT_RISK_MAX_YEARS) - timedelta(days=1),
                            "体弱儿 enrolment (children under 7)")
        closed: date | None = f.get("closed_on")
        if (closed is None) != (not f.get("outcome")):
            errs.append(field_error("outcome" if closed else "closed_on",
                                    "closed_on and outcome go together: a case is closed (结案) with its outcome"))
        elif closed is not None and not on <= closed <= today:
            errs.append(field_error("closed_on", f"the case closes between its enrolment on {on} and today"))
        body.update(conditions=sorted(set(f["conditions"])), closed_on=closed.isoformat() if closed else "",
                    outcome=f.get("outcome") or "")
    else:  # nursery_health_check
        child = f["role"] == "child"
        errs += _age_errors(birth, on, None if child else add_months(birth, 12 * NURSERY_STAFF_MIN_YEARS),
                            add_months(birth, 12 * NURSERY_CHILD_MAX_YEARS) - timedelta(days=1) if child else None,
                            f"托幼 health check of a {'child' if child else 'staff member'}")
        body.update(role=f["role"], nursery=f["nursery"], abnormal=bool(f.get("abnormal")))
    return errs, body


def death_review(died: date, review: dict[str, Any] | None, today: date) -> tuple[Errors, dict[str, Any]]:
    """死亡评审 of a death: reviewed on or after the death, not in the future."""
    if not review:
        return [], {}
    on: date = review["reviewed_on"]
    if not died <= on <= today:
        return [field_error("review.reviewed_on", f"a review happens between the death on {died} and today")], {}
    return [], {"review": {"reviewed_on": on.isoformat(), "cause_category": review["cause_category"],
                           "preventability": review["preventability"]}}
