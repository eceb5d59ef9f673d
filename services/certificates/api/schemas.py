"""Request bodies of the certificates contract (shared/spec/api.md)."""
from __future__ import annotations

from datetime import date
from typing import Literal

from kit.records import Text
from pydantic import BaseModel, ConfigDict, Field

Serial = Field(pattern=r"^[A-Z]\d{9}$", description="one capital letter and 9 digits, e.g. Q510012345")
Person = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$", description="a staff id")


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batch_no: str = Field(min_length=1, max_length=64)
    serial_from: str = Serial
    serial_to: str = Serial
    received_on: date
    by: str | None = Field(None, min_length=1, max_length=64)


class AllocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    institution_code: str = Field(min_length=1, max_length=64)
    serial_from: str = Serial
    serial_to: str = Serial
    allocated_on: date
    by: str | None = Field(None, min_length=1, max_length=64)


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(min_length=1, max_length=500)
    by: str = Person


class CustodianIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    institution_code: str = Field(min_length=1, max_length=64)
    staff_id: str = Person
    name: Text = Field(min_length=1, max_length=100)
    role: Literal["certificate", "seal"]


class CertificateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["first", "first_out_of_institution", "reissue", "replacement"]
    child_id: str = Field(min_length=1, max_length=64)
    child_name: Text = Field(min_length=1, max_length=100)
    prepared_by: str = Person
    institution_code: str | None = Field(None, min_length=1, max_length=64,
                                         description="defaults to the institution prepared_by keeps certificates at")
    previous_serial: str | None = Field(None, pattern=r"^[A-Z]\d{9}$")
    evidence_ref: Text | None = Field(None, max_length=200)


class SealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sealed_by: str = Person
