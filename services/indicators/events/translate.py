"""Envelope → Fact: what each consumed event says about the current state of one source record, filed under
the subject (unit) whose indicators it affects."""
from __future__ import annotations

from google.protobuf.json_format import MessageToDict
from kit.events import payload
from mch.events.v1 import registry_pb2 as reg
from mch.events.v1.envelope_pb2 import Envelope

from indicators.domain.facts import Fact
from indicators.domain.units import PREGNANCY_ENCOUNTERS


def _dict(msg: object) -> dict[str, object]:
    return MessageToDict(msg, preserving_proto_field_name=True,  # type: ignore[arg-type]
                         always_print_fields_with_no_presence=True)


def to_fact(env: Envelope) -> Fact | None:
    t = env.type
    if t == "registry.pregnancy.recorded":
        p = payload(env, reg.PregnancyRecorded)
        key = f"pregnancy:{p.pregnancy_id}"
        return Fact(key, key, p.version, p.voided, _dict(p))
    if t == "registry.encounter.recorded":
        e = payload(env, reg.EncounterRecorded)
        # care of the pregnancy belongs to the episode; everything else (child checks, deaths, folic acid) to
        # the person it is about
        if e.type in PREGNANCY_ENCOUNTERS and e.pregnancy_id:
            subject = f"pregnancy:{e.pregnancy_id}"
        else:
            detail = e.WhichOneof("detail")
            named = getattr(e, detail).person_id if detail in ("death", "folic_acid") else ""
            subject = f"person:{named or e.person_id or e.subject_id}"
        return Fact(f"encounter:{e.encounter_key}", subject, e.version, e.voided, _dict(e))
    if t == "registry.person.upserted":
        p2 = payload(env, reg.PersonUpserted)
        key = f"person:{p2.person_id}"
        return Fact(key, key, p2.version, False, _dict(p2))
    if t == "registry.marriage.recorded":
        m = payload(env, reg.MarriageRecorded)
        key = f"marriage:{m.registration_key}"
        return Fact(key, key, m.version, m.voided, _dict(m))
    if t == "registry.institution.upserted":
        i = payload(env, reg.InstitutionUpserted)
        key = f"institution:{i.institution_code}"
        return Fact(key, key, i.version, False, _dict(i))
    return None
