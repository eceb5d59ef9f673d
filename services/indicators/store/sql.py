"""Indicator state in Postgres: facts, units, links, counters."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from kit.db import from_json, raw, to_json
from sqlalchemy.ext.asyncio import AsyncConnection

from indicators.domain.facts import Fact

CounterKey = tuple[str, str, str, str, str]  # period, region, institution, code, part


async def _c(conn: AsyncConnection) -> Any:
    """The raw asyncpg connection (JSON travels as text: kit.db.to_json / from_json)."""
    return await raw(conn)


ENGINE_LOCK = 0x1D1C_A7E5  # pg advisory lock key of the indicator engine


async def lock_engine(conn: AsyncConnection) -> None:
    """Take the engine lock for the transaction. Through SQLAlchemy, not the raw connection: the asyncpg
    transaction under `db.begin()` starts with the first SQLAlchemy statement, and a raw statement before it
    would run (and release its xact lock) in autocommit."""
    await conn.exec_driver_sql(f"select pg_advisory_xact_lock({ENGINE_LOCK})")
    assert (await _c(conn)).is_in_transaction()


async def upsert_facts(conn: AsyncConnection, facts: Sequence[Fact]) -> set[str]:
    """Store facts that are newer than what is stored; returns the subjects whose facts changed."""
    if not facts:
        return set()
    c = await _c(conn)
    rows = await c.fetch(
        "insert into fact (record_key, subject_key, version, voided, body) "
        "select k, s, v, x, b::jsonb from unnest($1::text[], $2::text[], $3::int[], $4::bool[], $5::text[]) "
        "as u(k, s, v, x, b) "
        "on conflict (record_key) do update set subject_key = excluded.subject_key, version = excluded.version, "
        "voided = excluded.voided, body = excluded.body, updated_at = now() "
        "where fact.version < excluded.version returning subject_key",
        [f.record_key for f in facts], [f.subject_key for f in facts], [f.version for f in facts],
        [f.voided for f in facts], [to_json(f.body) for f in facts])
    return {r["subject_key"] for r in rows}


async def facts_of(conn: AsyncConnection, subjects: Iterable[str]) -> list[Fact]:
    c = await _c(conn)
    rows = await c.fetch("select record_key, subject_key, version, voided, body from fact "
                         "where subject_key = any($1::text[])", list(subjects))
    return [Fact(r["record_key"], r["subject_key"], r["version"], r["voided"], from_json(r["body"])) for r in rows]


async def units_linked_to(conn: AsyncConnection, subjects: Iterable[str]) -> set[str]:
    c = await raw(conn)
    rows = await c.fetch("select unit_key from unit_link where subject_key = any($1::text[])", list(subjects))
    return {r["unit_key"] for r in rows}


async def load_units(conn: AsyncConnection, keys: Iterable[str]) -> dict[str, tuple[list[list[str]], list[str]]]:
    c = await _c(conn)
    rows = await c.fetch("select unit_key, contributions, deps from unit where unit_key = any($1::text[])",
                         list(keys))
    return {r["unit_key"]: (from_json(r["contributions"]), list(r["deps"])) for r in rows}


async def save_units(conn: AsyncConnection, units: Sequence[tuple[str, list[Any], list[str]]], digest: str) -> None:
    if not units:
        return
    c = await _c(conn)
    await c.execute(
        "insert into unit (unit_key, contributions, deps, catalogue_digest) "
        "select k, c::jsonb, array(select jsonb_array_elements_text(d::jsonb)), $4 "
        "from unnest($1::text[], $2::text[], $3::text[]) as u(k, c, d) "
        "on conflict (unit_key) do update set contributions = excluded.contributions, deps = excluded.deps, "
        "catalogue_digest = excluded.catalogue_digest, updated_at = now()",
        [u[0] for u in units], [to_json(u[1]) for u in units],
        [to_json(u[2]) for u in units], digest)


async def relink(conn: AsyncConnection, changes: Sequence[tuple[str, list[str], list[str]]]) -> None:
    """(unit, old deps, new deps): keep unit_link equal to every unit's dependencies."""
    c = await raw(conn)
    drop = [(d, u) for u, old, new in changes for d in set(old) - set(new)]
    add = [(d, u) for u, old, new in changes for d in set(new) - set(old)]
    if drop:
        await c.execute("delete from unit_link l using unnest($1::text[], $2::text[]) as x(s, u) "
                        "where l.subject_key = x.s and l.unit_key = x.u", [d for d, _ in drop], [u for _, u in drop])
    if add:
        await c.execute("insert into unit_link select * from unnest($1::text[], $2::text[]) on conflict do nothing",
                        [d for d, _ in add], [u for _, u in add])


#: above this many counter deltas, COPY them (binary) into a temporary table and upsert from it in one
#: statement; below, one unnest statement is cheaper than the temporary table
COPY_THRESHOLD = 5000


async def apply_counter_deltas(conn: AsyncConnection, deltas: dict[CounterKey, int]) -> None:
    c = await raw(conn)
    if len(deltas) >= COPY_THRESHOLD:  # the upsert reads them sorted: concurrent appliers never deadlock
        await _delta_table(c)
        await c.copy_records_to_table("counter_delta", records=[(*k, v) for k, v in deltas.items() if v])
        await c.execute(
            "insert into counter (period, region, institution, code, part, n) "
            "select period, region, institution, code, part, n from counter_delta "
            "order by period, region, institution, code, part "
            "on conflict (period, region, institution, code, part) do update set n = counter.n + excluded.n")
        await c.execute("truncate counter_delta")
        return
    items = sorted((k, v) for k, v in deltas.items() if v)  # sorted: concurrent appliers never deadlock
    if not items:
        return
    await c.execute(
        "insert into counter (period, region, institution, code, part, n) "
        "select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[]) "
        "on conflict (period, region, institution, code, part) do update set n = counter.n + excluded.n",
        *[[k[i] for k, _ in items] for i in range(5)], [v for _, v in items])


async def _delta_table(c: Any) -> None:
    await c.execute("create temporary table if not exists counter_delta "
                    "(period text, region text, institution text, code text, part char(1), n bigint) "
                    "on commit delete rows")


async def read_counters(conn: AsyncConnection, periods: Sequence[str], region: str | None, region_len: int | None,
                        by_institution: bool, codes: Sequence[str]) -> list[Any]:
    """Counters of `codes` for the periods; either one region (exact) or all regions of a length under it."""
    c = await raw(conn)
    inst_clause = "institution <> ''" if by_institution else "institution = ''"
    if region_len is None:
        return list(await c.fetch(
            f"select period, region, institution, code, part, n from counter where period = any($1::text[]) "
            f"and region = $2 and {inst_clause} and code = any($3::text[])", list(periods), region, list(codes)))
    return list(await c.fetch(
        f"select period, region, institution, code, part, n from counter where period = any($1::text[]) "
        f"and region like $2 and length(region) = $3 and {inst_clause} and code = any($4::text[])",
        list(periods), (region or "") + "%", region_len, list(codes)))


async def all_units(conn: AsyncConnection) -> list[str]:
    c = await raw(conn)
    return [r["unit_key"] for r in await c.fetch("select unit_key from unit")]


async def stale_units(conn: AsyncConnection, digest: str) -> list[str]:
    c = await raw(conn)
    return [r["unit_key"] for r in await c.fetch("select unit_key from unit where catalogue_digest <> $1", digest)]


async def candidate_units(conn: AsyncConnection) -> list[str]:
    """Every subject that could be a unit (for rebuilds and back-fills)."""
    c = await raw(conn)
    rows = await c.fetch("select distinct subject_key from fact union select unit_key from unit")
    return [r["subject_key"] for r in rows]


async def all_counters(conn: AsyncConnection) -> dict[CounterKey, int]:
    c = await raw(conn)
    rows = await c.fetch("select period, region, institution, code, part, n from counter where n <> 0")
    return {(r["period"], r["region"], r["institution"], r["code"], r["part"]): r["n"] for r in rows}


async def replace_counters(conn: AsyncConnection, counters: dict[CounterKey, int]) -> None:
    c = await raw(conn)
    await c.execute("delete from counter")
    await apply_counter_deltas(conn, counters)


async def put_target(conn: AsyncConnection, code: str, region: str, year: int, target: int, by: str) -> None:
    c = await raw(conn)
    await c.execute("insert into target (code, region, year, target, set_by) values ($1, $2, $3, $4, $5) "
                    "on conflict (code, region, year) do update set target = excluded.target, "
                    "set_by = excluded.set_by, updated_at = now()", code, region, year, target, by)


async def read_targets(conn: AsyncConnection, codes: Sequence[str], regions: Iterable[str],
                       year: int) -> dict[tuple[str, str], int]:
    c = await raw(conn)
    rows = await c.fetch("select code, region, target from target where code = any($1::text[]) "
                         "and region = any($2::text[]) and year = $3", list(codes), list(regions), year)
    return {(r["code"], r["region"]): int(r["target"]) for r in rows}
