"""Turning screening records into events (proto/mch/events/v1/screening.proto)."""
from __future__ import annotations

from typing import Any

from kit.events import NewEvent
from mch.events.v1 import screening_pb2 as pb

from screening.domain.followup import Case
from screening.domain.model import ratio_n

SCREENING_RECORDED = "screening.result.recorded"
FOLLOWUP_CHANGED = "screening.followup.changed"


def _detail(t: str, r: dict[str, Any]) -> dict[str, Any]:
    """The type's oneof member, from the stored result fields."""
    if t == "premarital_exam":
        return {"premarital_exam": pb.PremaritalExam(
            findings=[pb.Finding(code=f["code"], affects_marriage=f["affects_marriage"]) for f in r["findings"]],
            hiv=r["hiv"], syphilis=r["syphilis"], hbsag=r["hbsag"])}
    if t == "prepregnancy_exam":
        return {"prepregnancy_exam": pb.PrepregnancyExam(
            at_risk=r["at_risk"], risk_factors=r["risk_factors"], hiv=r.get("hiv") or "not_done",
            syphilis=r.get("syphilis") or "not_done", hbsag=r.get("hbsag") or "not_done")}
    if t == "prenatal_serum":
        return {"prenatal_serum": pb.PrenatalSerum(t21_risk_n=ratio_n(r["t21_risk"], "t21_risk"),
                                                   t18_risk_n=ratio_n(r["t18_risk"], "t18_risk"),
                                                   ntd_risk=r["ntd_risk"])}
    if t == "cfdna":
        return {"cfdna": pb.CellFreeDna(result=r["result"])}
    if t == "maternal_infection_test":
        return {"maternal_infection_test": pb.MaternalInfectionTest(
            infection=r["infection"], timing=r["timing"], result=r["result"])}
    if t == "hbig":
        return {"hbig": pb.Hbig(hours_after_birth=r["hours_after_birth"])}
    if t == "hepb_vaccine":
        return {"hepb_vaccine": pb.HepbVaccine(dose=r["dose"], hours_after_birth=r["hours_after_birth"])}
    if t == "exposed_infant":
        return {"exposed_infant": pb.ExposedInfantCare(infection=r["infection"], test_result=r["test_result"],
                                                       prophylaxis=r["prophylaxis"])}
    if t == "newborn_metabolic":
        return {"newborn_metabolic": pb.NewbornMetabolic(conditions=r["conditions"])}
    if t == "newborn_hearing":
        return {"newborn_hearing": pb.NewbornHearing(round=r["round"], result=r["result"])}
    if t == "cervical":
        return {"cervical": pb.Cervical(method=r["method"], result=r["result"])}
    if t == "breast":
        return {"breast": pb.Breast(method=r["method"], birads=r["birads"])}
    if t == "thalassaemia":
        return {"thalassaemia": pb.Thalassaemia(result=r["result"])}
    if t == "nutrition_pack":
        return {"nutrition_pack": pb.NutritionPack(packs=r["packs"])}
    raise ValueError(f"no event member for screening type {t}")


def screening_recorded(row: dict[str, Any]) -> NewEvent:
    """`row` is the stored result (the whole current state, voided or not)."""
    msg = pb.ScreeningRecorded(
        screening_key=f"{row['source']}/{row['screening_id']}", source=row["source"],
        screening_id=row["screening_id"], version=row["version"], voided=row["voided"], type=row["type"],
        subject_id=row["subject_id"], person_id=row["person_id"], pregnancy_id=row.get("pregnancy_id") or "",
        partner_id=row.get("partner_id") or "", performed_on=row["performed_on"].isoformat(),
        institution_code=row["institution_code"], institution_region=row["institution_region"],
        residence_code=row["residence_code"], classification=row["classification"],
        rule_version=row["rule_version"], followup_case_id=row.get("case_id") or "",
        **_detail(row["type"], row["result"]))
    return NewEvent(SCREENING_RECORDED, msg, subject_key=row["subject_key"], region_code=row["residence_code"],
                    occurred_at=row["performed_on"])


def followup_changed(case: Case) -> NewEvent:
    msg = pb.FollowupCaseChanged(
        case_id=case.case_id, screening_key=case.screening_key, screening_type=case.screening_type,
        reason=case.reason, person_id=case.person_id, pregnancy_id=case.pregnancy_id or "",
        region_code=case.region_code, opened_on=case.opened_on.isoformat(), due_on=case.due_on.isoformat(),
        status=case.status, closed_on=case.closed_on.isoformat() if case.closed_on else "",
        outcome=case.outcome or "", closed_reason=case.closed_reason or "",
        actions=[pb.FollowupAction(action=a.action, on=a.on.isoformat(), outcome=a.outcome or "")
                 for a in case.actions],
        version=case.version, institution_code=case.institution_code)
    return NewEvent(FOLLOWUP_CHANGED, msg, subject_key=case.subject_key, region_code=case.region_code,
                    occurred_at=case.closed_on or (case.actions[-1].on if case.actions else case.opened_on))
