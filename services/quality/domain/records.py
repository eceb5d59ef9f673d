"""What quality knows of the other services' records, as plain values (from their events, never their tables).

Each record is the latest version its service published (the highest version wins); a voided record stays
known, flagged, so that the findings it caused are withdrawn rather than taken for corrected."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Pregnancy:
    """孕产妇保健手册: a booked pregnancy."""

    pregnancy_id: str
    mother_id: str
    lmp: date
    booked_on: date
    institution_code: str
    voided: bool = False

    @property
    def key(self) -> str:
        return f"pregnancy:{self.pregnancy_id}"


@dataclass(frozen=True)
class Baby:
    weight_g: int
    outcome: str
    child_id: str = ""
    sex: str = ""


@dataclass(frozen=True)
class Encounter:
    """An encounter (prenatal / postpartum visit, delivery, child check, ...) with the facts the rules read."""

    key: str
    type: str
    occurred_on: date
    institution_code: str
    pregnancy_id: str = ""
    person_id: str = ""
    voided: bool = False
    gestational_days: int = 0
    mode: str = ""
    babies: tuple[Baby, ...] = ()
    is_newborn_visit: bool = False
    #: the registry's WHO z-scores (NaN = not computable), never computed again here
    z: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Person:
    person_id: str
    birth_date: date
    born_in_pregnancy_id: str = ""


@dataclass(frozen=True)
class Certificate:
    """出生医学证明, as the certificates service published it."""

    serial: str
    child_id: str
    kind: str
    status: str
    institution_code: str


@dataclass(frozen=True)
class FollowupCase:
    """A screening follow-up case (高危孕产妇专案 among them)."""

    case_id: str
    case_type: str
    status: str
    due_on: date
    institution_code: str

    @property
    def key(self) -> str:
        return f"case:{self.case_id}"


@dataclass
class PregnancyFile:
    """Everything known about one pregnancy: the unit the pregnancy-level rules are evaluated on (live records
    only; voided ones are left out by whoever builds it)."""

    pregnancy: Pregnancy
    mother: Person | None = None
    encounters: list[Encounter] = field(default_factory=list)
    children: dict[str, Person] = field(default_factory=dict)
    child_encounters: dict[str, list[Encounter]] = field(default_factory=dict)
    certificates: dict[str, list[Certificate]] = field(default_factory=dict)
