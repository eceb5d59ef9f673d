"""Request bodies of the registry contract (../shared/spec/api.md)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from kit.clock import today_cn
from kit.guard import INT_MAX
from kit.records import Text
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from registry.api.schemas_programmes import PROGRAMME_ENCOUNTER_FIELDS, DeathReviewIn

SourceId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")
#: a record's version: versions are Postgres integers
Version = Field(None, ge=1, le=INT_MAX)
#: the earliest birth date (and residence) the registry takes: no one alive was born before it
EARLIEST = date(1900, 1, 1)


def _not_future(v: date) -> date:
    """Compared with today in China (UTC+8): a date of today, sent before 08:00 Beijing time, is not future."""
    if v > today_cn():
        raise ValueError(f"{v} is in the future")
    return v


def _since_1900(v: date) -> date:
    if v < EARLIEST:
        raise ValueError(f"{v} is before {EARLIEST}")
    return v


#: a name: something other than whitespace (an ideographic space U+3000 included)
Name = Text
#: a date that has happened, from 1900 on (births, the start of a residence)
PastDate = Annotated[date, AfterValidator(_since_1900), AfterValidator(_not_future)]
def _bad_person_refs(refs: list[tuple[tuple[int | str, ...], Any]]) -> None:
    """A nested reference to a stored person ({"person_id": ...}) names her by a string id: a number, null, a
    list or an object there is refused naming the nested field (it used to reach the database as a wrong-typed
    parameter: a 500)."""
    bad = [InitErrorDetails(type=PydanticCustomError("person_ref", "must be a person id: a string of 1 to 64 "
                                                     "characters"), loc=(*at, "person_id"), input=ref.get("person_id"))
           for at, ref in refs if isinstance(ref, dict) and "person_id" in ref
           and not (isinstance(ref["person_id"], str) and 1 <= len(ref["person_id"]) <= 64)]
    if bad:
        raise ValidationError.from_exception_data("person reference", bad)


class InstitutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name = Field(min_length=1, max_length=200)
    region_code: str = Field(max_length=12)
    kind: Literal["hospital", "health_centre", "mch_centre", "agency"]
    midwifery_licensed: bool


#: the kinds of identity document (registry.domain.documents.KINDS)
DocumentType = Literal["resident_id", "passport", "hmt_residence_permit", "hk_mo_travel_permit", "tw_travel_permit",
                       "foreign_permanent_residence", "birth_certificate", "none"]


class PersonIn(BaseModel):
    """A person. `id_number` is a resident identity number (居民身份证号, GB 11643), as before; a person holding
    another document sends `document_type` and `document_number` instead (a resident identity number may be sent
    either way). Each kind is validated by its rules (registry.domain.documents)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"id_number": "11010519900101122X", "name": "王小丽", "sex": "F", "birth_date": "1990-01-01",
         "residence_code": "110105001000", "phone": "13800000000"},
        {"document_type": "hk_mo_travel_permit", "document_number": "H12345678", "name": "陈美玲", "sex": "F",
         "birth_date": "1992-03-04", "residence_code": "440304001000"}]})
    id_number: str | None = Field(None, max_length=32, description="居民身份证号 (GB 11643)")
    document_type: DocumentType | None = Field(None, description="the kind of identity document (证件类型); "
                                               "`none` for a newborn without one yet")
    document_number: str | None = Field(None, max_length=32, description="the document's number (证件号码)")
    name: Name = Field(min_length=1, max_length=100)
    sex: Literal["F", "M"]
    birth_date: PastDate
    residence_code: str = Field(max_length=12)
    phone: str | None = Field(None, max_length=32)
    hukou_code: str | None = Field(None, pattern=r"^[1-9][0-9]{5}$",
                                   description="户籍地: the 6-digit county code of the person's registered residence "
                                               "(户口), for the 户籍 / 常住 split")


class PersonRef(BaseModel):
    """A stored person, by her person id (in place of an inline person)."""

    model_config = ConfigDict(extra="forbid")
    person_id: str = Field(min_length=1, max_length=64)


#: an inline person or a reference to a stored one: validated in the use case (an inline one as POST /v1/persons),
#: documented as either (registry.api.openapi writes the two schemas in place of this marker)
PERSON_OR_REF = "x-mch-person-or-ref"
PersonOrRef = Annotated[dict[str, Any], WithJsonSchema({PERSON_OR_REF: True})]


class PregnancyIn(BaseModel):
    """建册: a pregnancy registered at an institution of the caller's region, for a mother inline or stored."""

    model_config = ConfigDict(extra="forbid")
    pregnancy_id: str = SourceId
    source: str = SourceId
    version: int | None = Version
    mother: PersonOrRef = Field(description='an inline person, or {"person_id": "..."} of a stored one')
    lmp_date: date
    registered_on: date
    institution_code: str = Field(min_length=1, max_length=64)
    residence_code: str | None = Field(None, max_length=12)

    @field_validator("mother")
    @classmethod
    def _mother_ref(cls, v: dict[str, Any]) -> dict[str, Any]:
        _bad_person_refs([((), v)])
        return v


class EncounterIn(BaseModel):
    """The common part; type-specific fields are validated by the type's own model."""

    model_config = ConfigDict(extra="allow")
    encounter_id: str = SourceId
    source: str = SourceId
    version: int | None = Version
    type: str = Field(max_length=64)
    occurred_at: datetime | date = Field(description="a date, or a timestamp with its UTC offset "
                                         "(2026-05-02T09:30:00+08:00)")
    institution_code: str = Field(min_length=1, max_length=64)
    subject_id: str = Field(min_length=1, max_length=64)

    @field_validator("occurred_at", mode="wrap")
    @classmethod
    def _offset(cls, v: Any, handler: ValidatorFunctionWrapHandler) -> datetime | date:
        """A timestamp without an offset is ambiguous by 8 hours (UTC or Beijing?), so it is refused; a plain
        date stays what it was (the clinical date itself)."""
        out = handler(v)
        plain_date = (isinstance(v, date) and not isinstance(v, datetime)) or (isinstance(v, str) and len(v) == 10)
        if isinstance(out, datetime) and out.tzinfo is None and not plain_date:
            raise ValueError("a timestamp needs its UTC offset, e.g. 2026-05-02T09:30:00+08:00 (or send a date)")
        return out  # type: ignore[no-any-return]


class BabyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sex: Literal["F", "M"]
    birth_weight_g: int | None = Field(None, ge=0, le=INT_MAX)
    outcome: Literal["live", "stillbirth"]
    child_id: str | None = Field(None, max_length=64)
    birth_order: int | None = Field(None, ge=1, le=20, description="孩次: 1 = the mother's first child (出生性别比 "
                                                                   "of second and later births)")


class DeliveryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    place: Literal["hospital", "home", "en_route", "other"]
    mode: Literal["vaginal", "caesarean", "assisted"]
    babies: list[BabyIn] = Field(min_length=1, max_length=8)


class VoidIn(BaseModel):
    reason: Name = Field(min_length=1, max_length=500)


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
    person_id: str | None = Field(None, max_length=64)
    quantity: int = Field(ge=1, le=10000)


class DeathIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: str | None = Field(None, max_length=64)
    died_on: date
    cause: str | None = Field(None, max_length=200)
    #: 死亡评审 (programme encounters, schemas_programmes): added by a correction once the review has met
    review: DeathReviewIn | None = None


#: the type-specific fields of each encounter type
ENCOUNTER_FIELDS: dict[str, type[BaseModel]] = {
    "prenatal_visit": PrenatalVisitIn, "delivery": DeliveryIn, "postpartum_visit": PostpartumVisitIn,
    "postpartum_42d_check": PostpartumVisitIn, "newborn_visit": ChildCheckIn, "child_health_check": ChildCheckIn,
    "folic_acid_dispensed": FolicAcidIn, "death": DeathIn,
    **PROGRAMME_ENCOUNTER_FIELDS,
}


class ResidenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: PastDate
    region_code: str = Field(max_length=12)


class MarriageIn(BaseModel):
    """结婚登记 by a civil-affairs office of the caller's region."""

    model_config = ConfigDict(extra="forbid")
    registration_id: str = SourceId
    source: str = SourceId
    version: int | None = Version
    registered_on: date
    region_code: str = Field(max_length=12)
    persons: list[PersonOrRef] = Field(min_length=2, max_length=2, description="the two persons, each inline or "
                                       "stored")

    @field_validator("persons")
    @classmethod
    def _person_refs(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        _bad_person_refs([((i,), p) for i, p in enumerate(v)])
        return v


class MergeIn(BaseModel):
    """合并: the record `duplicate` is the same woman / child as the person in the path (the survivor)."""

    model_config = ConfigDict(extra="forbid")
    duplicate: str = Field(min_length=1, max_length=64, description="person_id of the duplicate record")
    reason: Name = Field(min_length=1, max_length=500, description="why the reviewer says they are one person")


class UnmergeIn(BaseModel):
    """撤销合并: the record in the path (a duplicate) is its own person again."""

    model_config = ConfigDict(extra="forbid")
    reason: Name = Field(min_length=1, max_length=500)
