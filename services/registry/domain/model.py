"""The registry's domain: institutions, pregnancy episodes (孕产期保健) and the encounters HIS systems post.

Rules here are pure functions over plain data; `api` parses and authorises, `store` persists.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from kit.records import Decision, DomainError, content_hash, decide_version, fail, field_error  # noqa: F401 (re-exported)

InstitutionKind = Literal["hospital", "health_centre", "mch_centre", "agency"]
RISK_GRADES = ("green", "yellow", "orange", "red", "purple")  # 妊娠风险五色分级
ENCOUNTER_TYPES = ("prenatal_visit", "delivery", "postpartum_visit", "postpartum_42d_check", "newborn_visit",
                   "child_health_check", "folic_acid_dispensed", "death",
                   # programme encounters (domain/encounters_programmes.py)
                   "pregnancy_termination", "maternal_near_miss", "birth_defect",
                   "neonatal_tetanus", "at_risk_child", "nursery_health_check")
PREGNANCY_ENCOUNTERS = ("prenatal_visit", "delivery", "postpartum_visit", "postpartum_42d_check",
                        "pregnancy_termination", "maternal_near_miss")

#: longest plausible pregnancy counted from LMP (beyond 44+0 weeks the LMP is wrong)
MAX_GESTATION_DAYS = 44 * 7
MIN_BIRTH_WEIGHT_G = 200
MAX_BIRTH_WEIGHT_G = 7000


@dataclass(frozen=True)
class Institution:
    code: str
    name: str
    region_code: str
    kind: str
    midwifery_licensed: bool

    @property
    def is_delivery_facility(self) -> bool:
        """新法接生 in a facility: a licensed institution that is not an agency."""
        return self.midwifery_licensed and self.kind != "agency"


@dataclass(frozen=True)
class Pregnancy:
    pregnancy_id: str
    source: str
    mother_id: str
    lmp_date: date
    registered_on: date
    institution_code: str
    residence_code: str
    version: int = 1
    delivered_on: date | None = None
    voided: bool = False

    def gestational_days(self, on: date) -> int:
        return (on - self.lmp_date).days


def check_booking(lmp: date, registered_on: date, today: date) -> None:
    errs = []
    if lmp > registered_on:
        errs.append(field_error("lmp_date", "the last menstrual period cannot be after the booking date"))
    elif (registered_on - lmp).days > MAX_GESTATION_DAYS:
        errs.append(field_error("registered_on", "booking more than 44 weeks after the LMP"))
    if registered_on > today:
        errs.append(field_error("registered_on", "booking date is in the future"))
    if errs:
        raise DomainError(errs)


@dataclass
class Baby:
    sex: str
    birth_weight_g: int | None
    outcome: str
    child_id: str | None = None


@dataclass
class DeliveryFacts:
    place: str
    mode: str
    babies: list[Baby] = field(default_factory=list)


def check_delivery(p: Pregnancy, delivered_on: date, d: DeliveryFacts) -> list[dict[str, str]]:
    errs: list[dict[str, str]] = []
    if delivered_on < p.lmp_date:
        errs.append(field_error("occurred_at", f"delivery on {delivered_on} is before the LMP {p.lmp_date}"))
    elif p.gestational_days(delivered_on) > MAX_GESTATION_DAYS:
        errs.append(field_error("occurred_at", "delivery more than 44 weeks after the LMP"))
    if not d.babies:
        errs.append(field_error("babies", "a delivery records at least one baby"))
    for i, b in enumerate(d.babies):
        if b.birth_weight_g is not None and not MIN_BIRTH_WEIGHT_G <= b.birth_weight_g <= MAX_BIRTH_WEIGHT_G:
            errs.append(field_error(f"babies.{i}.birth_weight_g",
                                   f"birth weight must be between {MIN_BIRTH_WEIGHT_G} and {MAX_BIRTH_WEIGHT_G} g"))
    return errs
