"""Filings (上报/审核) in Postgres: the filing with its snapshot, the step trail, adjustments (migration i0004)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from kit.clock import CHINA
from kit.db import from_json, raw, to_json
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from indicators.domain import periods
from indicators.domain.approval import Filing

FILING_LOCK = 0x1D1C_F11E  # pg advisory lock space of approval steps, one key per (report, period)


async def lock_report_period(conn: AsyncConnection, report: str, period: str) -> None:
    """Steps on one report and period run one at a time: approving a county reads its townships' states, and a
    township unapproved meanwhile must not slip under the county's approval."""
    # through SQLAlchemy, not the raw connection: the first statement of the unit of work begins its transaction
    await conn.execute(text("select pg_advisory_xact_lock(:space, hashtext(:key))"),
                       {"space": FILING_LOCK, "key": f"{report}|{period}"})


def _filing(r: Any) -> Filing:
    return Filing(r["report"], r["period"], r["unit"], r["state"], r["submitted_by"], r["approved_by"])


async def get(conn: AsyncConnection, report: str, period: str, unit: str) -> Filing | None:
    c = await raw(conn)
    r = await c.fetchrow("select * from filing where report = $1 and period = $2 and unit = $3",
                         report, period, unit)
    return _filing(r) if r else None


async def detail(conn: AsyncConnection, report: str, period: str, unit: str) -> dict[str, Any] | None:
    c = await raw(conn)
    r = await c.fetchrow("select * from filing where report = $1 and period = $2 and unit = $3",
                         report, period, unit)
    if r is None:
        return None
    out = dict(r)
    out["figures"] = from_json(r["figures"])
    return out


async def submit(conn: AsyncConnection, report: str, period: str, unit: str, figures: dict[str, Any],
                 digest: str, actor: str, actor_name: str) -> None:
    """File (or refile) the snapshot: state submitted, approval cleared."""
    c = await raw(conn)
    await c.execute(
        "insert into filing (report, period, unit, state, figures, catalogue_digest, submitted_by, "
        "submitted_by_name, submitted_at) values ($1, $2, $3, 'submitted', $4::jsonb, $5, $6, $7, now()) "
        "on conflict (report, period, unit) do update set state = 'submitted', figures = excluded.figures, "
        "catalogue_digest = excluded.catalogue_digest, submitted_by = excluded.submitted_by, "
        "submitted_by_name = excluded.submitted_by_name, submitted_at = now(), approved_by = null, "
        "approved_by_name = null, approved_at = null, filed_count = filing.filed_count + 1",
        report, period, unit, to_json(figures), digest, actor, actor_name)


async def approve(conn: AsyncConnection, report: str, period: str, unit: str, actor: str, actor_name: str) -> None:
    c = await raw(conn)
    await c.execute("update filing set state = 'approved', approved_by = $4, approved_by_name = $5, "
                    "approved_at = now() where report = $1 and period = $2 and unit = $3",
                    report, period, unit, actor, actor_name)


async def unapprove(conn: AsyncConnection, report: str, period: str, unit: str) -> None:
    c = await raw(conn)
    await c.execute("update filing set state = 'returned' where report = $1 and period = $2 and unit = $3",
                    report, period, unit)


async def step(conn: AsyncConnection, report: str, period: str, unit: str, action: str, actor: str,
               actor_name: str, *, reason: str | None = None, figures: dict[str, Any] | None = None,
               request_id: str = "") -> None:
    """One row of the audit trail (append-only)."""
    c = await raw(conn)
    await c.execute("insert into filing_step (report, period, unit, action, actor, actor_name, reason, figures, "
                    "request_id) values ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)",
                    report, period, unit, action, actor, actor_name, reason,
                    to_json(figures) if figures is not None else None, request_id)


async def steps(conn: AsyncConnection, report: str, period: str, unit: str) -> list[dict[str, Any]]:
    c = await raw(conn)
    rows = await c.fetch("select action, actor, actor_name, reason, request_id, at from filing_step "
                         "where report = $1 and period = $2 and unit = $3 order by id", report, period, unit)
    return [{**dict(r), "at": r["at"].isoformat()} for r in rows]


async def units_below(conn: AsyncConnection, report: str, period: str, unit: str,
                      length: int) -> dict[str, str]:
    """The units of code length `length` under `unit` that report in the period — those with any figures in it
    (a township where nothing happened has nothing to file) or a filing — with their state ("" = not filed)."""
    c = await raw(conn)
    stored = periods.stored_keys(period)
    rows = await c.fetch(
        "select u.region, coalesce(f.state, '') as state from ("
        " select distinct region from tally where period = any($1::text[]) and region like $2 and length(region) = $3"
        "   and institution = '' and n <> 0"
        " union select unit from filing where report = $4 and period = $5 and unit like $2 and length(unit) = $3"
        ") u left join filing f on f.report = $4 and f.period = $5 and f.unit = u.region order by 1",
        stored, unit + "%", length, report, period)
    return {r["region"]: r["state"] for r in rows}


async def institutions_below(conn: AsyncConnection, report: str, period: str, region: str) -> dict[str, str]:
    """The institutions registered under `region` as units (`inst:<code>`) with their filing state."""
    c = await raw(conn)
    rows = await c.fetch(
        "select 'inst:' || substr(x.record_key, 13) as unit, coalesce(f.state, '') as state from fact x "
        "left join filing f on f.report = $1 and f.period = $2 and f.unit = 'inst:' || substr(x.record_key, 13) "
        "where x.record_key like 'institution:%' and x.body->>'region_code' like $3 order by 1",
        report, period, region + "%")
    return {r["unit"]: r["state"] for r in rows}


async def listing(conn: AsyncConnection, report: str, period: str, region: str) -> list[dict[str, Any]]:
    c = await raw(conn)
    rows = await c.fetch("select unit, state, submitted_by_name, submitted_at, approved_by_name, approved_at, "
                         "filed_count from filing where report = $1 and period = $2 and unit like $3 order by unit",
                         report, period, region + "%")
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(r).items()} for r in rows]


async def locked(conn: AsyncConnection) -> list[tuple[str, str, str]]:
    """(report, period, unit) of every approved filing: the engine records adjustments against these."""
    c = await raw(conn)
    return [(r["report"], r["period"], r["unit"])
            for r in await c.fetch("select report, period, unit from filing where state = 'approved'")]


async def add_adjustments(conn: AsyncConnection, rows: Sequence[tuple[str, str, str, str, str, int, list[str],
                                                                        list[str], list[str]]]) -> None:
    if not rows:
        return
    c = await raw(conn)
    await c.executemany("insert into adjustment (report, period, unit, engine_unit, measure, delta, records, "
                        "request_ids, actors) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)", rows)


async def adjustments(conn: AsyncConnection, report: str, period: str, unit: str) -> list[dict[str, Any]]:
    c = await raw(conn)
    rows = await c.fetch("select engine_unit, measure, delta, records, request_ids, actors, applied_at from adjustment "
                         "where report = $1 and period = $2 and unit = $3 order by id", report, period, unit)
    return [{**dict(r), "records": list(r["records"]), "request_ids": list(r["request_ids"]),
             "posted_by": list(r["actors"]),
             "applied_at": r["applied_at"].isoformat()} for r in rows]


async def first_submitted(conn: AsyncConnection, report: str, period: str,
                          units: list[str]) -> dict[str, tuple[str, date | None]]:
    """unit → (state, the day it was first submitted, China time) of the filings of these units."""
    c = await raw(conn)
    rows = await c.fetch(
        "select f.unit, f.state, (select min(s.at) from filing_step s where s.report = f.report "
        "and s.period = f.period and s.unit = f.unit and s.action = 'submit') as first "
        "from filing f where f.report = $1 and f.period = $2 and f.unit = any($3::text[])",
        report, period, units)
    return {r["unit"]: (r["state"], r["first"].astimezone(CHINA).date() if r["first"] else None) for r in rows}
