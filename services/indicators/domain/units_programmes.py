"""Programme populations (issue 21, "Programmes"): what the programme encounters of a pregnancy or a person
contribute. Pure; called by `units.pregnancy_entities` and `units.person_entities`, which hand over the facts
they already loaded, so these populations live in the existing pregnancy and person units (no new unit kind).

- pregnancy: 人工终止妊娠 (`pregnancy_termination`, anchor: its date) and 危重孕产妇 (`maternal_near_miss`, one per
  pregnancy, anchor: the first near-miss date) — region: the mother's residence on that date;
- person: 叶酸 (registry `folic_acid_dispensed`) and 营养包 (screening `nutrition_pack`): persons per period by
  their latest dispensing (`*_person`), bottles / packs as weights on the dispensing date (`*_quantity`);
  出生缺陷 (`birth_defect_child`, `birth_defect_group`: children born alive here whose defect was diagnosed
  within 7 days of birth, anchor: the birth date), 新生儿破伤风 (`neonatal_tetanus_case`, anchor: onset),
  体弱儿专案 (`at_risk_child_enrolled` and `_closed` flows, and `at_risk_child_managed`, a standing population:
  in from the enrolment month, out from the month it closed or the child died),
  托幼体检 (`nursery_checked`, persons per period and role by their latest check);
- the review of a death (死亡评审) adds `reviewed`, `avoidable` and `cause_category` to the death entity.

Exact definitions: docs/indicators-programmes.md. (`units` imports this module inside its functions: this
module builds `units.Entity`s.)
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from indicators.domain import periods
from indicators.domain.facts import Fact
from indicators.domain.units import Entity

#: found at birth or within 7 days (days 0–6 of life: the perinatal week, 围产期)
BIRTH_DEFECT_DAYS = 7
#: 出生缺陷 groups the bureau reports by (every other category is its own group)
BIRTH_DEFECT_GROUPS = {
    "anencephaly": "ntd", "spina_bifida": "ntd", "encephalocele": "ntd",        # 神经管缺陷
    "cleft_lip": "cleft", "cleft_palate": "cleft", "cleft_lip_palate": "cleft",  # 唇腭裂
    "congenital_heart_disease": "chd",                                            # 先天性心脏病
    "polydactyly": "polydactyly", "down_syndrome": "down_syndrome",
}
INDUCED_ABORTION_METHODS = ("medical_abortion", "vacuum_aspiration", "dilation_curettage")
AVOIDABLE = ("avoidable", "conditionally_avoidable")


def _d(s: Any) -> date | None:
    return date.fromisoformat(s) if isinstance(s, str) and s else None


def _when(e: dict[str, Any]) -> date:
    on = _d(e["occurred_on"])
    assert on is not None
    return on


# --- death review ---------------------------------------------------------------------------------------

def death_review_attrs(death: dict[str, Any]) -> dict[str, Any]:
    """死亡评审 of a death (the `death` detail of its encounter): reviewed or not, avoidable (可避免 or
    创造条件可避免) or not, the cause category."""
    review = death.get("review") or {}
    reviewed = bool(review.get("reviewed_on"))
    return {"reviewed": reviewed, "avoidable": reviewed and review.get("preventability") in AVOIDABLE,
            "cause_category": review.get("cause_category", "") if reviewed else ""}


# --- pregnancy --------------------------------------------------------------------------------------------

def pregnancy_entities(encounters: Any, residence: Any, infections: Any = None) -> list[Entity]:
    """Terminations and near misses of one pregnancy. `encounters(types...)` lists its live encounters, oldest
    first; `residence(on)` is the mother's residence on a date; `infections(on)` her PMTCT attributes as of a
    date (HIV / syphilis / HBsAg tested and positive, units_births.pmtct_attrs), so that a termination says
    whether the pregnancy was an infected one (梅毒感染孕产妇 含人工终止妊娠)."""
    out: list[Entity] = []
    terminations = encounters("pregnancy_termination")
    if terminations and not encounters("delivery"):
        t = terminations[-1]   # one per episode (the registry closes it); the latest-dated wins if one lingers
        on, det = _when(t), t.get("termination", {})
        out.append(Entity("pregnancy_termination", on, residence(on), t["institution_code"], {
            "method": det.get("method", ""), "reason": det.get("reason", ""),
            "induced_abortion": det.get("method") in INDUCED_ABORTION_METHODS,
            "induced_labour": det.get("method") == "induced_labour",
            "gestational_days": int(det.get("gestational_days", 0)), **(infections(on) if infections else {})}))
    near = encounters("maternal_near_miss")
    if near:
        first = near[0]
        on, det = _when(first), first.get("near_miss", {})
        out.append(Entity("maternal_near_miss", on, residence(on), first["institution_code"], {
            "cause_category": det.get("cause_category", ""),
            "organ_dysfunction": any(n.get("near_miss", {}).get("organ_dysfunction") for n in near)}))
    return out


# --- person ---------------------------------------------------------------------------------------------

def _per_period(population: str, items: Sequence[dict[str, Any]], residence: Any,
                attrs: Any = None) -> list[Entity]:
    """One entity per period for the person's latest encounter in it (a person counted once per period)."""
    best: dict[str, dict[str, Any]] = {}
    for e in items:
        for pk in periods.keys_of(_when(e)):
            cur = best.get(pk)
            if cur is None or (e["occurred_on"], e.get("encounter_key", "")) >= (
                    cur["occurred_on"], cur.get("encounter_key", "")):
                best[pk] = e
    return [Entity(population, _when(e), residence(_when(e)), e["institution_code"],
                   attrs(e) if attrs else {}, period=pk) for pk, e in sorted(best.items())]


def _dispensing(encounters: Any, screenings: Any, residence: Any) -> list[Entity]:
    """叶酸 (bottles) and 营养包 (packs): persons per period, and the quantity on each dispensing date. A
    营养包 is a screening result (the contract's `nutrition_pack`): seen here with its date as `occurred_on`."""
    out: list[Entity] = []
    packs = [{**s, "occurred_on": s["performed_on"], "encounter_key": s.get("screening_key", "")}
             for s in screenings("nutrition_pack")]
    for given, name, detail, qty in ((encounters("folic_acid_dispensed"), "folic_acid", "folic_acid", "quantity"),
                                     (packs, "nutrition_pack", "nutrition_pack", "packs")):
        out += _per_period(f"{name}_person", given, residence)
        out += [Entity(f"{name}_quantity", _when(e), residence(_when(e)), e["institution_code"], {},
                       weight=int(e.get(detail, {}).get(qty, 0))) for e in given
                if int(e.get(detail, {}).get(qty, 0))]
    return out


def _birth_defects(person: Fact, birth: date, encounters: Any, residence: Any) -> list[Entity]:
    """A child born alive here (in a registry pregnancy: the live births the rate divides by) with a defect
    diagnosed within 7 days of birth: once as a child, once per defect group, on the birth date."""
    if not person.body.get("born_in_pregnancy_id"):
        return []
    found = [e for e in encounters("birth_defect") if 0 <= (_when(e) - birth).days < BIRTH_DEFECT_DAYS]
    if not found:
        return []
    region, inst = residence(birth), found[0]["institution_code"]
    cats = sorted({c for e in found for c in e.get("birth_defect", {}).get("categories", [])})
    groups = sorted({BIRTH_DEFECT_GROUPS.get(c, c) for c in cats})
    return [Entity("birth_defect_child", birth, region, inst, {"categories": len(cats)}),
            *(Entity("birth_defect_group", birth, region, inst, {"group": g}) for g in groups)]


def _at_risk(encounters: Any, residence: Any, died: date | None) -> list[Entity]:
    """体弱儿专案: each enrolment a case — enrolled (flow), closed (flow, with its outcome), and under management
    at a period end (standing: +1 from the enrolment month, −1 from the month it closed or the child died)."""
    out: list[Entity] = []
    for e in encounters("at_risk_child"):
        on, det = _when(e), e.get("at_risk_child", {})
        region, inst = residence(on), e["institution_code"]
        out.append(Entity("at_risk_child_enrolled", on, region, inst, {}))
        out.append(Entity("at_risk_child_managed", on, region, inst, {}, standing=True))
        closed = _d(det.get("closed_on"))
        ended = min((x for x in (closed, died) if x is not None), default=None)
        if ended is not None:
            out.append(Entity("at_risk_child_managed", max(ended, on), region, inst, {}, weight=-1, standing=True))
        if closed is not None:
            out.append(Entity("at_risk_child_closed", closed, region, inst,
                              {"outcome": det.get("outcome", ""), "recovered": det.get("outcome") == "recovered"}))
    return out


def person_entities(person: Fact, birth: date | None, encounters: Any, screenings: Any, residence: Any,
                    died: date | None = None) -> list[Entity]:
    """The programme populations of one person (see the module docstring). `encounters(types...)` and
    `screenings(types...)` list the person's live records of those types, oldest first."""
    out = _dispensing(encounters, screenings, residence) + _at_risk(encounters, residence, died)
    for role in ("child", "staff"):
        checks = [e for e in encounters("nursery_health_check") if e.get("nursery_check", {}).get("role") == role]
        out += _per_period("nursery_checked", checks, residence,
                           lambda e, role=role: {"role": role,
                                                 "abnormal": bool(e.get("nursery_check", {}).get("abnormal"))})
    if birth is not None:
        out += _birth_defects(person, birth, encounters, residence)
    tetanus = encounters("neonatal_tetanus")
    if tetanus:
        on = _when(tetanus[0])
        out.append(Entity("neonatal_tetanus_case", on, residence(on), tetanus[0]["institution_code"],
                          {"died": any(t.get("neonatal_tetanus", {}).get("died") for t in tetanus)}))
    return out
