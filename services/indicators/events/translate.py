"""Envelope → Fact: what each consumed event says about the current state of one source record."""
from __future__ import annotations

from google.protobuf.json_format import MessageToDict
from kit.events import payload
from mch.events.v1 import registry_pb2 as reg
from mch.events.v1.envelope_pb2 import Envelope

from indicators.domain.facts import Fact


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
        subject = f"pregnancy:{e.pregnancy_id}" if e.pregnancy_id else f"person:{e.person_id}"
        return Fact(f"encounter:{e.encounter_key}", subject, e.version, e.voided, _dict(e))
    if t == "registry.person.upserted":
        p2 = payload(env, reg.PersonUpserted)
        key = f"person:{p2.person_id}"
        return Fact(key, key, p2.version, False, _dict(p2))
    if t == "registry.institution.upserted":
        i = payload(env, reg.InstitutionUpserted)
        key = f"institution:{i.institution_code}"
        return Fact(key, key, i.version, False, _dict(i))
    return None
