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
