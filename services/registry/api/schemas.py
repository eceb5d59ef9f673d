"""Request bodies of the registry contract (../shared/spec/api.md)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SourceId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")


class InstitutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    region_code: str
    kind: Literal["hospital", "health_centre", "mch_centre", "agency"]
    midwifery_licensed: bool


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id_number: str | None = None
    name: str = Field(min_length=1, max_length=100)
    sex: Literal["F", "M"]
    birth_date: date
    residence_code: str
    phone: str | None = Field(None, max_length=32)


class PregnancyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pregnancy_id: str = SourceId
    source: str = SourceId
    version: int | None = Field(None, ge=1)
    mother: dict[str, Any]
    lmp_date: date
    registered_on: date
    institution_code: str = Field(min_length=1)
    residence_code: str | None = None


class EncounterIn(BaseModel):
    """The common part; type-specific fields are validated by the type's own model."""

    model_config = ConfigDict(extra="allow")
    encounter_id: str = SourceId
    source: str = SourceId
    version: int | None = Field(None, ge=1)
    type: str
    occurred_at: datetime | date
    institution_code: str = Field(min_length=1)
    subject_id: str = Field(min_length=1)


class BabyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sex: Literal["F", "M"]
    birth_weight_g: int | None = Field(None, ge=0)
    outcome: Literal["live", "stillbirth"]
    child_id: str | None = None


class DeliveryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    place: Literal["hospital", "home", "en_route", "other"]
    mode: Literal["vaginal", "caesarean", "assisted"]
    babies: list[BabyIn] = Field(min_length=1, max_length=8)


class VoidIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class PrenatalVisitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gestational_weeks: float | None = None
    risk_grade: Literal["green", "yellow", "orange", "red", "purple"] | None = None


class PostpartumVisitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChildCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weight_kg: float | None = None
    height_cm: float | None = None
    feeding: Literal["exclusive_breastfeeding", "mixed", "formula", "solids"] | None = None
    haemoglobin_g_l: float | None = None


class FolicAcidIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: str | None = None
    quantity: int = Field(ge=1, le=10000)


class DeathIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: str | None = None
    died_on: date
    cause: str | None = Field(None, max_length=200)


#: the type-specific fields of each encounter type
ENCOUNTER_FIELDS: dict[str, type[BaseModel]] = {
    "prenatal_visit": PrenatalVisitIn, "delivery": DeliveryIn, "postpartum_visit": PostpartumVisitIn,
    "postpartum_42d_check": PostpartumVisitIn, "newborn_visit": ChildCheckIn, "child_health_check": ChildCheckIn,
    "folic_acid_dispensed": FolicAcidIn, "death": DeathIn,
}


class ResidenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: date
    region_code: str


class MarriageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    registration_id: str = SourceId
    source: str = SourceId
    version: int | None = Field(None, ge=1)
    registered_on: date
    region_code: str
    persons: list[dict[str, Any]] = Field(min_length=2, max_length=2)
