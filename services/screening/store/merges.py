"""Screening's view of the registry's person merges (table person_merge, migration s0003_h5)."""
from __future__ import annotations

from typing import Any

from kit.db import raw, to_json
from sqlalchemy.ext.asyncio import AsyncConnection

from screening.domain.followup import Case
from screening.store.sql import _load_cases


async def save_merge(conn: AsyncConnection, merge_id: str, survivor: str, duplicate: str,
                     pregnancies: list[tuple[str, str]], version: int, unmerged: bool) -> bool:
    """Keep the newest version of a merge; False when this version (or a newer one) is already kept."""
    c = await raw(conn)
    r = await c.fetchval(
        "insert into person_merge (merge_id, survivor_id, duplicate_id, pregnancies, version, unmerged) "
        "values ($1, $2, $3, $4::jsonb, $5, $6) on conflict (merge_id) do update set version = excluded.version, "
        "unmerged = excluded.unmerged where person_merge.version < excluded.version returning merge_id",
        merge_id, survivor, duplicate, to_json([list(p) for p in pregnancies]), version, unmerged)
    return r is not None


async def repoint_cases(conn: AsyncConnection, survivor: str, duplicate: str, unmerged: bool) -> list[Case]:
    """The duplicate's cases become the survivor's (merged_from keeps whose they were); unmerged, they are given
    back. Returns the cases changed (a new version each)."""
    c = await raw(conn)
    if unmerged:
        rows = await c.fetch("update followup_case set person_id = merged_from, merged_from = null, "
                             "version = version + 1, updated_at = now() where merged_from = $1 and person_id = $2 "
                             "returning *", duplicate, survivor)
    else:
        rows = await c.fetch("update followup_case set person_id = $2, merged_from = person_id, "
                             "version = version + 1, updated_at = now() where person_id = $1 returning *",
                             duplicate, survivor)
    return await _load_cases(c, list(rows))


async def pregnancy_survivor(conn: AsyncConnection, pregnancy_id: str) -> str | None:
    """The pregnancy this registration is read as (an active merge says it is the same episode), if any."""
    c = await raw(conn)
    return await c.fetchval(  # type: ignore[no-any-return]
        "select p ->> 1 from person_merge m, jsonb_array_elements(m.pregnancies) p "
        "where not m.unmerged and p ->> 0 = $1 limit 1", pregnancy_id)


async def pregnancy_duplicates(conn: AsyncConnection, pregnancy_id: str) -> list[str]:
    c = await raw(conn)
    rows: list[Any] = await c.fetch(
        "select p ->> 0 as d from person_merge m, jsonb_array_elements(m.pregnancies) p "
        "where not m.unmerged and p ->> 1 = $1 order by 1", pregnancy_id)
    return [r["d"] for r in rows]
