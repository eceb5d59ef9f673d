"""Request bodies of the programme encounters (issue 21, "Programmes"): 终止妊娠, 危重孕产妇, 出生缺陷, 新生儿破伤风,
体弱儿专案, 托幼机构健康检查, and the review (死亡评审) of a death. (营养包 is a screening result of the contract,
`nutrition_pack`; 叶酸 the registry's `folic_acid_dispensed`.)

Kept apart from `schemas.py` (the contract's original encounter types) so that the typed encounter union can
take them over type by type: each model here is the type-specific part of one encounter type, listed in
`PROGRAMME_ENCOUNTER_FIELDS`; the common part (`EncounterIn`) is unchanged.
"""
from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: 出生缺陷监测: the 23 monitored categories, plus other (其他)
BirthDefectCategory = Literal[
    "anencephaly", "spina_bifida", "encephalocele", "hydrocephalus", "cleft_palate", "cleft_lip",
    "cleft_lip_palate", "microtia", "other_external_ear", "oesophageal_atresia", "anorectal_atresia",
    "hypospadias", "bladder_exstrophy", "clubfoot", "polydactyly", "syndactyly", "limb_reduction",
    "diaphragmatic_hernia", "omphalocele", "gastroschisis", "conjoined_twins", "down_syndrome",
    "congenital_heart_disease", "other"]
#: 死亡评审 cause categories: maternal (产科出血, 妊娠期高血压疾病, 羊水栓塞, 妊娠合并心脏病, 其他产科 / 内科) and
#: child (早产/低体重, 出生窒息, 肺炎, 先天性心脏病, 其他先天异常, 意外伤害) deaths, and other
DeathCauseCategory = Literal[
    "obstetric_haemorrhage", "hypertensive_disorder", "amniotic_fluid_embolism", "heart_disease",
    "other_obstetric", "other_medical", "prematurity_low_birth_weight", "birth_asphyxia", "pneumonia",
    "congenital_heart_disease", "other_congenital", "injury", "other"]


class DeathReviewIn(BaseModel):
    """死亡评审: the review of a maternal or child death — when, the cause category, and whether it was
    avoidable (可避免), avoidable had conditions been met (创造条件可避免) or unavoidable (不可避免)."""

    model_config = ConfigDict(extra="forbid")
    reviewed_on: date
    cause_category: DeathCauseCategory
    preventability: Literal["avoidable", "conditionally_avoidable", "unavoidable"]


class PregnancyTerminationIn(BaseModel):
    """人工终止妊娠 before 28 weeks: 药物流产, 负压吸引术, 钳刮术 (人工流产) or 引产 (induced labour)."""

    model_config = ConfigDict(extra="forbid")
    method: Literal["medical_abortion", "vacuum_aspiration", "dilation_curettage", "induced_labour"]
    reason: Literal["elective", "birth_defect", "maternal_disease", "infection", "fetal_death", "other"]


class MaternalNearMissIn(BaseModel):
    """危重孕产妇: a woman who nearly died during pregnancy or within 42 days of its end — the leading cause
    (the death-review categories) and whether organ dysfunction was recorded (WHO near-miss criteria)."""

    model_config = ConfigDict(extra="forbid")
    cause_category: DeathCauseCategory
    organ_dysfunction: bool = False


class BirthDefectIn(BaseModel):
    """出生缺陷: diagnosed in a live-born child (occurred_at: the diagnosis date)."""

    model_config = ConfigDict(extra="forbid")
    person_id: str | None = Field(None, max_length=64)
    categories: list[BirthDefectCategory] = Field(min_length=1, max_length=24)


class NeonatalTetanusIn(BaseModel):
    """新生儿破伤风: a case in a newborn (occurred_at: the onset date, within 28 days of birth)."""

    model_config = ConfigDict(extra="forbid")
    person_id: str | None = Field(None, max_length=64)
    died: bool = False


class AtRiskChildIn(BaseModel):
    """体弱儿专案管理: a child under 7 enrolled (occurred_at) for its conditions; closed (结案) by a correction
    that adds `closed_on` and `outcome` (together: the domain rule names the missing one)."""

    model_config = ConfigDict(extra="forbid")
    person_id: str | None = Field(None, max_length=64)
    conditions: list[Literal["premature_or_low_birth_weight", "malnutrition", "anaemia", "rickets", "obesity",
                             "developmental_delay", "other"]] = Field(min_length=1, max_length=7)
    closed_on: date | None = None
    outcome: Literal["recovered", "improved", "transferred", "died", "lost"] | None = None


class NurseryCheckIn(BaseModel):
    """托幼机构健康检查: a child's health check at a nursery or kindergarten (入园 / 定期体检), or a staff member's
    (工作人员体检); `abnormal` when the examiner found something needing follow-up (staff: not fit for work)."""

    model_config = ConfigDict(extra="forbid")
    person_id: str | None = Field(None, max_length=64)
    role: Literal["child", "staff"]
    nursery: str = Field(min_length=1, max_length=100)
    abnormal: bool = False


#: the type-specific fields of each programme encounter type (merged into schemas.ENCOUNTER_FIELDS)
PROGRAMME_ENCOUNTER_FIELDS: dict[str, type[BaseModel]] = {
    "pregnancy_termination": PregnancyTerminationIn,
    "maternal_near_miss": MaternalNearMissIn, "birth_defect": BirthDefectIn,
    "neonatal_tetanus": NeonatalTetanusIn, "at_risk_child": AtRiskChildIn, "nursery_health_check": NurseryCheckIn,
}
