"""Reading the registry's events: the facts a first issue needs (the child, its live birth, the institutions)."""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from kit.consumer import Consumed
from kit.events import payload
from kit.settings import get_settings
from mch.events.v1 import registry_pb2 as pb
from sqlalchemy.ext.asyncio import AsyncConnection

from certificates.store import sql

INSTITUTION_UPSERTED = "registry.institution.upserted"
PERSON_UPSERTED = "registry.person.upserted"
ENCOUNTER_RECORDED = "registry.encounter.recorded"
PERSON_MERGED = "registry.person.merged"


class RegistryFacts:
    """Keeps children (birth date, mother), where each was born, and institutions. Events are state: the
    highest version wins, so the order they arrive in does not matter."""

    name = "certificates"

    def __init__(self) -> None:
        self.topics: Sequence[str] = [get_settings().topic("registry")]

    async def apply(self, conn: AsyncConnection, events: Sequence[Consumed]) -> None:
        db = await sql.c(conn)
        for ev in events:
            env = ev.envelope
            if env.type == INSTITUTION_UPSERTED:
                i = payload(env, pb.InstitutionUpserted)
                await sql.upsert_institution(db, i.institution_code, i.region_code, i.kind, i.version)
            elif env.type == PERSON_UPSERTED:
                p = payload(env, pb.PersonUpserted)
                if p.mother_id or p.born_in_pregnancy_id:  # children born in the registry
                    await sql.upsert_child(db, p.person_id, date.fromisoformat(p.birth_date), p.sex, p.mother_id,
                                           p.born_in_pregnancy_id, p.version)
            elif env.type == PERSON_MERGED:  # a child's certificates follow the child (合并)
                m = payload(env, pb.PersonMerged)
                await sql.save_merge(db, m.merge_id, m.survivor_id, m.duplicate_id, m.version, m.unmerged)
            elif env.type == ENCOUNTER_RECORDED:
                e = payload(env, pb.EncounterRecorded)
                if e.type != "delivery":
                    continue
                born_on = date.fromisoformat(e.occurred_on)
                kids = [uuid.UUID(b.child_id) for b in e.delivery.babies if b.child_id and b.outcome == "live"]
                if kids:
                    await sql.upsert_birth(db, [(k, e.encounter_key, e.version, e.voided, e.institution_code,
                                                 e.delivery.place, born_on) for k in kids])
                await sql.retract_births(db, e.encounter_key, e.version, [] if e.voided else kids)
