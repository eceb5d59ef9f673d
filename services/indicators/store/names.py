"""Names of regions and institutions for the report tables (names, not codes)."""
from __future__ import annotations

from collections.abc import Iterable

from kit.db import raw
from sqlalchemy.ext.asyncio import AsyncConnection


async def region_names(conn: AsyncConnection, codes: Iterable[str]) -> dict[str, str]:
    c = await raw(conn)
    rows = await c.fetch("select code, name from region_name where code = any($1::text[])", list(codes))
    return {r["code"]: r["name"] for r in rows}


async def put_region(conn: AsyncConnection, code: str, name: str, kind: str, by: str) -> None:
    c = await raw(conn)
    await c.execute("insert into region_name (code, name, kind, updated_by) values ($1, $2, $3, $4) "
                    "on conflict (code) do update set name = excluded.name, kind = excluded.kind, "
                    "updated_by = excluded.updated_by, updated_at = now()", code, name, kind, by)


async def institutions_in(conn: AsyncConnection, region: str) -> dict[str, str]:
    """Institution code → name of the institutions registered under a region (from the registry's events)."""
    c = await raw(conn)
    rows = await c.fetch("select substr(record_key, 13) as code, body->>'name' as name from fact "
                         "where record_key like 'institution:%' and body->>'region_code' like $1 order by 1",
                         region + "%")
    return {r["code"]: r["name"] or r["code"] for r in rows}


async def named_children(conn: AsyncConnection, region: str, length: int) -> dict[str, str]:
    """The named regions one level below (townships of a county, counties and functional areas of a city)."""
    c = await raw(conn)
    rows = await c.fetch("select code, name from region_name where code like $1 and length(code) = $2",
                         region + "%", length)
    return {r["code"]: r["name"] for r in rows}


async def institution_region(conn: AsyncConnection, code: str) -> str | None:
    """The region of an institution as the registry last published it (None: unknown)."""
    c = await raw(conn)
    return await c.fetchval("select body->>'region_code' from fact where record_key = $1", "institution:" + code)
