"""A catalogue change back-filled in chunks while events keep being posted and applied (issue 21, 补算历史): the
back-fill ends with the figures of every record, old and new, under the new definition, and reconciliation from
the stored facts finds 0 differences."""
from __future__ import annotations

import asyncio
import json
import random
from datetime import date

import asyncpg
import httpx
from indicators.domain import catalogue, periods
from indicators.engine import Engine
from indicators.store import sql
from kit.db import Database

from tests.conftest import Stack, fresh_county
from tests.helpers import expected, post_case, random_cases, setup_institutions, wait_values

YEAR = (date(2025, 1, 1), date(2025, 12, 31))


def _without_caesarean_numerator() -> catalogue.Catalogue:
    """The 'old' catalogue: the caesarean rate counted vaginal births (a definition the upgrade corrects)."""
    doc = json.loads(catalogue.CATALOGUE_FILE.read_text(encoding="utf-8"))
    for ind in doc["indicators"]:
        if ind["code"] == "caesarean_rate":
            ind["numerator"]["where"] = [["mode", "==", "vaginal"]]
    return catalogue.parse(doc)


async def test_a_backfill_running_while_events_are_posted_ends_reconciled(http: httpx.AsyncClient,
                                                                          stack: Stack) -> None:
    rng = random.Random(21)
    county = fresh_county()
    insts = await setup_institutions(http, stack, county)
    cases = random_cases(rng, county, insts, 40)
    first, later = cases[:24], cases[24:]
    for c in first:
        await post_case(http, stack, c)
    await wait_values(http, stack, county, "2025", expected(first, insts, county, *YEAR))
    current = catalogue.load()
    db = Database.for_service(stack.settings, "indicators", pool_size=2)
    s = stack.settings
    admin = await asyncpg.connect(f"postgresql://{s.pg_admin_user}@{s.pg_host}:{s.pg_port}/{s.database('indicators')}")
    try:
        # the store as the old catalogue left it: every unit computed under the old definition
        async with db.begin() as conn:
            assert await Engine(_without_caesarean_numerator()).backfill_if_changed(conn) > 0
        async with db.connect() as conn:
            assert any("caesarean_rate.n" in x["indicators"] for x in await Engine(current).reconcile(conn))
        applied0 = await admin.fetchval("select count(*) from consumed_event")
        seen: list[tuple[int, int]] = []

        async def post_later() -> None:
            for c in later:
                await post_case(http, stack, c)

        # the upgrade: the back-fill, 3 units a transaction, beside the live consumer applying the new posts
        posting = asyncio.create_task(post_later())
        await asyncio.sleep(0.3)
        # every unit is stale (most unchanged by the definition): each is done once, then the back-fill ends
        stale = await admin.fetchval("select count(*) from unit where catalogue_digest <> $1", current.digest)
        n = await asyncio.wait_for(Engine(current).backfill(
            db, chunk=3, progress=lambda done, total: seen.append((done, total))), timeout=180)
        assert 0 < n <= stale  # live events may recompute a stale unit first: the back-fill skips it
        assert await admin.fetchval("select count(*) from unit where catalogue_digest <> $1", current.digest) == 0
        applied_during = await admin.fetchval("select count(*) from consumed_event") - applied0
        await posting
        assert n > 0 and len(seen) >= n // 3 and seen[-1][0] == n
        assert applied_during > 0  # events were applied between the chunks: the pipeline did not stop
        await wait_values(http, stack, county, "2025", expected(cases, insts, county, *YEAR), timeout=60)
        async with db.connect() as conn:
            row = next(b for b in await sql.backfills(conn) if b["digest"] == current.digest)
            # finished; it counted what it did (a unit a live event recomputed first is not done twice, so done may
            # stay below the total it started from)
            assert row["finished_at"] is not None and row["done"] >= n and row["done"] <= row["total"]
        async with db.connect() as conn:
            assert await Engine(current).reconcile(conn) == []
    finally:
        await admin.close()
        async with db.begin() as conn:  # whatever happened, leave the store under the current catalogue
            await Engine(current).backfill_if_changed(conn)
        await db.dispose()


async def test_the_counter_view_reads_a_cumulative_period_as_the_store_does(stack: Stack) -> None:
    """`period_key` (what Grafana's `counter` view sums) maps every cumulative period to the stored keys the
    service reads (`periods.stored_keys`: months, the last ordinary period's `@` key, the window's steps)."""
    s = stack.settings
    conn = await asyncpg.connect(f"postgresql://{s.pg_admin_user}@{s.pg_host}:{s.pg_port}/{s.database('indicators')}")
    try:
        keys = [f"{y}-01..{n:02d}" for y in (2025, 2026) for n in range(1, 13)] + \
               [f"{y}SY..{n:02d}" for y in (2025, 2026) for n in range(1, 13)]
        rows = await conn.fetch("select period, stored from period_key where period = any($1::text[])", keys)
    finally:
        await conn.close()
    got: dict[str, set[str]] = {}
    for r in rows:
        got.setdefault(r["period"], set()).add(r["stored"])
    assert got == {k: set(periods.stored_keys(k)) for k in keys}
