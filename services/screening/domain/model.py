"""Screening results (筛查结果): the contract's types, their fields, who they may be about, and the facts the
classification rules read. Pure: no I/O; `service` feeds it what the store knows.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from kit.records import Decision, DomainError, content_hash, decide_version, fail, field_error, pydantic_errors  # noqa: F401 (re-exported)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SourceId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")
Code = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
RATIO_RE = re.compile(r"^1/([1-9][0-9]{0,6})$")


# ---------------------------------------------------------------- what screening knows (from registry events)
@dataclass(frozen=True)
class PersonInfo:
    person_id: str
    sex: str
    birth_date: date
    residence: list[tuple[str, str]] = field(default_factory=list)  # (since "YYYY-MM-DD" or "", region)
    mother_id: str | None = None

    def residence_on(self, on: date) -> str | None:
        """现住址 on a date: the last span that started on or before it (the first span if none did)."""
        if not self.residence:
            return None
        spans = sorted(self.residence, key=lambda s: s[0])
        cur = spans[0][1]
        for since, code in spans:
            if not since or date.fromisoformat(since) <= on:
                cur = code
        return cur

    def age_days(self, on: date) -> int:
        return (on - self.birth_date).days

    def age_years(self, on: date) -> int:
        return on.year - self.birth_date.year - ((on.month, on.day) < (self.birth_date.month, self.birth_date.day))


@dataclass(frozen=True)
class PregnancyInfo:
    pregnancy_id: str
    mother_id: str
    lmp_date: date
    registered_on: date
    residence_code: str
    voided: bool = False
    delivered_on: date | None = None

    def gestational_days(self, on: date) -> int:
        return (on - self.lmp_date).days


def weeks(days: int) -> str:
    return f"{days // 7}+{days % 7}"


# ---------------------------------------------------------------- the request
class ScreeningIn(BaseModel):
    """The common part of every result; the type's own model validates the rest."""

    model_config = ConfigDict(extra="allow")
    screening_id: str = SourceId
    source: str = SourceId
    version: int | None = Field(None, ge=1)
    type: str
    subject_id: str = Field(min_length=1, max_length=64)
    partner_id: str | None = Field(None, min_length=1, max_length=64)
    performed_on: date
    institution_code: str = Field(min_length=1, max_length=64)
    note: str | None = Field(None, max_length=2000)


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def facts(self) -> dict[str, Any]:
        return self.model_dump()


PosNeg = Literal["negative", "positive"]
Tested = Literal["negative", "positive", "not_done"]


class FindingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Code
    affects_marriage: bool


class PremaritalExamIn(_Result):
    """婚前医学检查."""

    findings: list[FindingIn] = Field(max_length=50)
    hiv: Tested
    syphilis: Tested
    hbsag: Tested

    def facts(self) -> dict[str, Any]:
        return {"affecting_findings": sum(f.affects_marriage for f in self.findings), "findings": len(self.findings),
                "hiv": self.hiv, "syphilis": self.syphilis, "hbsag": self.hbsag}


class PrepregnancyExamIn(_Result):
    """孕前优生健康检查."""

    at_risk: bool
    risk_factors: list[str] = Field(default_factory=list, max_length=50)
    #: 梅毒 / HIV / 乙肝 results of the examination (optional: older HIS send none — as not done)
    hiv: Tested = "not_done"
    syphilis: Tested = "not_done"
    hbsag: Tested = "not_done"

    @model_validator(mode="after")
    def _consistent(self) -> PrepregnancyExamIn:
        if self.risk_factors and not self.at_risk:
            raise ValueError("risk_factors are given but at_risk is false")
        return self


def ratio_n(v: Any, name: str) -> int:
    """A risk ratio "1/N" → N (the higher N, the lower the risk)."""
    m = RATIO_RE.match(v) if isinstance(v, str) else None
    if not m:
        raise ValueError(f'{name} must be a risk ratio "1/N" with a whole N ≥ 1 (e.g. "1/270"), got {v!r}')
    return int(m.group(1))


class PrenatalSerumIn(_Result):
    """血清学产前筛查: risks of trisomy 21 and 18 as "1/N", NTD low/high."""

    t21_risk: str
    t18_risk: str
    ntd_risk: Literal["low", "high"]

    @field_validator("t21_risk", "t18_risk", mode="before")
    @classmethod
    def _ratio(cls, v: Any, info: Any) -> str:
        ratio_n(v, info.field_name)
        return str(v)

    def facts(self) -> dict[str, Any]:
        return {"t21_risk_n": ratio_n(self.t21_risk, "t21_risk"), "t18_risk_n": ratio_n(self.t18_risk, "t18_risk"),
                "ntd_risk": self.ntd_risk}


class CfdnaIn(_Result):
    """无创产前基因检测 (NIPT)."""

    result: Literal["low_risk", "high_risk", "no_call"]


class MaternalInfectionTestIn(_Result):
    """孕产妇艾滋病、梅毒、乙肝检测."""

    infection: Literal["hiv", "syphilis", "hbsag"]
    timing: Literal["pregnancy", "labour"]
    result: PosNeg


class HbigIn(_Result):
    """乙肝免疫球蛋白 given to an exposed infant."""

    hours_after_birth: float = Field(ge=0, le=28 * 24)


class HepbVaccineIn(_Result):
    """乙肝疫苗 given to a newborn: the dose and how many hours after birth (首剂及时接种: dose 1 within 24 h)."""

    dose: int = Field(ge=1, le=4)
    hours_after_birth: float = Field(ge=0, le=366 * 24)


class ExposedInfantIn(_Result):
    """艾滋病 / 梅毒暴露儿童 (a child of an HIV- or syphilis-positive mother): the infant's test (HIV early
    diagnosis / 非梅毒螺旋体抗原血清学试验) and whether prophylaxis was given (抗病毒用药 / 预防性治疗)."""

    infection: Literal["hiv", "syphilis"]
    test_result: Tested
    prophylaxis: bool


class NewbornMetabolicIn(_Result):
    """新生儿遗传代谢病筛查: PKU and CH always, others (cah, g6pd, …) when screened."""

    conditions: dict[str, PosNeg]

    @field_validator("conditions")
    @classmethod
    def _pku_ch(cls, v: dict[str, str]) -> dict[str, str]:
        missing = [c for c in ("pku", "ch") if c not in v]
        if missing:
            raise ValueError(f"the screen must report {' and '.join(missing)} (PKU and CH are always screened)")
        bad = [k for k in v if not re.match(r"^[a-z][a-z0-9_]{0,31}$", k)]
        if bad:
            raise ValueError(f"condition codes are snake_case: {', '.join(bad)}")
        return v

    def facts(self) -> dict[str, Any]:
        return {"positive_count": sum(r == "positive" for r in self.conditions.values()), **self.conditions}


class NewbornHearingIn(_Result):
    """新生儿听力筛查 (refer if either ear refers)."""

    round: Literal["initial", "rescreen"]
    result: Literal["pass", "refer"]


class CervicalIn(_Result):
    """宫颈癌检查."""

    method: Literal["hpv", "cytology", "via"]
    result: Literal["normal", "abnormal"]
    detail: str | None = Field(None, max_length=500)


class BreastIn(_Result):
    """乳腺癌检查 (BI-RADS 0..6)."""

    method: Literal["ultrasound", "mammography"]
    birads: int = Field(ge=0, le=6)


class ThalassaemiaIn(_Result):
    """地贫筛查."""

    result: Literal["carrier", "non_carrier"]


class NutritionPackIn(_Result):
    """营养包 dispensed to a child."""

    packs: int = Field(ge=1, le=1000)


SubjectKind = Literal["person", "pregnancy", "child"]


@dataclass(frozen=True)
class TypeSpec:
    model: type[_Result]
    subject: SubjectKind
    partner: bool = False
    sex: str | None = None
    min_age_years: int | None = None
    min_age_days: int | None = None
    max_age_days: int | None = None
    #: gestation window in days since LMP (pregnancy screens)
    gestation: tuple[int, int] | None = None


TYPES: dict[str, TypeSpec] = {
    "premarital_exam": TypeSpec(PremaritalExamIn, "person", partner=True, min_age_years=18),
    "prepregnancy_exam": TypeSpec(PrepregnancyExamIn, "person", partner=True, min_age_years=15),
    # 15+0–20+6 weeks is the protocol window; a week either side is accepted, beyond that the LMP or the
    # date is wrong
    "prenatal_serum": TypeSpec(PrenatalSerumIn, "pregnancy", gestation=(14 * 7, 22 * 7 + 6)),
    "cfdna": TypeSpec(CfdnaIn, "pregnancy", gestation=(12 * 7, 26 * 7 + 6)),
    "maternal_infection_test": TypeSpec(MaternalInfectionTestIn, "pregnancy"),
    "hbig": TypeSpec(HbigIn, "child", max_age_days=28),
    # the series runs to 6 months (0, 1, 6 months); dose 1 is the one the indicators look at
    "hepb_vaccine": TypeSpec(HepbVaccineIn, "child", max_age_days=366),
    # HIV early diagnosis runs to 18 months; a syphilis-exposed child is followed to 18 months too
    "exposed_infant": TypeSpec(ExposedInfantIn, "child", max_age_days=2 * 365),
    "newborn_metabolic": TypeSpec(NewbornMetabolicIn, "child", max_age_days=365),
    "newborn_hearing": TypeSpec(NewbornHearingIn, "child", max_age_days=365),
    "cervical": TypeSpec(CervicalIn, "person", sex="F", min_age_years=18),
    "breast": TypeSpec(BreastIn, "person", sex="F", min_age_years=18),
    "thalassaemia": TypeSpec(ThalassaemiaIn, "person", partner=True, min_age_years=15),
    # 营养包 are for children 6–24 months; a month early and up to 3 years accepted
    "nutrition_pack": TypeSpec(NutritionPackIn, "child", min_age_days=150, max_age_days=3 * 365 + 1),
}
COMMON_FIELDS = frozenset(ScreeningIn.model_fields)


def parse(body: dict[str, Any]) -> tuple[ScreeningIn, _Result, TypeSpec]:
    """The common fields, then the type's own (errors name the field as posted)."""
    try:
        req = ScreeningIn.model_validate(body)
    except ValidationError as e:
        raise pydantic_errors(e) from e
    spec = TYPES.get(req.type)
    if spec is None:
        raise fail("type", f"unknown screening type {req.type!r}; one of {', '.join(TYPES)}")
    if req.partner_id is not None and not spec.partner:
        raise fail("partner_id", f"partner_id is only given on {', '.join(t for t, s in TYPES.items() if s.partner)}")
    try:
        result = spec.model.model_validate(req.model_extra or {})
    except ValidationError as e:
        raise pydantic_errors(e) from e
    return req, result, spec


def check_dates(performed_on: date, today: date) -> None:
    if performed_on > today:
        raise fail("performed_on", f"{performed_on} is in the future")


def check_person_subject(t: str, spec: TypeSpec, person: PersonInfo, on: date) -> list[dict[str, str]]:
    """Is this person someone a `t` result can be about on `on`? (a newborn screen on an adult, …)"""
    errs = []
    age = person.age_days(on)
    if age < 0:
        errs.append(field_error("performed_on", f"{on} is before the subject's birth ({person.birth_date})"))
        return errs
    if spec.sex and person.sex != spec.sex:
        errs.append(field_error("subject_id", f"{t} is a screening of women; the subject is sex {person.sex}"))
    if spec.min_age_years is not None and person.age_years(on) < spec.min_age_years:
        errs.append(field_error("subject_id", f"{t} is for persons aged {spec.min_age_years} or more; the subject "
                                f"is {person.age_years(on)} on {on}"))
    if spec.max_age_days is not None and age > spec.max_age_days:
        errs.append(field_error("subject_id", f"{t} is for infants up to {spec.max_age_days} days old; the subject "
                                f"born {person.birth_date} is {age} days old on {on}"))
    if spec.min_age_days is not None and age < spec.min_age_days:
        errs.append(field_error("subject_id", f"{t} is for children from {spec.min_age_days} days old; the subject "
                                f"is {age} days old on {on}"))
    return errs


def check_hbig_hours(hours: float, person: PersonInfo, on: date) -> list[dict[str, str]]:
    """The hours after birth must fit the day the injection is recorded on (a day's slack for clock times)."""
    days = person.age_days(on)
    if not days - 1 <= hours / 24 <= days + 1:
        return [field_error("hours_after_birth", f"{hours} hours after birth does not fit performed_on {on} for a "
                            f"child born {person.birth_date} ({days} days)")]
    return []


def check_pregnancy_subject(t: str, spec: TypeSpec, p: PregnancyInfo, on: date,
                            result: _Result) -> list[dict[str, str]]:
    errs = []
    if p.voided:
        return [field_error("subject_id", f"pregnancy {p.pregnancy_id} was voided in the registry")]
    gd = p.gestational_days(on)
    if gd < 0:
        return [field_error("performed_on", f"{on} is before the pregnancy's LMP ({p.lmp_date})")]
    if spec.gestation is not None:
        lo, hi = spec.gestation
        if not lo <= gd <= hi:
            errs.append(field_error("performed_on", f"{t} is done at {weeks(lo)} to {weeks(hi)} weeks; on {on} the "
                                    f"gestation is {weeks(gd)} weeks (LMP {p.lmp_date})"))
    if isinstance(result, MaternalInfectionTestIn) and p.delivered_on is not None:
        if result.timing == "pregnancy" and on > p.delivered_on:
            errs.append(field_error("performed_on", f"a test during pregnancy cannot be after the delivery on "
                                    f"{p.delivered_on}; a test at labour has timing 'labour'"))
        if result.timing == "labour" and abs((on - p.delivered_on).days) > 2:
            errs.append(field_error("performed_on", f"a test at labour is within 2 days of the delivery "
                                    f"({p.delivered_on})"))
    elif p.delivered_on is not None and on > p.delivered_on:
        errs.append(field_error("performed_on", f"{t} after the delivery on {p.delivered_on}"))
    return errs
