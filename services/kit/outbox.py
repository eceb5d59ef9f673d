"""Transactional outbox: a state change and its events commit in one Postgres transaction.

The relay (kit.relay) publishes unpublished rows in id order and marks what the broker acknowledged.
Rows are selected by a `published_at is null` flag, never by an id cursor: sequence values can commit out
of order, and a cursor would skip a row that committed late. Causally ordered writes of one subject get
increasing ids (the later transaction starts after the earlier committed), so id order keeps their order.
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from kit.db import raw
from kit.events import NewEvent, envelope
from kit.logs import request_id
from kit.settings import get_settings


async def append(conn: AsyncConnection, events: Sequence[NewEvent], service: str | None = None) -> list[uuid.UUID]:
    """Write `events` to the outbox inside the caller's transaction; returns their event ids."""
    if not events:
        return []
    settings = get_settings()
    svc = service or settings.service
    topic = settings.topic(svc)
    rid = request_id.get()
    rows = []
    ids = []
    for ev in events:
        eid = uuid.uuid4()
        ids.append(eid)
        env = envelope(ev, svc, rid, eid)
        rows.append((eid, topic, ev.subject_key, ev.type, env.SerializeToString()))
    c = await raw(conn)
    await c.executemany(
        "insert into outbox (event_id, topic, key, event_type, envelope) values ($1, $2, $3, $4, $5)", rows)
    return ids
