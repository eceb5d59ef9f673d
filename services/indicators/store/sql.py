"""Indicator state in Postgres: facts, units, links, and the counts (`tally`, month grain; see migration i0002)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from kit.db import from_json, raw, to_json
from sqlalchemy.ext.asyncio import AsyncConnection

from indicators.domain import periods as period_keys
from indicators.domain.catalogue import by_measure
from indicators.domain.facts import Fact

CounterKey = tuple[str, str, str, str]  # stored period (month or @key), region, institution, measure


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


async def apply_contributions(conn: AsyncConnection, diff: dict[tuple[str, str, str, str], int]) -> None:
    """Add net contributions {(measure, stored period, 12-digit region, institution): weight} to the counts,
    expanded by Postgres to every region level (the 6 prefixes) × (all institutions, its institution):
    flows and per-period counts to `tally`, standing quantities (`^` months) to `standing`. Rows are upserted
    in key order, so concurrent appliers never deadlock."""
    c = await raw(conn)
    for table, cols, rows in (
            ("tally", "period, region, institution, measure",
             [(k, v) for k, v in diff.items() if v and k[1][0] != "^"]),
            ("standing", "region, institution, measure, period",
             [(k, v) for k, v in diff.items() if v and k[1][0] == "^"])):
        if not rows:
            continue
        await c.execute(
            f"insert into {table} ({cols}, n) "
            f"select {cols}, sum(n)::bigint from ("
            " select x.period, p.region, i.institution, x.measure, x.n"
            " from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])"
            " as x(measure, period, region, inst, n)"
            " cross join lateral (select distinct left(x.region, l) as region"
            "                     from unnest('{0,2,4,6,9,12}'::int[]) as l) p"
            " cross join lateral (select ''::text as institution union all"
            "                     select x.inst where x.inst <> '') i"
            f") e group by {cols} having sum(n) <> 0 order by {cols} "
            f"on conflict ({cols}) do update set n = {table}.n + excluded.n",
            [k[0] for k, _ in rows], [k[1] for k, _ in rows], [k[2] for k, _ in rows], [k[3] for k, _ in rows],
            [v for _, v in rows])


Part = tuple[str, str, str]  # indicator code, "n"|"d", measure key


async def read_counters(conn: AsyncConnection, periods: Sequence[str], parts: Sequence[Part], today: date, *,
                        region: str | None = None, region_len: int | None = None,
                        levels: Sequence[int] | None = None, by_institution: bool = False,
                        institution: str | None = None) -> list[dict[str, Any]]:
    """Counts of the indicator parts for the reporting periods — each the sum of its months' flows, its own
    `@key` counts and, when it has started by `today`, the standing quantities up to its last month
    (`periods.counts_in` is the same rule) — for one region (exact), the regions of one length under a prefix
    (`region_len`), or every region of the given lengths (`levels`). Rows: period, region, institution, code,
    part, n."""
    stored = [(s, p) for p in periods for s in period_keys.stored_keys(p)]
    ends = [(p, "^" + period_keys.last_month(p)) for p in periods if period_keys.started(p, today)]
    measures = sorted({m for _, _, m in parts})
    args: list[Any] = [[s for s, _ in stored], [p for _, p in stored], [p for p, _ in ends], [e for _, e in ends],
                       measures]
    if levels is not None:
        where = "length({t}.region) = any($6::int[])"
        args.append(list(levels))
    elif region_len is not None:
        where = "{t}.region like $6 and length({t}.region) = $7"
        args += [(region or "") + "%", region_len]
    else:
        where = "{t}.region = $6"
        args.append(region or "")
    if institution is not None:  # one institution's own counts (a reporting unit)
        args.append(institution)
        where += f" and {{t}}.institution = ${len(args)}"
    else:
        where += " and {t}.institution <> ''" if by_institution else " and {t}.institution = ''"
    c = await raw(conn)
    rows = await c.fetch(
        "select period, region, institution, measure, sum(n)::bigint as n from ("
        " select k.period, t.region, t.institution, t.measure, t.n"
        " from unnest($1::text[], $2::text[]) as k(stored, period) join tally t on t.period = k.stored"
        f" where t.measure = any($5::text[]) and {where.format(t='t')}"
        " union all"
        " select e.period, s.region, s.institution, s.measure, s.n"
        " from unnest($3::text[], $4::text[]) as e(period, last) join standing s"
        " on s.period > '^' and s.period <= e.last"
        f" where s.measure = any($5::text[]) and {where.format(t='s')}"
        ") x group by 1, 2, 3, 4", *args)
    counted_by = by_measure(parts)
    return [{"period": r["period"], "region": r["region"], "institution": r["institution"], "code": code,
             "part": part, "n": r["n"]} for r in rows for code, part in counted_by[r["measure"]]]


async def save_parts(conn: AsyncConnection, parts: Sequence[Part]) -> None:
    """The catalogue's indicator → measure map, for SQL readers of the `counter` view (Grafana)."""
    c = await raw(conn)
    await c.execute("delete from indicator_part")
    await c.execute("insert into indicator_part (code, part, measure) "
                    "select * from unnest($1::text[], $2::text[], $3::text[])",
                    [p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts])


async def stale_units(conn: AsyncConnection, digest: str, after: str = "", limit: int | None = None) -> list[str]:
    """Units computed under another catalogue, in key order after `after` (a back-fill walks the key index in
    chunks: each chunk one short transaction)."""
    c = await raw(conn)
    return [r["unit_key"] for r in await c.fetch(
        "select unit_key from unit where unit_key > $2 and catalogue_digest <> $1 order by unit_key limit $3",
        digest, after, limit)]


async def mark_current(conn: AsyncConnection, keys: Sequence[str], digest: str) -> None:
    """Units recomputed under `digest` whose contributions did not change (`save_units` wrote only the changed
    ones): no longer stale."""
    c = await raw(conn)
    await c.execute("update unit set catalogue_digest = $1 where unit_key = any($2::text[]) "
                    "and catalogue_digest <> $1", digest, list(keys))


async def start_backfill(conn: AsyncConnection, digest: str) -> int:
    """Open (or reopen after a restart) the progress row of the back-fill to `digest`: total = done so far +
    units still stale. Returns the units still to do."""
    c = await raw(conn)
    todo = int(await c.fetchval("select count(*) from unit where catalogue_digest <> $1", digest))
    await c.execute("insert into backfill (digest, total) values ($1, $2) on conflict (digest) do update set "
                    "total = backfill.done + excluded.total, updated_at = now(), "
                    "finished_at = case when excluded.total = 0 then backfill.finished_at end", digest, todo)
    return todo


async def backfill_progress(conn: AsyncConnection, digest: str, done: int, finished: bool = False) -> None:
    c = await raw(conn)
    await c.execute("update backfill set done = done + $2, updated_at = now(), "
                    "finished_at = case when $3 then coalesce(finished_at, now()) end where digest = $1",
                    digest, done, finished)


async def backfills(conn: AsyncConnection, limit: int = 5) -> list[dict[str, Any]]:
    """The latest back-fills, newest first: digest, total, done, started, updated, finished (ISO) or null."""
    c = await raw(conn)
    rows = await c.fetch("select digest, total, done, started_at, updated_at, finished_at from backfill "
                         "order by started_at desc limit $1", limit)
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(r).items()} for r in rows]


async def candidate_units(conn: AsyncConnection) -> list[str]:
    """Every subject that could be a unit (for rebuilds and back-fills)."""
    c = await raw(conn)
    rows = await c.fetch("select distinct subject_key from fact union select unit_key from unit")
    return [r["subject_key"] for r in rows]


async def all_counters(conn: AsyncConnection) -> dict[CounterKey, int]:
    c = await raw(conn)
    rows = await c.fetch("select period, region, institution, measure, n from tally where n <> 0 union all "
                         "select period, region, institution, measure, n from standing where n <> 0")
    return {(r["period"], r["region"], r["institution"], r["measure"]): r["n"] for r in rows}


async def put_target(conn: AsyncConnection, code: str, region: str, year: int, target: Decimal, comparison: str,
                     by: str) -> None:
    c = await raw(conn)
    await c.execute("insert into target (code, region, year, target, comparison, set_by) "
                    "values ($1, $2, $3, $4, $5, $6) on conflict (code, region, year) do update set "
                    "target = excluded.target, comparison = excluded.comparison, set_by = excluded.set_by, "
                    "updated_at = now()", code, region, year, target, comparison, by)


async def read_targets(conn: AsyncConnection, codes: Sequence[str], regions: Iterable[str],
                       year: int) -> dict[tuple[str, str], tuple[Decimal, str]]:
    """(code, region) → (target, comparison) of the year."""
    c = await raw(conn)
    rows = await c.fetch("select code, region, target, comparison from target where code = any($1::text[]) "
                         "and region = any($2::text[]) and year = $3", list(codes), list(regions), year)
    return {(r["code"], r["region"]): (Decimal(r["target"]), r["comparison"]) for r in rows}


async def list_targets(conn: AsyncConnection, region: str, year: int, code: str | None) -> list[dict[str, Any]]:
    """The targets of a region and every region below it (the decomposition), in code and region order."""
    c = await raw(conn)
    rows = await c.fetch("select code, region, year, target, comparison, set_by, updated_at from target "
                         "where region like $1 and year = $2 and ($3::text is null or code = $3) order by code, region",
                         region + "%", year, code)
    return [{**dict(r), "target": Decimal(r["target"]), "updated_at": r["updated_at"].isoformat()} for r in rows]


async def delete_target(conn: AsyncConnection, code: str, region: str, year: int) -> bool:
    c = await raw(conn)
    return (await c.execute("delete from target where code = $1 and region = $2 and year = $3",
                            code, region, year)) != "DELETE 0"


async def population_facts(conn: AsyncConnection, year: int | None = None) -> list[Fact]:
    """The population figures (人口基数) the bureaus posted, voided ones too (their version counts on)."""
    c = await _c(conn)
    rows = await c.fetch("select record_key, subject_key, version, voided, body from fact "
                         "where record_key like 'population:%' and ($1::int is null or (body->>'year')::int = $1)",
                         year)
    return [Fact(r["record_key"], r["subject_key"], r["version"], r["voided"], from_json(r["body"])) for r in rows]
