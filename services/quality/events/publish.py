"""Turning quality's score parts into events (proto/mch/events/v1/quality.proto). One registry of the event types
quality publishes, here."""
from __future__ import annotations

from typing import Any

from kit.events import NewEvent
from mch.events.v1 import quality_pb2 as pb

SCORE_PARTS_CHANGED = "quality.score_parts.changed"


def score_parts_changed(institution: str, month: str, parts: dict[str, Any], timeliness_days: int,
                        version: int) -> NewEvent:
    """The counts behind one institution's scores for one month; the subject is the pair, so a consumer keeps the
    highest version of each."""
    return NewEvent(SCORE_PARTS_CHANGED, pb.ScorePartsChanged(
        institution_code=institution, institution_region=parts["region_code"], month=month,
        records=parts["records"], timely=parts["timely"], followups_expected=parts["newborn_visits_expected"],
        followups_present=parts["newborn_visits_present"], open_queries=parts["open_queries"],
        timeliness_days=timeliness_days, version=version),
        subject_key=f"quality-score:{institution}:{month}", region_code=parts["region_code"],
        occurred_at=None)
