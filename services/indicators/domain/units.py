"""Units of computation: the indicator contributions of one subject, derived from its facts.

A unit (here: a pregnancy episode) is recomputed whenever one of its facts, or a fact of a subject it
depends on (the mother's residence history), changes; the engine applies the difference between the old and
the new contributions to the stored counts. Everything here is pure.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from indicators.domain.catalogue import Catalogue
from indicators.domain.facts import Fact

#: 28 completed weeks: the threshold of a live birth / a woman delivered (活产 / 产妇)
VIABLE_GESTATION_DAYS = 28 * 7
VIABLE_WEIGHT_G = 1000

#: (indicator code, part "n"|"d", anchor date ISO, region code 12, institution code)
Contribution = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class Entity:
    """One member of a population (a live birth, a woman delivered, ...) with its attributes."""

    population: str
    anchor: date
    region: str
    institution: str
    attrs: dict[str, Any] = field(default_factory=dict)


def residence_on(person: Fact | None, on: date, fallback: str) -> str:
    """The 12-digit residence (现住址) of a person on a date, from the residence history."""
    if person is None or person.voided:
        return fallback
    current = fallback
    for span in person.body.get("residence", []):
        since = span.get("since") or ""
        if not since or date.fromisoformat(since) <= on:
            current = span["region_code"]
    return current


def pregnancy_dependencies(own: Iterable[Fact]) -> list[str]:
    for f in own:
        if f.record_key.startswith("pregnancy:") and not f.voided:
            return [f"person:{f.body['mother_id']}"]
    return []


def pregnancy_entities(unit_key: str, facts: Iterable[Fact]) -> list[Entity]:
    facts = list(facts)
    preg = next((f for f in facts if f.record_key == unit_key and not f.voided), None)
    if preg is None:
        return []
    mother = next((f for f in facts if f.record_key == f"person:{preg.body['mother_id']}"), None)
    deliveries = [f for f in facts if f.subject_key == unit_key and not f.voided
                  and f.body.get("type") == "delivery"]
    if not deliveries:
        return []
    # one delivery per episode (the registry enforces it); the latest-dated wins if a stale one lingers
    d = max(deliveries, key=lambda f: (f.body["occurred_on"], f.record_key))
    det = d.body["delivery"]
    on = date.fromisoformat(d.body["occurred_on"])
    region = residence_on(mother, on, preg.body["residence_code"])
    inst = d.body["institution_code"]
    gest = (on - date.fromisoformat(preg.body["lmp_date"])).days
    facility = det["place"] == "hospital" and bool(det.get("institution_midwifery_licensed"))
    common = {"mode": det["mode"], "place": det["place"], "facility_delivery": facility, "gestational_days": gest}
    out: list[Entity] = []
    live = 0
    for b in det.get("babies", []):
        weight = b.get("birth_weight_g") or None
        viable = gest >= VIABLE_GESTATION_DAYS
        if b["outcome"] == "live" and viable:
            live += 1
            out.append(Entity("live_birth", on, region, inst,
                              {**common, "birth_weight_g": weight, "sex": b["sex"], "child_id": b.get("child_id")}))
    if gest >= VIABLE_GESTATION_DAYS:
        out.append(Entity("woman_delivered", on, region, inst, {**common, "live_births": live}))
    return out


def contributions(entities: Iterable[Entity], catalogue: Catalogue) -> list[Contribution]:
    out: list[Contribution] = []
    ents = list(entities)
    for ind in catalogue.indicators:
        for part, count in (("n", ind.numerator), ("d", ind.denominator)):
            if count is None:
                continue
            for e in ents:
                if e.population == count.population and count.counts(e.attrs):
                    out.append((ind.code, part, e.anchor.isoformat(), e.region, e.institution))
    out.sort()
    return out


def unit_kind(key: str) -> str | None:
    return "pregnancy" if key.startswith("pregnancy:") else None


def compute(unit_key: str, facts: Iterable[Fact], catalogue: Catalogue) -> list[Contribution]:
    if unit_kind(unit_key) == "pregnancy":
        return contributions(pregnancy_entities(unit_key, facts), catalogue)
    return []


def dependencies(unit_key: str, own: Iterable[Fact]) -> list[str]:
    if unit_kind(unit_key) == "pregnancy":
        return pregnancy_dependencies(own)
    return []
