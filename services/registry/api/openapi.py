"""The typed OpenAPI of the bodies HIS systems post (issue 19: what an integrator needs to know to send).

The routes take encounters, pregnancies and marriage registrations as JSON and validate them in the use case
(registry.service: the common part with `EncounterIn`, the type's own fields with `ENCOUNTER_FIELDS`), so that a
batch answers per item and a bad body a problem naming the field. The OpenAPI says the same thing as types: one
schema per encounter type, a discriminated union on `type` (`Encounter`), built here from those very models —
the documented body and the validated one cannot drift apart — with an example of each.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from fastapi import FastAPI
from kit.openapi_docs import extend_openapi
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from registry.api.schemas import (
    ENCOUNTER_FIELDS,
    PERSON_OR_REF,
    EncounterIn,
    MarriageIn,
    PersonIn,
    PersonRef,
    PregnancyIn,
)
from registry.domain.model import PREGNANCY_ENCOUNTERS

#: what each encounter type records (中文 as the forms say it)
MEANING = {
    "prenatal_visit": "产前检查: an antenatal check of a pregnancy (subject_id: the pregnancy id)",
    "delivery": "分娩: the delivery of a pregnancy, with its babies (each live-born one becomes a person)",
    "postpartum_visit": "产后访视: a postpartum home visit (subject_id: the pregnancy id)",
    "postpartum_42d_check": "产后42天健康检查: the 42-day postpartum check (subject_id: the pregnancy id)",
    "newborn_visit": "新生儿访视: a newborn home visit (subject_id: the child's person id)",
    "child_health_check": "儿童健康检查: a child health check with growth measures (subject_id: the child)",
    "folic_acid_dispensed": "增补叶酸: folic acid dispensed to a woman (subject_id: her person id)",
    "death": "死亡: a death, with its review (死亡评审) when done (subject_id: the person id)",
    "pregnancy_termination": "终止妊娠: an induced abortion or mid-term induction before 28 weeks; ends the "
                             "pregnancy like a delivery (subject_id: the pregnancy id)",
    "maternal_near_miss": "危重孕产妇: a maternal near-miss case (subject_id: the pregnancy id)",
    "birth_defect": "出生缺陷: a birth defect found at birth or within 7 days (subject_id: the child's person id)",
    "neonatal_tetanus": "新生儿破伤风: a case of neonatal tetanus (subject_id: the child's person id)",
    "at_risk_child": "体弱儿: a child at risk enrolled in management, closed by a correction with its outcome "
                     "(subject_id: the child's person id)",
    "nursery_health_check": "托幼机构健康检查: a nursery health check of a child or a member of staff "
                            "(subject_id: the person id)",
}


def _model_name(kind: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in kind.split("_")) + "Encounter"


def _typed(kind: str, fields: type[BaseModel]) -> type[BaseModel]:
    """The whole body of one encounter type: the common part, `type` fixed to the kind, the type's fields."""
    subject = "a pregnancy id" if kind in PREGNANCY_ENCOUNTERS else "a person id"
    return type(_model_name(kind), (fields, EncounterIn), {
        "__annotations__": {"type": Literal[kind], "subject_id": str},  # type: ignore[valid-type]
        "__doc__": MEANING[kind],
        "__module__": __name__,
        "subject_id": Field(min_length=1, max_length=64, description=subject),
        "model_config": ConfigDict(extra="forbid", title=_model_name(kind)),
    })


ENCOUNTER_MODELS = [_typed(kind, fields) for kind, fields in ENCOUNTER_FIELDS.items()]
#: the body of POST /v1/encounters: one of the types, told apart by `type`
EncounterBody = Annotated[Union[tuple(ENCOUNTER_MODELS)], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007

_COMMON = {"source": "his-320582-rmyy", "institution_code": "320582-RMYY"}
EXAMPLES: dict[str, dict[str, Any]] = {
    "prenatal_visit": {"encounter_id": "E-2026-000123", "type": "prenatal_visit", **_COMMON,
                       "occurred_at": "2026-05-02T09:30:00+08:00", "subject_id": "P-2026-000045",
                       "gestational_weeks": 12.5, "risk_grade": "yellow"},
    "delivery": {"encounter_id": "E-2026-000456", "type": "delivery", **_COMMON, "occurred_at": "2026-11-20",
                 "subject_id": "P-2026-000045", "place": "hospital", "mode": "vaginal",
                 "babies": [{"sex": "F", "birth_weight_g": 3250, "outcome": "live"}]},
    "postpartum_42d_check": {"encounter_id": "E-2027-000012", "type": "postpartum_42d_check", **_COMMON,
                             "occurred_at": "2027-01-01", "subject_id": "P-2026-000045"},
    "child_health_check": {"encounter_id": "E-2027-000099", "type": "child_health_check", **_COMMON,
                           "occurred_at": "2027-02-20", "subject_id": "7d0e8a52-3b1f-4c55-9a51-1c2b3d4e5f60",
                           "weight_kg": 5.6, "height_cm": 58.0, "feeding": "exclusive_breastfeeding"},
    "folic_acid_dispensed": {"encounter_id": "E-2026-000007", "type": "folic_acid_dispensed", **_COMMON,
                             "occurred_at": "2026-01-15", "subject_id": "7d0e8a52-3b1f-4c55-9a51-1c2b3d4e5f61",
                             "quantity": 90},
}
PREGNANCY_EXAMPLES = {
    "inline mother": {"pregnancy_id": "P-2026-000045", "source": "his-320582-rmyy", "lmp_date": "2026-02-10",
                      "registered_on": "2026-04-01", "institution_code": "320582-RMYY",
                      "mother": {"id_number": "11010519900101122X", "name": "王小丽", "sex": "F",
                                 "birth_date": "1990-01-01", "residence_code": "110105001000"}},
    "stored mother": {"pregnancy_id": "P-2026-000046", "source": "his-320582-rmyy", "lmp_date": "2026-03-01",
                      "registered_on": "2026-04-20", "institution_code": "320582-RMYY",
                      "mother": {"person_id": "7d0e8a52-3b1f-4c55-9a51-1c2b3d4e5f61"}},
}
MARRIAGE_EXAMPLE = {"registration_id": "M-2026-0001", "source": "civil-affairs-320582", "registered_on": "2026-05-20",
                    "region_code": "320582001000",
                    "persons": [{"person_id": "7d0e8a52-3b1f-4c55-9a51-1c2b3d4e5f61"},
                                {"id_number": "110105199203040013", "name": "李强", "sex": "M",
                                 "birth_date": "1992-03-04", "residence_code": "110105001000"}]}
BATCH_MAX = 1000
REF = "#/components/schemas/{model}"


def _components() -> dict[str, Any]:
    """The JSON schemas of the bodies, as OpenAPI components (validation mode: what is accepted)."""
    out: dict[str, Any] = {}
    adapter: TypeAdapter[Any] = TypeAdapter(EncounterBody)  # type: ignore[arg-type]
    union = adapter.json_schema(ref_template=REF)
    out.update(union.pop("$defs", {}))
    out["Encounter"] = {**union, "title": "Encounter",
                        "description": "An encounter: one schema per `type` (a discriminated union)."}
    for model in (PregnancyIn, MarriageIn, PersonIn, PersonRef):
        s = model.model_json_schema(ref_template=REF)
        out.update(s.pop("$defs", {}))
        out[model.__name__] = s
    return _persons_or_refs(out)  # type: ignore[no-any-return]


def _persons_or_refs(node: Any) -> Any:
    """The marker of an inline-or-stored person replaced by the two schemas it may be."""
    if isinstance(node, dict):
        if node.get(PERSON_OR_REF):
            return {"anyOf": [{"$ref": "#/components/schemas/PersonIn"}, {"$ref": "#/components/schemas/PersonRef"}],
                    **{k: v for k, v in node.items() if k != PERSON_OR_REF}}
        return {k: _persons_or_refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_persons_or_refs(v) for v in node]
    return node


def _body(name: str, examples: dict[str, Any], batch: bool) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{name}"}
    schema = {"type": "array", "items": ref, "maxItems": BATCH_MAX} if batch else ref
    ex = {k: {"summary": k, "value": [v] if batch else v} for k, v in examples.items()}
    return {"required": True, "content": {"application/json": {"schema": schema, "examples": ex}}}


#: (method, path) → (the body's schema, its examples, a batch of them)
BODIES = {
    ("post", "/v1/encounters"): ("Encounter", EXAMPLES, False),
    ("post", "/v1/encounters:batch"): ("Encounter", EXAMPLES, True),
    ("post", "/v1/pregnancies"): ("PregnancyIn", PREGNANCY_EXAMPLES, False),
    ("post", "/v1/pregnancies:batch"): ("PregnancyIn", PREGNANCY_EXAMPLES, True),
    ("post", "/v1/marriage-registrations"): ("MarriageIn", {"registration": MARRIAGE_EXAMPLE}, False),
    ("post", "/v1/marriage-registrations:batch"): ("MarriageIn", {"registration": MARRIAGE_EXAMPLE}, True),
}


def add_typed_bodies(schema: dict[str, Any]) -> dict[str, Any]:
    schema.setdefault("components", {}).setdefault("schemas", {}).update(_components())
    for (method, path), (name, examples, batch) in BODIES.items():
        schema["paths"][path][method]["requestBody"] = _body(name, examples, batch)
    return schema


def install(app: FastAPI) -> None:
    extend_openapi(app, add_typed_bodies)
