"""Reading the registry's events (proto/mch/events/v1/registry.proto) that screening keeps a view of."""
from __future__ import annotations

from typing import Any

from kit.events import payload
from mch.events.v1 import registry_pb2 as pb
from mch.events.v1.envelope_pb2 import Envelope

INSTITUTION_UPSERTED = "registry.institution.upserted"
PERSON_UPSERTED = "registry.person.upserted"
PREGNANCY_RECORDED = "registry.pregnancy.recorded"
ENCOUNTER_RECORDED = "registry.encounter.recorded"
PERSON_MERGED = "registry.person.merged"

MESSAGES: dict[str, type[Any]] = {
    INSTITUTION_UPSERTED: pb.InstitutionUpserted,
    PERSON_UPSERTED: pb.PersonUpserted,
    PREGNANCY_RECORDED: pb.PregnancyRecorded,
    ENCOUNTER_RECORDED: pb.EncounterRecorded,
    PERSON_MERGED: pb.PersonMerged,
}


def parse(env: Envelope) -> tuple[str, Any] | None:
    """(type, message) for the events screening keeps; None for the others."""
    cls = MESSAGES.get(env.type)
    return (env.type, payload(env, cls)) if cls is not None else None
