"""Building and reading event envelopes (proto/mch/events/v1/envelope.proto)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TypeVar

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from mch.events.v1.envelope_pb2 import Envelope

M = TypeVar("M", bound=Message)
CN_TZ_OFFSET_H = 8


@dataclass(frozen=True)
class NewEvent:
    """An event a service is about to publish (written to its outbox in the same transaction)."""

    type: str
    payload: Message
    subject_key: str
    region_code: str = ""
    occurred_at: datetime | date | None = None
    schema_version: int = 1


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ts(dt: datetime) -> Timestamp:
    """Timestamp of `dt` (naive = UTC); what Timestamp.FromDatetime gives, without its per-call cost."""
    d = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)) - _EPOCH
    return Timestamp(seconds=d.days * 86400 + d.seconds, nanos=d.microseconds * 1000)


def envelope(ev: NewEvent, service: str, request_id: str = "", event_id: uuid.UUID | None = None,
             now: datetime | None = None, actor: str = "") -> Envelope:
    """`now` (the recording time) may be given once for the events of one unit of work."""
    now = now or datetime.now(UTC)
    occurred = ev.occurred_at
    if isinstance(occurred, date) and not isinstance(occurred, datetime):
        occurred = datetime.combine(occurred, time(0, 0), tzinfo=UTC)
    return Envelope(
        event_id=str(event_id or uuid.uuid4()),
        type=ev.type,
        schema_version=ev.schema_version,
        occurred_at=_ts(occurred or now),
        recorded_at=_ts(now),
        source_service=service,
        subject_key=ev.subject_key,
        region_code=ev.region_code,
        payload=ev.payload.SerializeToString(),
        request_id=request_id,
        actor=actor,
    )


def parse(data: bytes) -> Envelope:
    env = Envelope()
    env.ParseFromString(data)
    return env


def payload(env: Envelope, cls: type[M]) -> M:
    msg = cls()
    msg.ParseFromString(env.payload)
    return msg
