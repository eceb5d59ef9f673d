"""Merged subjects in Postgres (table subject_alias, migration i0008_h5): kept equal to the active merge facts in
the engine's transaction, read when units are computed."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from kit.db import from_json, raw
from sqlalchemy.ext.asyncio import AsyncConnection

from indicators.domain import merges
from indicators.domain.facts import Fact


async def canonical(conn: AsyncConnection, subjects: Iterable[str]) -> dict[str, str]:
    """subject → the subject it is read as, for the given subjects that are merged away."""
    keys = list(subjects)
    if not keys:
        return {}
    c = await raw(conn)
    rows = await c.fetch("select subject_key, canonical_key from subject_alias where subject_key = any($1::text[])",
                         keys)
    return {r["subject_key"]: r["canonical_key"] for r in rows}


async def related(conn: AsyncConnection, subjects: Iterable[str]) -> dict[str, str]:
    """subject → canonical, for the given subjects merged away and every subject merged into one of them (one
    round trip: merges are one level deep, so a subject is either merged away or canonical)."""
    keys = list(subjects)
    if not keys:
        return {}
    c = await raw(conn)
    rows = await c.fetch("select subject_key, canonical_key from subject_alias "
                         "where subject_key = any($1::text[]) or canonical_key = any($1::text[])", keys)
    return {r["subject_key"]: r["canonical_key"] for r in rows}


async def members(conn: AsyncConnection, canonicals: Iterable[str]) -> dict[str, str]:
    """subject → canonical, for every subject read as one of `canonicals`."""
    keys = list(canonicals)
    if not keys:
        return {}
    c = await raw(conn)
    rows = await c.fetch("select subject_key, canonical_key from subject_alias where canonical_key = any($1::text[])",
                         keys)
    return {r["subject_key"]: r["canonical_key"] for r in rows}


async def realias(conn: AsyncConnection, merge_keys: Sequence[str]) -> set[str]:
    """Make the aliases of these merge facts what their stored (newest) versions say; returns every subject whose
    reading changed and the subjects it was or is read as (the units to recompute)."""
    if not merge_keys:
        return set()
    c = await raw(conn)
    old = await c.fetch("delete from subject_alias where merge_key = any($1::text[]) "
                        "returning subject_key, canonical_key", list(merge_keys))
    rows = await c.fetch("select record_key, subject_key, version, voided, body from fact "
                         "where record_key = any($1::text[])", list(merge_keys))
    new = [(s, k, r["record_key"]) for r in rows
           for s, k in merges.aliases(Fact(r["record_key"], r["subject_key"], r["version"], r["voided"],
                                           from_json(r["body"])))]
    if new:
        await c.execute("insert into subject_alias (subject_key, canonical_key, merge_key) "
                        "select * from unnest($1::text[], $2::text[], $3::text[]) on conflict (subject_key) do update "
                        "set canonical_key = excluded.canonical_key, merge_key = excluded.merge_key",
                        [n[0] for n in new], [n[1] for n in new], [n[2] for n in new])
    return {x for r in old for x in (r["subject_key"], r["canonical_key"])} | {x for n in new for x in n[:2]}


async def rederive(conn: AsyncConnection) -> None:
    """Rebuild: the aliases again from every stored merge fact."""
    c = await raw(conn)
    await c.execute("delete from subject_alias")
    rows = await c.fetch("select record_key from fact where record_key like $1", merges.PREFIX + "%")
    keys = [r["record_key"] for r in rows]
    await realias(conn, keys)
