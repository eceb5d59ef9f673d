"""Turning registry records into events (proto/mch/events/v1/registry.proto)."""
from __future__ import annotations

from datetime import date
from typing import Any

from kit.events import NewEvent
from mch.events.v1 import registry_pb2 as pb

from registry.domain.model import Institution, Pregnancy

INSTITUTION_UPSERTED = "registry.institution.upserted"
PERSON_UPSERTED = "registry.person.upserted"
PREGNANCY_RECORDED = "registry.pregnancy.recorded"
ENCOUNTER_RECORDED = "registry.encounter.recorded"
MARRIAGE_RECORDED = "registry.marriage.recorded"
NAN = float("nan")


def _num(v: Any) -> float:
    return float(v) if v is not None else 0.0


def _z(v: Any) -> float:
    return float(v) if v is not None else NAN


def institution_upserted(i: Institution, version: int) -> NewEvent:
    return NewEvent(INSTITUTION_UPSERTED, pb.InstitutionUpserted(
        institution_code=i.code, name=i.name, region_code=i.region_code, kind=i.kind,
        midwifery_licensed=i.midwifery_licensed, version=version), subject_key=f"institution:{i.code}",
        region_code=i.region_code)


def person_upserted(person_id: str, sex: str, birth_date: date, residence: list[tuple[date | None, str]],
                    version: int, mother_id: str | None = None, born_in: str | None = None,
                    registered_on: date | None = None, hukou_code: str | None = None) -> NewEvent:
    """`registered_on`: when the registry first recorded a person not born here (from then on the indicators
    know where she lives, checked or not)."""
    spans = [pb.ResidenceSpan(since=s.isoformat() if s else "", region_code=r) for s, r in residence]
    return NewEvent(PERSON_UPSERTED, pb.PersonUpserted(
        person_id=person_id, sex=sex, birth_date=birth_date.isoformat(), residence=spans,
        mother_id=mother_id or "", born_in_pregnancy_id=born_in or "", version=version,
        registered_on=registered_on.isoformat() if registered_on else "", hukou_code=hukou_code or ""),
        subject_key=f"person:{person_id}", region_code=residence[-1][1] if residence else "")


def pregnancy_recorded(p: Pregnancy) -> NewEvent:
    return NewEvent(PREGNANCY_RECORDED, pb.PregnancyRecorded(
        pregnancy_id=p.pregnancy_id, source=p.source, mother_id=p.mother_id, lmp_date=p.lmp_date.isoformat(),
        registered_on=p.registered_on.isoformat(), institution_code=p.institution_code,
        residence_code=p.residence_code, version=p.version, voided=p.voided), subject_key=f"pregnancy:{p.pregnancy_id}",
        region_code=p.residence_code, occurred_at=p.registered_on)


def programme_part(t: str, body: dict[str, Any]) -> dict[str, Any]:
    """The sub-message of a programme encounter (issue 21; registry domain/encounters_programmes.py)."""
    if t == "pregnancy_termination":
        return {"termination": pb.PregnancyTermination(method=body["method"], reason=body["reason"],
                                                       gestational_days=body["gestational_days"])}
    if t == "maternal_near_miss":
        return {"near_miss": pb.MaternalNearMiss(cause_category=body["cause_category"],
                                                 organ_dysfunction=body["organ_dysfunction"],
                                                 gestational_days=body["gestational_days"])}
    person = {"person_id": body.get("person_id", ""), "age_days": body.get("age_days", 0)}
    if t == "birth_defect":
        return {"birth_defect": pb.BirthDefect(categories=body["categories"], **person)}
    if t == "neonatal_tetanus":
        return {"neonatal_tetanus": pb.NeonatalTetanus(died=body["died"], **person)}
    if t == "at_risk_child":
        return {"at_risk_child": pb.AtRiskChild(conditions=body["conditions"], closed_on=body["closed_on"],
                                                outcome=body["outcome"], **person)}
    if t == "nursery_health_check":
        return {"nursery_check": pb.NurseryHealthCheck(role=body["role"], nursery=body["nursery"],
                                                       abnormal=body["abnormal"], **person)}
    return {}


def encounter_recorded(row: dict[str, Any], institution: Institution, region_code: str,
                       pregnancy: Pregnancy | None) -> NewEvent:
    """`row` is the stored encounter (body = the posted fields plus derived ones)."""
    body = row["body"]
    occurred = date.fromisoformat(row["occurred_on"]) if isinstance(row["occurred_on"], str) else row["occurred_on"]
    t = row["type"]
    part: dict[str, Any] = {}  # the type's sub-message, built in place (no CopyFrom)
    if t == "delivery":
        part["delivery"] = pb.Delivery(
            place=body["place"], mode=body["mode"],
            gestational_days=body.get("gestational_days", 0),
            institution_midwifery_licensed=institution.is_delivery_facility,
            babies=[pb.Baby(sex=b["sex"], birth_weight_g=b.get("birth_weight_g") or 0, outcome=b["outcome"],
                            child_id=b.get("child_id") or "", birth_order=b.get("birth_order") or 0)
                    for b in body["babies"]])
    elif t == "prenatal_visit":
        part["prenatal_visit"] = pb.PrenatalVisit(
            gestational_days=body["gestational_days"], risk_grade=body.get("risk_grade") or "",
            counts_as_antenatal_check=body.get("counts_as_antenatal_check", True))
    elif t in ("postpartum_visit", "postpartum_42d_check"):
        part["postpartum_visit"] = pb.PostpartumVisit(day_after_delivery=body["day_after_delivery"],
                                                      is_42d_check=body["is_42d_check"])
    elif t in ("newborn_visit", "child_health_check"):
        part["child_check"] = pb.ChildCheck(
            is_newborn_visit=body["is_newborn_visit"], weight_kg=_num(body.get("weight_kg")),
            height_cm=_num(body.get("height_cm")), feeding=body.get("feeding") or "",
            haemoglobin_g_l=_num(body.get("haemoglobin_g_l")), age_days=body["age_days"],
            weight_for_age_z=_z(body.get("weight_for_age_z")), height_for_age_z=_z(body.get("height_for_age_z")),
            weight_for_height_z=_z(body.get("weight_for_height_z")))
    elif t == "folic_acid_dispensed":
        part["folic_acid"] = pb.FolicAcidDispensed(person_id=body["person_id"], quantity=body["quantity"])
    elif t == "death":
        review = body.get("review")
        part["death"] = pb.Death(person_id=body["person_id"], died_on=body["died_on"], cause=body.get("cause") or "",
                                 maternal=body["maternal"], pregnancy_id=body.get("pregnancy_id") or "",
                                 age_days=body["age_days"], review=pb.DeathReview(**review) if review else None)
    else:
        part.update(programme_part(t, body))
    msg = pb.EncounterRecorded(
        encounter_key=f"{row['source']}/{row['encounter_id']}", source=row["source"],
        encounter_id=row["encounter_id"], version=row["version"], voided=row["voided"], type=t,
        occurred_on=occurred.isoformat(), institution_code=institution.code,
        institution_region=institution.region_code, subject_id=row["subject_id"],
        pregnancy_id=row.get("pregnancy_id") or "", person_id=str(row.get("person_id") or ""), **part)
    key = f"pregnancy:{pregnancy.pregnancy_id}" if pregnancy else f"person:{row.get('person_id')}"
    return NewEvent(ENCOUNTER_RECORDED, msg, subject_key=key, region_code=region_code, occurred_at=occurred)


def marriage_recorded(m: dict[str, Any]) -> NewEvent:
    """结婚登记: the two persons and where/when they registered (no names on the bus)."""
    key = f"{m['source']}/{m['registration_id']}"
    on = m["registered_on"]
    return NewEvent(MARRIAGE_RECORDED, pb.MarriageRecorded(
        registration_key=key, registered_on=on.isoformat(), region_code=m["region_code"],
        person_ids=[str(p) for p in m["person_ids"]], version=m["version"], voided=m["voided"]),
        subject_key=f"marriage:{key}", region_code=m["region_code"], occurred_at=on)


PERSON_MERGED = "registry.person.merged"


def person_merged(m: dict[str, Any], merged_on: date) -> NewEvent:
    """合并 / 撤销合并: the whole current state of one merge (version 2 = unmerged). Keyed by the duplicate, the
    record whose reading changes, so that it is ordered with the duplicate's own events."""
    return NewEvent(PERSON_MERGED, pb.PersonMerged(
        merge_id=m["merge_id"], survivor_id=m["survivor_id"], duplicate_id=m["duplicate_id"],
        pregnancies=[pb.PregnancyMerge(duplicate_id=p["duplicate_id"], survivor_id=p["survivor_id"])
                     for p in m["pregnancies"]],
        version=m["version"], unmerged=m["status"] == "unmerged", merged_on=merged_on.isoformat()),
        subject_key=f"person:{m['duplicate_id']}")
