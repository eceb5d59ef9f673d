"""Transactional outbox: a state change and its events commit in one Postgres transaction.

The relay (kit.relay) publishes unpublished rows in id order and marks what the broker acknowledged.
Rows are selected by a `published_at is null` flag, never by an id cursor: sequence values can commit out
of order, and a cursor would skip a row that committed late. Causally ordered writes of one subject get
increasing ids (the later transaction starts after the earlier committed), so id order keeps their order.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from kit.db import raw
from kit.events import NewEvent, envelope
from kit.logs import actor, request_id
from kit.settings import get_settings

#: the outbox rows of a unit of work as arrays (one statement, rows in the events' order)
OutboxColumns = tuple[list[uuid.UUID], str, list[str], list[str], list[bytes]]


def insert_sql(first: int = 1, where: str = "") -> str:
    """The statement writing `columns()` (its five parameters numbered from `first`): one INSERT for all the
    events, ids assigned in the events' order. A store may run it as a data-modifying CTE of its own write
    (`where`: a condition of that write, e.g. "where (select ok from chk)")."""
    ids, topic, keys, types, envs = (f"${first + i}" for i in range(5))
    return (f"insert into outbox (event_id, topic, key, event_type, envelope) select i, {topic}::text, k, t, e "
            f"from unnest({ids}::uuid[], {keys}::text[], {types}::text[], {envs}::bytea[]) with ordinality "
            f"as x(i, k, t, e, n) {where} order by n")


def columns(events: Sequence[NewEvent], service: str | None = None) -> OutboxColumns:
    """The outbox rows of `events` (new event ids, envelopes built) as the parameters of `insert_sql()`."""
    settings = get_settings()
    svc = service or settings.service
    rid, who = request_id.get(), actor.get()
    now = datetime.now(UTC)
    rnd = os.urandom(16 * len(events))  # one system call for all the ids (random version-4 UUIDs, as uuid4())
    ids = [uuid.UUID(bytes=rnd[i:i + 16], version=4) for i in range(0, len(rnd), 16)]
    envs = [envelope(ev, svc, rid, eid, now, who).SerializeToString() for ev, eid in zip(events, ids, strict=True)]
    return ids, settings.topic(svc), [ev.subject_key for ev in events], [ev.type for ev in events], envs


async def append(conn: AsyncConnection, events: Sequence[NewEvent], service: str | None = None) -> list[uuid.UUID]:
    """Write `events` to the outbox inside the caller's transaction; returns their event ids."""
    if not events:
        return []
    ids, topic, keys, types, envs = columns(events, service)
    c = await raw(conn)
    await c.executemany(
        "insert into outbox (event_id, topic, key, event_type, envelope) values ($1, $2, $3, $4, $5)",
        [(i, topic, k, t, e) for i, k, t, e in zip(ids, keys, types, envs, strict=True)])
    return ids
