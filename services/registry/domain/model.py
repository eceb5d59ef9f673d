"""The registry's domain: institutions, pregnancy episodes (孕产期保健) and the encounters HIS systems post.

Rules here are pure functions over plain data; `api` parses and authorises, `store` persists.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import orjson
from kit.errors import field_error

InstitutionKind = Literal["hospital", "health_centre", "mch_centre", "agency"]
RISK_GRADES = ("green", "yellow", "orange", "red", "purple")  # 妊娠风险五色分级
ENCOUNTER_TYPES = ("prenatal_visit", "delivery", "postpartum_visit", "postpartum_42d_check", "newborn_visit",
                   "child_health_check", "folic_acid_dispensed", "death")
PREGNANCY_ENCOUNTERS = ("prenatal_visit", "delivery", "postpartum_visit", "postpartum_42d_check")

#: longest plausible pregnancy counted from LMP (beyond 44+0 weeks the LMP is wrong)
MAX_GESTATION_DAYS = 44 * 7
MIN_BIRTH_WEIGHT_G = 200
MAX_BIRTH_WEIGHT_G = 7000


class DomainError(Exception):
    """A rule was broken; carries the fields and reasons (becomes a 422 problem)."""

    def __init__(self, errors: list[dict[str, str]], status: int = 422) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))
        self.errors = errors
        self.status = status


def fail(field_name: str, reason: str, status: int = 422) -> DomainError:
    return DomainError([field_error(field_name, reason)], status)


def content_hash(body: dict[str, Any]) -> str:
    """Hash of a posted record's content (version excluded): same hash = an idempotent retry."""
    clean = {k: v for k, v in body.items() if k != "version"}
    return hashlib.sha256(orjson.dumps(clean, option=orjson.OPT_SORT_KEYS)).hexdigest()


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
class Decision:
    """What to do with a posted record given what is stored (idempotency, corrections)."""

    action: Literal["create", "unchanged", "correct"]
    version: int


def decide_version(stored_version: int | None, stored_hash: str | None, new_hash: str,
                   new_version: int | None) -> Decision:
    """The contract's idempotency rule for every source record:
    same content → no-op; different content with a higher version → correction; otherwise 409."""
    if stored_version is None:
        return Decision("create", new_version or 1)
    if stored_hash == new_hash and (new_version is None or new_version <= stored_version):
        return Decision("unchanged", stored_version)
    if new_version is not None and new_version > stored_version:
        return Decision("correct", new_version)
    if new_version is None or new_version == stored_version:
        raise fail("version", f"different content with the same version {stored_version}: send a higher "
                   "version to correct the record", 409)
    raise fail("version", f"version {new_version} is older than the stored version {stored_version}", 409)


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
