"""Reading the events quality keeps a view of: the registry's (institutions, persons, pregnancies,
encounters), the certificates' (certificate changed) and screening's (results, follow-up cases). One registry of
the event types, here; each event becomes a plain record of quality.domain.records."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from kit.clock import CHINA
from kit.events import payload
from mch.events.v1 import certificates_pb2 as cpb
from mch.events.v1 import registry_pb2 as rpb
from mch.events.v1 import screening_pb2 as spb
from mch.events.v1.envelope_pb2 import Envelope

from quality.domain.records import Baby, Certificate, Encounter, FollowupCase, Person, Pregnancy

INSTITUTION_UPSERTED = "registry.institution.upserted"
PERSON_UPSERTED = "registry.person.upserted"
PREGNANCY_RECORDED = "registry.pregnancy.recorded"
ENCOUNTER_RECORDED = "registry.encounter.recorded"
CERTIFICATE_CHANGED = "certificates.certificate.changed"
SCREENING_RECORDED = "screening.result.recorded"
FOLLOWUP_CHANGED = "screening.followup.changed"

MESSAGES: dict[str, type[Any]] = {
    INSTITUTION_UPSERTED: rpb.InstitutionUpserted,
    PERSON_UPSERTED: rpb.PersonUpserted,
    PREGNANCY_RECORDED: rpb.PregnancyRecorded,
    ENCOUNTER_RECORDED: rpb.EncounterRecorded,
    CERTIFICATE_CHANGED: cpb.CertificateChanged,
    SCREENING_RECORDED: spb.ScreeningRecorded,
    FOLLOWUP_CHANGED: spb.FollowupCaseChanged,
}
#: the services whose topics quality reads
SOURCES = ("registry", "certificates", "screening")


@dataclass(frozen=True)
class Institution:
    code: str
    name: str
    region_code: str


@dataclass(frozen=True)
class Screening:
    key: str
    type: str
    hiv_test: bool
    performed_on: date
    institution_code: str
    voided: bool


@dataclass(frozen=True)
class Read:
    """One event as quality keeps it: the record, its version and the day it was posted (China time)."""

    record: Any
    version: int
    posted_on: date | None


def _d(s: str) -> date:
    return date.fromisoformat(s)


def _posted(env: Envelope) -> date | None:
    if not env.recorded_at.seconds:
        return None
    return datetime.fromtimestamp(env.recorded_at.seconds, CHINA).date()


def _encounter(m: Any) -> Encounter:
    detail = m.WhichOneof("detail")
    kw: dict[str, Any] = {}
    if detail == "delivery":
        d = m.delivery
        kw = {"gestational_days": d.gestational_days, "mode": d.mode,
              "babies": tuple(Baby(b.birth_weight_g, b.outcome, b.child_id, b.sex) for b in d.babies)}
    elif detail == "child_check":
        c = m.child_check
        kw = {"is_newborn_visit": c.is_newborn_visit,
              "z": {k: v for k, v in (("weight_for_age_z", c.weight_for_age_z),
                                      ("height_for_age_z", c.height_for_age_z),
                                      ("weight_for_height_z", c.weight_for_height_z)) if not math.isnan(v)}}
    # the kind of record by its detail: newborn_visit and child_health_check are both a child_check,
    # postpartum_visit and postpartum_42d_check both a postpartum_visit
    return Encounter(m.encounter_key, detail or m.type, _d(m.occurred_on), m.institution_code, m.pregnancy_id,
                     m.person_id, m.voided, **kw)


def to_record(t: str, m: Any) -> tuple[Any, int]:
    """The plain record of one event message and its version."""
    if t == INSTITUTION_UPSERTED:
        return Institution(m.institution_code, m.name, m.region_code), m.version
    if t == PERSON_UPSERTED:
        return Person(m.person_id, _d(m.birth_date), m.born_in_pregnancy_id), m.version
    if t == PREGNANCY_RECORDED:
        return Pregnancy(m.pregnancy_id, m.mother_id, _d(m.lmp_date), _d(m.registered_on), m.institution_code,
                         m.voided), m.version
    if t == ENCOUNTER_RECORDED:
        return _encounter(m), m.version
    if t == CERTIFICATE_CHANGED:
        return Certificate(m.serial, m.child_id, m.kind, m.status, m.institution_code), m.version
    if t == SCREENING_RECORDED:
        hiv = m.WhichOneof("result") == "maternal_infection_test" and m.maternal_infection_test.infection == "hiv"
        return Screening(m.screening_key, m.type, hiv, _d(m.performed_on), m.institution_code, m.voided), m.version
    assert t == FOLLOWUP_CHANGED
    return FollowupCase(m.case_id, m.screening_type, m.status, _d(m.due_on), m.institution_code), m.version


def parse(env: Envelope) -> Read | None:
    """The record an event carries; None for the events quality does not keep."""
    cls = MESSAGES.get(env.type)
    if cls is None:
        return None
    record, version = to_record(env.type, payload(env, cls))
    return Read(record, version, _posted(env))
