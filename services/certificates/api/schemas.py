"""Request bodies of the certificates contract (shared/spec/api.md, as decided in docs/decisions.md).

No body names who acts: the preparer, the sealer, who voids, receives or assigns is the person logged in (the
bearer token). The old actor fields (`prepared_by`, `sealed_by`, `by`) are refused with a 422 naming the field
and saying so, rather than the generic "extra field", so a client written against the old contract learns why.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

Serial = Field(pattern=r"^[A-Z]\d{9}$", description="one capital letter and 9 digits, e.g. Q510012345")
Code = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")
#: text with something in it and no NUL byte (Postgres text cannot hold one)
TEXT = r"^[^\x00]*[^\x00\s][^\x00]*$"
NO_NUL = r"^[^\x00]*$"
FROM_LOGIN = "who acts comes from the login (the bearer token), never from the request body: remove this field"


class _ActorFromLogin(BaseModel):
    """Refuses the former actor fields by name (hidden from the OpenAPI schema: they are not part of it)."""

    model_config = ConfigDict(extra="forbid")
    by: SkipJsonSchema[Any] = Field(None, exclude=True)

    @field_validator("by", "prepared_by", "sealed_by", mode="before", check_fields=False)
    @classmethod
    def _from_login(cls, v: Any) -> None:
        if v is not None:
            raise ValueError(FROM_LOGIN)
        return None


class BatchIn(_ActorFromLogin):
    batch_no: str = Code
    serial_from: str = Serial
    serial_to: str = Serial
    received_on: date


class AllocationIn(_ActorFromLogin):
    institution_code: str = Code
    serial_from: str = Serial
    serial_to: str = Serial
    allocated_on: date


class VoidIn(_ActorFromLogin):
    reason: str = Field(min_length=1, max_length=500, pattern=TEXT)


class CustodianIn(_ActorFromLogin):
    institution_code: str = Code
    account_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$",
                            description="the person account (人员账号) to assign; it holds the matching role "
                                        "(certificate_custodian / seal_custodian) at this institution")
    role: Literal["certificate", "seal"]


class CertificateIn(_ActorFromLogin):
    kind: Literal["first", "first_out_of_institution", "reissue", "replacement"]
    child_id: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    child_name: str = Field(min_length=1, max_length=100, pattern=TEXT)
    institution_code: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$",
                                         description="defaults to the institution of the person logged in; no "
                                                     "other may be named")
    previous_serial: str | None = Field(None, pattern=r"^[A-Z]\d{9}$")
    evidence_ref: str | None = Field(None, max_length=200, pattern=NO_NUL)
    prepared_by: SkipJsonSchema[Any] = Field(None, exclude=True)
    content: dict[str, str | int | float | None] | None = Field(
        None, max_length=60, description="the form's fields (出生医学证明), as the console's content_fields.json")


class PrintIn(_ActorFromLogin):
    reason: str | None = Field(None, min_length=1, max_length=200, pattern=TEXT)


class SealIn(_ActorFromLogin):
    sealed_by: SkipJsonSchema[Any] = Field(None, exclude=True)
