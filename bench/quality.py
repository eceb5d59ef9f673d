"""Quality benchmark: the CPU the quality service's rule evaluation adds per event to the pipeline (issue 18:
≤ 25 %), before and after.

"Before" is the pipeline without quality: the registry API and relay that make the events and the indicators
consumer that counts them; "after" adds the quality consumer. Each program's CPU is its own process's (user +
system, /proc) plus that of its Postgres backends (pg_stat_activity by application_name), measured while it
drains the same backlog: the load is posted with both consumers stopped, then each is started alone.
Scale with BENCH_QUALITY_BIRTHS (default 5,000 pregnancies with a delivery and a child each; 2 % planted bad).
"""
from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Any

import asyncpg
import devstack
import httpx

from bench._context import BenchContext
from bench.indicators import COUNTIES, cpu_seconds, load


async def backend_cpu(ctx: BenchContext, program: str) -> float:
    """CPU seconds of the program's Postgres backends (its connections say who they are: application_name)."""
    conn = await asyncpg.connect(ctx.dsn("registry", admin=True))
    try:
        pids = [r[0] for r in await conn.fetch(
            "select pid from pg_stat_activity where application_name like $1", program + "%")]
    finally:
        await conn.close()
    return sum(_proc_cpu(pid) for pid in pids)


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def applied(ctx: BenchContext, service: str) -> int:
    conn = await asyncpg.connect(ctx.dsn(service, admin=True))
    try:
        return int(await conn.fetchval("select count(*) from consumed_event"))
    finally:
        await conn.close()


async def drain(ctx: BenchContext, program: str, service: str, target: int) -> dict[str, float]:
    """Start the consumer on the backlog; its process and backend CPU until it applied `target` events. The
    program was stopped, so its new process and backends count from zero: everything from its start is counted
    (start-up included). A baseline read after the start missed the work a fast consumer did meanwhile."""
    t0 = time.perf_counter()
    devstack.ctl(ctx.spec, "start", program)
    cpu0, db0 = 0.0, 0.0
    db_last = db0
    while await applied(ctx, service) < target:
        db_last = max(db_last, await backend_cpu(ctx, program))  # a backend closed later keeps its last reading
        if time.perf_counter() - t0 > 1800:
            raise RuntimeError(f"{program} did not catch up")
        await asyncio.sleep(0.2)
    db_last = max(db_last, await backend_cpu(ctx, program))
    return {"seconds": time.perf_counter() - t0, "process_cpu": cpu_seconds(program, ctx.spec) - cpu0,
            "db_cpu": db_last - db0}


async def run(ctx: BenchContext) -> dict[str, Any]:
    births = int(os.environ.get("BENCH_QUALITY_BIRTHS", "5000"))
    rng = random.Random(18)
    out: dict[str, Any] = {"births": births}
    async with httpx.AsyncClient(timeout=120, headers=ctx.headers, limits=httpx.Limits(max_connections=64)) as http:
        insts = []
        for i, county in enumerate(COUNTIES):
            code = f"BQ{i:02d}"
            r = await http.put(f"{ctx.url('registry')}/v1/institutions/{code}", json={
                "name": f"县医院{i}", "region_code": f"{county}001001", "kind": "hospital",
                "midwifery_licensed": True})
            assert r.status_code in (200, 201), r.text
            insts.append(code)
        for program in ("indicators-consumer", "quality-consumer"):
            devstack.ctl(ctx.spec, "stop", program)
        producers = ("registry-api", "registry-relay")
        conn = await asyncpg.connect(ctx.dsn("registry", admin=True))
        first = int(await conn.fetchval("select count(*) from outbox"))
        await conn.close()
        cpu0 = {p: cpu_seconds(p, ctx.spec) + await backend_cpu(ctx, p) for p in producers}
        await load(ctx, http, births, rng, insts)
        while True:  # every event published
            conn = await asyncpg.connect(ctx.dsn("registry", admin=True))
            backlog = await conn.fetchval("select count(*) from outbox where published_at is null")
            events = int(await conn.fetchval("select count(*) from outbox")) - first
            await conn.close()
            if not backlog:
                break
            await asyncio.sleep(0.5)
        produce = 0.0
        for p in producers:
            produce += cpu_seconds(p, ctx.spec) + await backend_cpu(ctx, p) - cpu0[p]
    target_ind = await applied(ctx, "indicators") + events
    ind = await drain(ctx, "indicators-consumer", "indicators", target_ind)
    target_q = await applied(ctx, "quality") + events
    qual = await drain(ctx, "quality-consumer", "quality", target_q)
    per = 1e6 / events
    before = produce + ind["process_cpu"] + ind["db_cpu"]
    added = qual["process_cpu"] + qual["db_cpu"]
    out.update({
        "events": events,
        "produce_cpu_us_per_event": round(produce * per),
        "indicators_cpu_us_per_event": round((ind["process_cpu"] + ind["db_cpu"]) * per),
        "quality_cpu_us_per_event": round(added * per),
        "quality_process_cpu_us_per_event": round(qual["process_cpu"] * per),
        "quality_db_cpu_us_per_event": round(qual["db_cpu"] * per),
        "pipeline_before_cpu_us_per_event": round(before * per),
        "pipeline_after_cpu_us_per_event": round((before + added) * per),
        "quality_added_pct": round(added * 100 / before, 1),
        "quality_drain_events_per_s": round(events / qual["seconds"]),
        "indicators_drain_events_per_s": round(events / ind["seconds"]),
    })
    return out
