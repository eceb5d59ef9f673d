"""Attributes of births, PMTCT and the examinations' infections, added to the entities of `units`. Pure.

Kept apart from `units` (which decides *who* is in a population and when) because these only describe members
that `units` already emits:

- a live birth's birth order (孩次, for 出生性别比 of second and later births) and, for the child of an infected
  mother, what the child received: the first hepatitis-B vaccine dose (首剂乙肝疫苗, hours after birth), and for
  HIV / syphilis exposure the infant's test and prophylaxis (预防艾滋病、梅毒和乙肝母婴传播);
- a woman delivered's tests for each infection by when (孕期 vs 仅产时), positives, and whether a positive woman
  was treated (用药 / 规范治疗: a follow-up action ``treated`` on the case her positive result opened);
- a premarital or pre-pregnancy examination's infection results and the examined person's sex.

See docs/indicators-added.md for the exact definitions.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

#: the three infections of 预防母婴传播 (艾滋病、梅毒、乙肝)
INFECTIONS = ("hiv", "syphilis", "hbsag")
#: infant interventions counted for the children of HIV- and syphilis-positive mothers
EXPOSURES = ("hiv", "syphilis")


def _date(s: Any) -> date | None:
    return date.fromisoformat(s) if isinstance(s, str) and s else None


def birth_attrs(baby: dict[str, Any]) -> dict[str, Any]:
    """孩次 as reported with the delivery (None when not reported: in neither the first nor the later births)."""
    order = int(baby.get("birth_order") or 0) or None
    return {"birth_order": order, "second_plus": None if order is None else order >= 2}


def _in_pregnancy(t: dict[str, Any], delivered: date) -> bool:
    """A test during pregnancy: timing ``pregnancy`` and dated up to the delivery day."""
    mit = t.get("maternal_infection_test", {})
    return mit.get("timing") == "pregnancy" and (_date(t.get("performed_on")) or delivered) <= delivered


def _at_labour(t: dict[str, Any]) -> bool:
    return t.get("maternal_infection_test", {}).get("timing") == "labour"


def pmtct_attrs(tests: Sequence[dict[str, Any]], cases: Sequence[dict[str, Any]], delivered: date) -> dict[str, Any]:
    """For each infection X of a woman delivered on `delivered`:

    - ``X_tested_pregnancy``: tested during pregnancy (孕期接受检测);
    - ``X_tested_labour_only``: tested at labour and never during pregnancy (仅产时接受检测);
    - ``X_positive``: any of those tests positive (感染孕产妇);
    - ``X_treated``: positive, and a follow-up case opened by one of her positive X tests records ``treated``.
    """
    treated_keys = {c.get("screening_key") for c in cases
                    if any(a.get("action") == "treated" for a in c.get("actions", []))}
    out: dict[str, Any] = {}
    for inf in INFECTIONS:
        mine = [t for t in tests if t.get("maternal_infection_test", {}).get("infection") == inf
                and (_in_pregnancy(t, delivered) or _at_labour(t))]
        during = any(_in_pregnancy(t, delivered) for t in mine)
        positive = [t for t in mine if t["maternal_infection_test"].get("result") == "positive"]
        out[f"{inf}_tested_pregnancy"] = during
        out[f"{inf}_tested_labour_only"] = not during and any(_at_labour(t) for t in mine)
        out[f"{inf}_positive"] = bool(positive)
        out[f"{inf}_treated"] = any(t.get("screening_key") in treated_keys for t in positive)
    return out


def exposed_child_attrs(screenings: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What a child's own records say about the interventions for an exposed infant: the hours of the first
    hepatitis-B vaccine dose (earliest recorded), and for HIV / syphilis whether the infant was tested (a result
    negative or positive) and given prophylaxis (any record saying so)."""
    dose1 = [float(s.get("hepb_vaccine", {}).get("hours_after_birth", 0)) for s in screenings
             if s.get("type") == "hepb_vaccine" and int(s.get("hepb_vaccine", {}).get("dose", 0)) == 1]
    out: dict[str, Any] = {"hepb_dose1_hours": min(dose1) if dose1 else None}
    for inf in EXPOSURES:
        care = [s.get("exposed_infant", {}) for s in screenings if s.get("type") == "exposed_infant"
                and s.get("exposed_infant", {}).get("infection") == inf]
        out[f"{inf}_infant_tested"] = any(c.get("test_result") in ("negative", "positive") for c in care)
        out[f"{inf}_infant_prophylaxis"] = any(bool(c.get("prophylaxis")) for c in care)
    return out


def mother_exposure(woman: dict[str, Any]) -> dict[str, Any]:
    """A live birth's exposure: its mother's HIV / syphilis status at the delivery (``mother_X_positive``)."""
    return {f"mother_{inf}_positive": bool(woman.get(f"{inf}_positive")) for inf in EXPOSURES}


def exam_infection_attrs(result: dict[str, Any], sex: str) -> dict[str, Any]:
    """婚检 / 孕前优生 examination: each infection's result (positive; tested = negative or positive) and the
    examined person's sex (F / M, "" when the registry does not know the person)."""
    out: dict[str, Any] = {"sex": sex}
    for inf in INFECTIONS:
        r = result.get(inf) or "not_done"
        out[f"{inf}_positive"] = r == "positive"
        out[f"{inf}_tested"] = r in ("negative", "positive")
    return out


def first_antenatal_check(checks: Sequence[tuple[date, int]]) -> date | None:
    """初次产前保健: the day of the pregnancy's first counted antenatal check."""
    return checks[0][0] if checks else None


def hukou_attrs(mother: dict[str, Any] | None, region: str) -> dict[str, Any]:
    """户籍 vs 常住: whether the mother's registered residence (户籍地, a county code on the person) lies in the
    county (``hukou_county``) and the province (``hukou_province``, e.g. 疆内户籍) where she lives on the delivery
    day. None when the registry does not know her 户籍 (she is in neither split)."""
    hukou = str((mother or {}).get("hukou_code") or "")
    if not hukou:
        return {"hukou_county": None, "hukou_province": None}
    return {"hukou_county": hukou[:6] == region[:6], "hukou_province": hukou[:2] == region[:2]}
