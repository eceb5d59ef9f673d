"""Person merges in Postgres (table person_merge, migration r0005_h5)."""
from __future__ import annotations

import uuid
from typing import Any

from kit.db import from_json, raw, to_json
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.domain.model import Pregnancy
from registry.store.sql import _pregnancy


def _uuid(person_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(person_id)
    except ValueError:
        return None


async def lock_persons(conn: AsyncConnection, ids: list[str]) -> dict[str, Any]:
    """The person rows, locked in id order (two merges of the same records serialise, never deadlock)."""
    keys = sorted({u for u in (_uuid(i) for i in ids) if u is not None})
    c = await raw(conn)
    rows = await c.fetch("select * from person where person_id = any($1::uuid[]) order by person_id for update",
                         keys)
    return {str(r["person_id"]): r for r in rows}


async def pregnancies_of(conn: AsyncConnection, mother_id: str) -> list[Pregnancy]:
    c = await raw(conn)
    rows = await c.fetch("select * from pregnancy where mother_id = $1 order by lmp_date, pregnancy_id",
                         uuid.UUID(mother_id))
    return [_pregnancy(r) for r in rows]


async def active_as_duplicate(conn: AsyncConnection, person_id: str, lock: bool = True) -> Any:
    """The merge that makes this record a duplicate now, if any."""
    u = _uuid(person_id)
    if u is None:
        return None
    c = await raw(conn)
    return await c.fetchrow("select * from person_merge where duplicate_id = $1 and unmerged_at is null"
                            + (" for update" if lock else ""), u)


async def active_duplicates(conn: AsyncConnection, survivor_id: str) -> list[str]:
    u = _uuid(survivor_id)
    if u is None:
        return []
    c = await raw(conn)
    rows = await c.fetch("select duplicate_id from person_merge where survivor_id = $1 and unmerged_at is null "
                         "order by merged_at, duplicate_id", u)
    return [str(r["duplicate_id"]) for r in rows]


async def insert_merge(conn: AsyncConnection, survivor_id: str, duplicate_id: str,
                       pregnancies: list[tuple[str, str]], reason: str, actor: str) -> dict[str, Any]:
    c = await raw(conn)
    r = await c.fetchrow(
        "insert into person_merge (merge_id, survivor_id, duplicate_id, pregnancies, reason, merged_by) "
        "values ($1, $2, $3, $4::jsonb, $5, $6) returning *", uuid.uuid4(), uuid.UUID(survivor_id),
        uuid.UUID(duplicate_id), to_json([list(p) for p in pregnancies]), reason, actor)
    return view(r)


async def close_merge(conn: AsyncConnection, merge_id: str, reason: str, actor: str) -> dict[str, Any]:
    c = await raw(conn)
    r = await c.fetchrow("update person_merge set unmerged_at = now(), unmerged_by = $2, unmerge_reason = $3, "
                         "version = version + 1 where merge_id = $1 returning *", uuid.UUID(merge_id), actor, reason)
    return view(r)


async def history_of(conn: AsyncConnection, person_id: str) -> list[dict[str, Any]]:
    """Every merge the record took part in, as survivor or duplicate, oldest first."""
    u = _uuid(person_id)
    if u is None:
        return []
    c = await raw(conn)
    rows = await c.fetch("select * from person_merge where survivor_id = $1 or duplicate_id = $1 "
                         "order by merged_at, merge_id", u)
    return [view(r) for r in rows]


def view(r: Any) -> dict[str, Any]:
    pregs = from_json(r["pregnancies"])
    return {"merge_id": str(r["merge_id"]), "survivor_id": str(r["survivor_id"]),
            "duplicate_id": str(r["duplicate_id"]),
            "pregnancies": [{"duplicate_id": d, "survivor_id": s} for d, s in pregs],
            "version": r["version"], "status": "unmerged" if r["unmerged_at"] else "merged",
            "reason": r["reason"], "merged_by": r["merged_by"], "merged_at": r["merged_at"].isoformat(),
            "unmerge_reason": r["unmerge_reason"], "unmerged_by": r["unmerged_by"],
            "unmerged_at": r["unmerged_at"].isoformat() if r["unmerged_at"] else None}


async def pregnancy_survivor(conn: AsyncConnection, pregnancy_id: str) -> str | None:
    """The survivor's registration this pregnancy registration is one episode with, under an active merge."""
    c = await raw(conn)
    return await c.fetchval(  # type: ignore[no-any-return]
        "select p ->> 1 from person_merge m, jsonb_array_elements(m.pregnancies) p "
        "where m.unmerged_at is null and p ->> 0 = $1 limit 1", pregnancy_id)


async def pregnancy_duplicates(conn: AsyncConnection, pregnancy_id: str) -> list[str]:
    c = await raw(conn)
    rows = await c.fetch("select p ->> 0 as d from person_merge m, jsonb_array_elements(m.pregnancies) p "
                         "where m.unmerged_at is null and p ->> 1 = $1 order by 1", pregnancy_id)
    return [r["d"] for r in rows]
