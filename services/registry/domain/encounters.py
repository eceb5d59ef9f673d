"""Rules of each encounter type (产检, 分娩, 产后访视, 新生儿访视, 儿童体检, 增补叶酸, 死亡): pure functions from the
stored state and a posted encounter to the record to keep (with its derived facts) or the reasons to refuse it.
"""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from kit.records import field_error

from registry.domain import encounters_programmes as programmes
from registry.domain.growth import zscores
from registry.domain.model import (
    MAX_BIRTH_WEIGHT_G,
    MAX_GESTATION_DAYS,
    MIN_BIRTH_WEIGHT_G,
    PREGNANCY_ENCOUNTERS,
    Institution,
    Pregnancy,
    fail,
)

#: maternal death (孕产妇死亡): during pregnancy or within 42 days of its end
MATERNAL_DEATH_DAYS = 42
MAX_POSTPARTUM_DAYS = 365
MAX_CHILD_AGE_YEARS = 18
MAX_GESTATIONAL_WEEKS = 44
PERSON_ENCOUNTERS = ("newborn_visit", "child_health_check", "folic_acid_dispensed", "death")
#: plausible measurement ranges of a child check (beyond them the value is a typing error)
WEIGHT_KG = (0.3, 150.0)
HEIGHT_CM = (25.0, 220.0)
HAEMOGLOBIN_G_L = (20.0, 260.0)

Errors = list[dict[str, str]]


@dataclass
class Person:
    person_id: str
    sex: str
    birth_date: date
    residence: list[tuple[date | None, str]] = field(default_factory=list)
    mother_id: str | None = None
    born_in: str | None = None
    died_on: date | None = None
    death_key: str | None = None
    version: int = 1

    def residence_on(self, on: date) -> str:
        current = self.residence[0][1] if self.residence else ""
        for since, code in self.residence:
            if since is None or since <= on:
                current = code
        return current


@dataclass
class State:
    """What the rules need to know about the stored records an encounter touches (loaded per batch, and kept
    up to date as the batch's items are accepted, so that items of one batch see each other)."""

    institutions: dict[str, Institution] = field(default_factory=dict)
    pregnancies: dict[str, Pregnancy] = field(default_factory=dict)
    persons: dict[str, Person] = field(default_factory=dict)
    encounters: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: mother id → her pregnancy ids (for maternal deaths)
    pregnancies_of: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Outcome:
    """An accepted encounter: the row to store and the state changes that go with it."""

    row: dict[str, Any]
    new_children: list[Person] = field(default_factory=list)
    #: children whose birth date or sex a delivery correction changed, with their birth date before
    corrected_children: list[tuple[Person, date]] = field(default_factory=list)
    delivered: tuple[str, date | None] | None = None
    death: tuple[str, date | None, str | None] | None = None


def _after_death(p: Person | None, on: date, what: str) -> Errors:
    if p is not None and p.died_on is not None and on > p.died_on:
        return [field_error("occurred_at", f"{what} on {on} is after the death of the person on {p.died_on}")]
    return []


def nan_to_none(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 2)


def prenatal_visit(p: Pregnancy, mother: Person | None, on: date, f: dict[str, Any]) -> tuple[Errors, dict[str, Any]]:
    """产前检查: gestational age from the LMP (or the given week), the risk grade of the five-colour scheme."""
    errs: Errors = []
    if on < p.lmp_date:
        errs.append(field_error("occurred_at", f"prenatal visit on {on} is before the LMP {p.lmp_date}"))
    elif p.gestational_days(on) > MAX_GESTATION_DAYS:
        errs.append(field_error("occurred_at", f"prenatal visit more than {MAX_GESTATIONAL_WEEKS} weeks after the LMP"))
    if p.delivered_on is not None and on > p.delivered_on:
        errs.append(field_error("occurred_at", f"prenatal visit on {on} is after the delivery on {p.delivered_on}"))
    weeks = f.get("gestational_weeks")
    if weeks is not None and not 0 <= weeks <= MAX_GESTATIONAL_WEEKS:
        errs.append(field_error("gestational_weeks", f"must be between 0 and {MAX_GESTATIONAL_WEEKS}"))
    errs += _after_death(mother, on, "prenatal visit")
    gest = round(weeks * 7) if weeks is not None else p.gestational_days(on)
    return errs, {"gestational_weeks": weeks, "gestational_days": max(gest, 0), "risk_grade": f.get("risk_grade") or "",
                  "counts_as_antenatal_check": True}


def corrected_child(child: Person, born: date, sex: str) -> Person | None:
    """The child person after its delivery's date or its sex was corrected (None when unchanged): the birth
    date moves, and so does the residence span that started at birth."""
    if child.birth_date == born and child.sex == sex:
        return None
    residence = [(born if since == child.birth_date else since, code) for since, code in child.residence]
    return replace(child, birth_date=born, sex=sex, residence=sorted(residence, key=lambda s: s[0] or born),
                   version=child.version + 1)


def delivery(p: Pregnancy, mother: Person | None, on: date, f: dict[str, Any],
             old_babies: list[dict[str, Any]], is_correction: bool,
             persons: dict[str, Person] | None = None
             ) -> tuple[Errors, dict[str, Any], list[Person], list[tuple[Person, date]]]:
    """分娩: one record per baby; each live birth becomes a child person linked to the mother. Returns the errors,
    the stored fields, the new children and the children corrected (date or sex)."""
    errs: Errors = []
    if p.delivered_on is not None and not is_correction:
        raise fail("subject_id", f"the pregnancy already has a delivery (or a termination) on {p.delivered_on}: "
                   "the episode is closed", 409)
    if on < p.lmp_date:
        errs.append(field_error("occurred_at", f"delivery on {on} is before the LMP {p.lmp_date}"))
    elif p.gestational_days(on) > MAX_GESTATION_DAYS:
        errs.append(field_error("occurred_at", f"delivery more than {MAX_GESTATIONAL_WEEKS} weeks after the LMP"))
    errs += _after_death(mother, on, "delivery")
    for i, b in enumerate(f["babies"]):
        w = b.get("birth_weight_g")
        if w is not None and not MIN_BIRTH_WEIGHT_G <= w <= MAX_BIRTH_WEIGHT_G:
            errs.append(field_error(f"babies.{i}.birth_weight_g",
                                    f"birth weight must be between {MIN_BIRTH_WEIGHT_G} and {MAX_BIRTH_WEIGHT_G} g"))
    if errs:
        return errs, {}, [], []
    residence = mother.residence_on(on) if mother and mother.residence else p.residence_code
    children: list[Person] = []
    corrected: list[tuple[Person, date]] = []
    babies = []
    for i, b in enumerate(f["babies"]):
        child_id = old_babies[i].get("child_id") if i < len(old_babies) else None
        if b["outcome"] == "live" and not child_id:
            child = Person(str(uuid.uuid4()), b["sex"], on, [(on, residence)], p.mother_id, p.pregnancy_id)
            children.append(child)
            child_id = child.person_id
        elif child_id and persons and child_id in persons:
            fixed = corrected_child(persons[child_id], on, b["sex"])
            if fixed is not None:
                corrected.append((fixed, persons[child_id].birth_date))
        babies.append({"sex": b["sex"], "birth_weight_g": b.get("birth_weight_g"), "outcome": b["outcome"],
                       "child_id": child_id if b["outcome"] == "live" else None,
                       "birth_order": b.get("birth_order")})
    return [], {"place": f["place"], "mode": f["mode"], "babies": babies,
                "gestational_days": p.gestational_days(on)}, children, corrected


def postpartum_visit(p: Pregnancy, mother: Person | None, on: date, is_42d: bool) -> tuple[Errors, dict[str, Any]]:
    """产后访视 / 产后42天检查: the day after the delivery is derived."""
    if p.delivered_on is None:
        return [field_error("subject_id", "no delivery is recorded for this pregnancy: post the delivery first")], {}
    day = (on - p.delivered_on).days
    errs: Errors = []
    if day < 0:
        errs.append(field_error("occurred_at", f"postpartum visit on {on} is before the delivery on {p.delivered_on}"))
    elif day > MAX_POSTPARTUM_DAYS:
        errs.append(field_error("occurred_at", f"postpartum visit more than {MAX_POSTPARTUM_DAYS} days after delivery"))
    errs += _after_death(mother, on, "postpartum visit")
    return errs, {"day_after_delivery": max(day, 0), "is_42d_check": is_42d}


def _in_range(errs: Errors, name: str, v: float | None, lo_hi: tuple[float, float], unit: str) -> None:
    if v is not None and not lo_hi[0] <= v <= lo_hi[1]:
        errs.append(field_error(name, f"{v} {unit} is outside the plausible range {lo_hi[0]}–{lo_hi[1]} {unit}"))


def child_check(child: Person, on: date, f: dict[str, Any], newborn: bool) -> tuple[Errors, dict[str, Any]]:
    """新生儿访视 / 儿童健康检查: age derived; WHO 2006 z-scores computed and stored."""
    errs: Errors = []
    age = (on - child.birth_date).days
    if age < 0:
        errs.append(field_error("occurred_at", f"check on {on} is before the child's birth on {child.birth_date}"))
    elif age > 366 * MAX_CHILD_AGE_YEARS:
        errs.append(field_error("subject_id", f"the person is older than {MAX_CHILD_AGE_YEARS}: not a child"))
    errs += _after_death(child, on, "check")
    _in_range(errs, "weight_kg", f.get("weight_kg"), WEIGHT_KG, "kg")
    _in_range(errs, "height_cm", f.get("height_cm"), HEIGHT_CM, "cm")
    _in_range(errs, "haemoglobin_g_l", f.get("haemoglobin_g_l"), HAEMOGLOBIN_G_L, "g/L")
    if errs:
        return errs, {}
    z = zscores(child.sex, age, f.get("weight_kg"), f.get("height_cm"))
    return [], {"is_newborn_visit": newborn, "weight_kg": f.get("weight_kg"), "height_cm": f.get("height_cm"),
                "feeding": f.get("feeding"), "haemoglobin_g_l": f.get("haemoglobin_g_l"), "age_days": age,
                "weight_for_age_z": nan_to_none(z.weight_for_age), "height_for_age_z": nan_to_none(z.height_for_age),
                "weight_for_height_z": nan_to_none(z.weight_for_height)}


def folic_acid(person: Person, on: date, f: dict[str, Any]) -> tuple[Errors, dict[str, Any]]:
    """增补叶酸: dispensed to a woman."""
    errs: Errors = []
    if person.sex != "F":
        errs.append(field_error("person_id", "folic acid dispensing (增补叶酸) is recorded for women (sex F)"))
    if on < person.birth_date:
        errs.append(field_error("occurred_at", "dispensed before the person's birth"))
    errs += _after_death(person, on, "dispensing")
    return errs, {"person_id": person.person_id, "quantity": f["quantity"]}


def maternal_pregnancy(person: Person, died_on: date, pregnancies: list[Pregnancy]) -> Pregnancy | None:
    """The pregnancy a death is maternal for: during it, or within 42 days of its end (delivery)."""
    if person.sex != "F":
        return None
    found = [p for p in pregnancies if p.lmp_date <= died_on
             and (p.delivered_on is None or (died_on - p.delivered_on).days <= MATERNAL_DEATH_DAYS)]
    return max(found, key=lambda p: p.lmp_date) if found else None


def death(person: Person, key: str, f: dict[str, Any], pregnancies: list[Pregnancy],
          today: date) -> tuple[Errors, dict[str, Any]]:
    """死亡: maternal is derived; a person dies once."""
    died: date = f["died_on"]
    errs: Errors = []
    if person.death_key is not None and person.death_key != key:
        raise fail("person_id", f"a death is already recorded for this person ({person.death_key})", 409)
    if died < person.birth_date:
        errs.append(field_error("died_on", f"death on {died} is before the birth on {person.birth_date}"))
    if died > today:
        errs.append(field_error("died_on", "the date of death is in the future"))
    review_errs, review = programmes.death_review(died, f.get("review"), today)
    errs += review_errs
    if errs:
        return errs, {}
    preg = maternal_pregnancy(person, died, pregnancies)
    return [], {"person_id": person.person_id, "died_on": died.isoformat(), "cause": f.get("cause") or "",
                "maternal": preg is not None, "pregnancy_id": preg.pregnancy_id if preg else "",
                "age_days": (died - person.birth_date).days, **review}


def decide(state: State, req: dict[str, Any], f: dict[str, Any], on: date, stored: dict[str, Any] | None,
           version: int, content_hash: str, today: date) -> tuple[Errors, Outcome | None]:
    """Apply the rules of the encounter's type; `req` is the common part, `f` the type's fields."""
    typ, key = req["type"], f"{req['source']}/{req['encounter_id']}"
    if stored is not None and (stored["type"] != typ or stored["subject_id"] != req["subject_id"]):
        return [field_error("type" if stored["type"] != typ else "subject_id",
                            "a correction cannot change the type or the subject: void the encounter and post a "
                            "new one")], None
    inst = state.institutions.get(req["institution_code"])
    if inst is None:
        return [field_error("institution_code", f"unknown institution {req['institution_code']}: register it with "
                            f"PUT /v1/institutions/{req['institution_code']}")], None
    out = Outcome({})
    preg: Pregnancy | None = None
    person: Person | None = None
    errs: Errors
    body: dict[str, Any]
    if typ in PREGNANCY_ENCOUNTERS:
        preg = state.pregnancies.get(req["subject_id"])
        if preg is None or preg.voided:
            return [field_error("subject_id", f"unknown pregnancy {req['subject_id']}: register it first "
                                "(POST /v1/pregnancies)")], None
        person = state.persons.get(preg.mother_id)
        if typ == "prenatal_visit":
            errs, body = prenatal_visit(preg, person, on, f)
        elif typ == "delivery":
            old = stored["body"].get("babies", []) if stored else []
            errs, body, out.new_children, out.corrected_children = delivery(preg, person, on, f, old,
                                                                           stored is not None, state.persons)
            out.delivered = (preg.pregnancy_id, on)
        elif typ == "pregnancy_termination":   # programme encounters (encounters_programmes)
            errs, body = programmes.termination(preg, person.died_on if person else None, on, f, stored is not None)
            out.delivered = (preg.pregnancy_id, on)
        elif typ == "maternal_near_miss":
            errs, body = programmes.near_miss(preg, person.died_on if person else None, on, f)
        else:
            errs, body = postpartum_visit(preg, person, on, typ == "postpartum_42d_check")
    else:
        named = f.get("person_id") or req["subject_id"]
        person = state.persons.get(req["subject_id"])
        if person is None:
            return [field_error("subject_id", f"unknown person {req['subject_id']}")], None
        if named != req["subject_id"]:
            return [field_error("person_id", "must be the encounter's subject_id")], None
        if typ in ("newborn_visit", "child_health_check"):
            errs, body = child_check(person, on, f, typ == "newborn_visit")
        elif typ == "folic_acid_dispensed":
            errs, body = folic_acid(person, on, f)
        elif typ in programmes.PROGRAMME_PERSON_TYPES:
            errs, body = programmes.person_encounter(typ, person.person_id, person.sex, person.birth_date,
                                                     person.died_on, on, f, today)
        else:
            pregs = [state.pregnancies[p] for p in state.pregnancies_of.get(person.person_id, [])
                     if p in state.pregnancies]
            errs, body = death(person, key, f, pregs, today)
            out.death = (person.person_id, f["died_on"], key)
    if errs:
        return errs, None
    out.row = {
        "source": req["source"], "encounter_id": req["encounter_id"], "version": version, "type": typ,
        "subject_id": req["subject_id"], "pregnancy_id": preg.pregnancy_id if preg else None,
        "person_id": preg.mother_id if preg else person.person_id if person else None,
        "occurred_on": on, "institution_code": inst.code, "content_hash": content_hash, "voided": False,
        "body": {**body, "occurred_at": str(req["occurred_at"])},
    }
    return [], out


def apply(state: State, out: Outcome) -> None:
    """Keep the batch's state current after accepting `out` (later items of the batch see it)."""
    row = out.row
    state.encounters[(row["source"], row["encounter_id"])] = row
    for c in out.new_children + [c for c, _ in out.corrected_children]:
        state.persons[c.person_id] = c
    if out.delivered:
        pid, on = out.delivered
        if pid in state.pregnancies:
            state.pregnancies[pid] = replace(state.pregnancies[pid], delivered_on=on)
    if out.death:
        person_id, died, key = out.death
        if person_id in state.persons:
            state.persons[person_id].died_on, state.persons[person_id].death_key = died, key


def void_effects(row: dict[str, Any]) -> Outcome:
    """What voiding a stored encounter undoes in the state (a voided delivery or termination reopens its
    episode)."""
    out = Outcome(row)
    if row["type"] in ("delivery", "pregnancy_termination") and row.get("pregnancy_id"):
        out.delivered = (row["pregnancy_id"], None)
    if row["type"] == "death" and row.get("person_id"):
        out.death = (str(row["person_id"]), None, None)
    return out
