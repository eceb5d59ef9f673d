"""Indicators benchmark: events applied per second end to end (API → outbox → relay → Kafka → indicators), the
event-to-visible latency under a steady ~1,000 events/s, the latency of a city-year all-indicator query, the per-event
cost as the stored history grows, the back-fill rate of a catalogue change (units/s), and the consumer's memory.

Scale with BENCH_BIRTHS (default 50,000: a city-year) and BENCH_HISTORY (the stored-history sizes, in subjects,
at which the engine's per-event cost is measured; default 10000,100000,1000000); BENCH_PROBES (events whose
event-to-visible latency is measured under the steady load; default 100).
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import devstack
import httpx
from indicators.domain import catalogue
from indicators.domain.facts import Fact
from indicators.engine import Engine
from kit.db import Database
from kit.settings import Settings

from bench._context import BenchContext

CITY = "3205"
COUNTIES = [f"{CITY}{i:02d}" for i in (81, 82, 83, 85, 5, 6, 7, 8, 9)]  # GB/T 2260 (the registry checks)


def p99(xs: list[float]) -> float:
    return round(sorted(xs)[max(0, int(len(xs) * 0.99) - 1)] * 1000, 1) if xs else float("nan")


async def post(http: httpx.AsyncClient, url: str, body: Any) -> httpx.Response:
    """As a HIS does: a 503 ("nothing was changed, retry later") is retried."""
    for _ in range(50):
        try:
            r = await http.post(url, json=body)
        except httpx.TransportError:  # the API restarting under load: the post changed nothing or is idempotent
            await asyncio.sleep(0.5)
            continue
        if r.status_code != 503:
            return r
        await asyncio.sleep(0.2)
    return await http.post(url, json=body)


def village(rng: random.Random) -> str:
    return f"{rng.choice(COUNTIES)}{rng.randint(1, 12):03d}{rng.randint(1, 8):03d}"


async def applied(ctx: BenchContext) -> int:
    conn = await asyncpg.connect(ctx.dsn("indicators", admin=True))
    try:
        return int(await conn.fetchval("select count(*) from consumed_event"))
    finally:
        await conn.close()


async def published(ctx: BenchContext) -> int:
    conn = await asyncpg.connect(ctx.dsn("registry", admin=True))
    try:
        return int(await conn.fetchval("select count(*) from outbox"))
    finally:
        await conn.close()


async def load(ctx: BenchContext, http: httpx.AsyncClient, births: int, rng: random.Random,
               insts: list[str], batched: bool = False) -> int:
    """Pregnancies (single posts, 8 concurrent; or one :batch) and their deliveries (:batch of 1000)."""
    reg = ctx.url("registry") + "/v1"
    cases = []
    for _ in range(births):
        lmp = date(2025, 1, 1) + timedelta(days=rng.randint(0, 330))
        cases.append((f"P-{uuid.uuid4().hex[:14]}", lmp, village(rng), rng.choice(insts)))
    sem = asyncio.Semaphore(8)  # the registry pool is 5 + 5 connections

    def booking(c: tuple[str, date, str, str]) -> dict[str, Any]:
        return {"pregnancy_id": c[0], "source": "bench", "lmp_date": c[1].isoformat(),
                "registered_on": (c[1] + timedelta(days=70)).isoformat(), "institution_code": c[3],
                "mother": {"name": "基准", "sex": "F", "birth_date": "1994-01-01", "residence_code": c[2]}}

    async def preg(c: tuple[str, date, str, str]) -> None:
        async with sem:
            r = await post(http, f"{reg}/pregnancies", booking(c))
            assert r.status_code in (200, 201), r.text

    if batched:
        for i in range(0, len(cases), 1000):
            r = await post(http, f"{reg}/pregnancies:batch", [booking(c) for c in cases[i:i + 1000]])
            assert r.status_code == 200 and r.json()["accepted"] == len(cases[i:i + 1000]), r.text
    else:
        await asyncio.gather(*(preg(c) for c in cases))
    for i in range(0, len(cases), 1000):
        items = [{"encounter_id": f"D-{c[0]}", "source": "bench", "type": "delivery",
                  "occurred_at": f"{(c[1] + timedelta(days=rng.randint(250, 290))).isoformat()}T08:00:00+08:00",
                  "institution_code": c[3], "subject_id": c[0], "place": "hospital",
                  "mode": rng.choice(["vaginal", "caesarean"]),
                  "babies": [{"sex": rng.choice("FM"), "birth_weight_g": rng.randint(2000, 4200), "outcome": "live"}]}
                 for c in cases[i:i + 1000]]
        r = await post(http, f"{reg}/encounters:batch", items)
        assert r.status_code == 200, r.text
    return len(cases)


async def wait_applied(ctx: BenchContext, target: int, timeout: float = 1800) -> float:
    t0 = time.perf_counter()
    while await applied(ctx) < target:
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError("indicators did not catch up")
        await asyncio.sleep(0.2)
    return time.perf_counter() - t0


def cpu_seconds(program: str, spec: devstack.Stack) -> float:
    """User + system CPU the program has used (robust to a busy machine, unlike wall time)."""
    pid = int(devstack.ctl(spec, "pid", program).strip())
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(program: str, spec: devstack.Stack) -> float:
    pid = int(devstack.ctl(spec, "pid", program).strip())
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def run(ctx: BenchContext) -> dict[str, Any]:
    births = int(os.environ.get("BENCH_BIRTHS", "50000"))
    rng = random.Random(2026)
    out: dict[str, Any] = {"births": births}
    async with httpx.AsyncClient(timeout=120, headers=ctx.headers,
                                 limits=httpx.Limits(max_connections=64)) as http:
        insts = []
        for i, county in enumerate(COUNTIES):
            code = f"BH{i:02d}"
            r = await http.put(f"{ctx.url('registry')}/v1/institutions/{code}", json={
                "name": f"县医院{i}", "region_code": f"{county}001001", "kind": "hospital",
                "midwifery_licensed": True})
            assert r.status_code in (200, 201), r.text
            insts.append(code)
        # 1. throughput of the indicators pipeline: load with the consumer stopped, then let it drain
        devstack.ctl(ctx.spec, "stop", "indicators-consumer")
        t0 = time.perf_counter()
        await load(ctx, http, births, rng, insts)
        out["load_seconds"] = round(time.perf_counter() - t0, 1)
        while True:  # the relay has published everything (the consumer is stopped)
            conn = await asyncpg.connect(ctx.dsn("registry", admin=True))
            backlog = await conn.fetchval("select count(*) from outbox where published_at is null")
            await conn.close()
            if not backlog:
                break
            await asyncio.sleep(0.5)
        events = await published(ctx)
        before = await applied(ctx)
        devstack.ctl(ctx.spec, "start", "indicators-consumer")
        cpu0 = cpu_seconds("indicators-consumer", ctx.spec)
        secs = await wait_applied(ctx, events)
        cpu = cpu_seconds("indicators-consumer", ctx.spec) - cpu0
        out["events_applied"] = events - before
        out["apply_events_per_s"] = round((events - before) / secs)
        # the consumer's own CPU per event (its Postgres work is not in it): a figure a busy box does not skew
        out["consumer_cpu_us_per_event"] = round(cpu / (events - before) * 1e6)
        out["consumer_rss_mb_after_city_year"] = rss_mb("indicators-consumer", ctx.spec)
        # 2. query latency: a city-year, every indicator
        url = f"{ctx.url('indicators')}/v1/indicators/values"
        lat = []
        for _ in range(200):
            t = time.perf_counter()
            r = await http.get(url, params={"region": CITY, "period": "2025"})
            lat.append(time.perf_counter() - t)
            assert r.status_code == 200
        out["query_city_year_all_p50_ms"] = round(statistics.median(lat) * 1000, 1)
        out["query_city_year_all_p99_ms"] = p99(lat)
        # 3. event-to-visible latency under a steady load (~1,000 events/s of background bookings and deliveries)
        probe_region = f"{COUNTIES[0]}999001"
        seen = []
        stop = asyncio.Event()

        async def background() -> None:
            """~1,000 events/s, steady: every quarter second, 62 or 63 pregnancies (pregnancy + mother events)
            and their deliveries (delivery + child events), posted as two batches as HIS imports would, on a
            fixed schedule (a late tick is not made up in a burst)."""
            in_flight = asyncio.Semaphore(3)  # a slow tick does not hold the next one back
            ticks: set[asyncio.Task[None]] = set()

            async def one(n: int) -> None:
                async with in_flight:
                    await load(ctx, http, n, rng, insts, batched=True)

            tick, i = time.perf_counter(), 0
            while not stop.is_set():
                task = asyncio.create_task(one(62 + i % 2))
                ticks.add(task)
                task.add_done_callback(ticks.discard)
                i += 1
                tick += 0.25
                await asyncio.sleep(max(0.0, tick - time.perf_counter()))
            await asyncio.gather(*ticks)

        bg = asyncio.create_task(background())
        base = await count_at(http, url, probe_region)
        committed = []  # from the registry's answer (the event is committed) to visible
        bg_events0, bg_t0 = await published(ctx), time.perf_counter()
        for i in range(int(os.environ.get("BENCH_PROBES", "100"))):
            pid = f"PROBE-{uuid.uuid4().hex[:10]}"
            lmp = date(2025, 3, 1)
            r = await post(http, f"{ctx.url('registry')}/v1/pregnancies", {
                "pregnancy_id": pid, "source": "bench", "lmp_date": lmp.isoformat(),
                "registered_on": "2025-05-01", "institution_code": insts[0],
                "mother": {"name": "探针", "sex": "F", "birth_date": "1994-01-01", "residence_code": probe_region}})
            assert r.status_code in (200, 201), r.text
            t = time.perf_counter()
            r = await post(http, f"{ctx.url('registry')}/v1/encounters", {
                "encounter_id": f"D-{pid}", "source": "bench", "type": "delivery",
                "occurred_at": "2025-11-20T08:00:00+08:00", "institution_code": insts[0], "subject_id": pid,
                "place": "hospital", "mode": "vaginal",
                "babies": [{"sex": "F", "birth_weight_g": 3000, "outcome": "live"}]})
            assert r.status_code in (200, 201), r.text
            t_committed = time.perf_counter()
            while await count_at(http, url, probe_region) < base + i + 1:  # noqa: ASYNC110 (polls the API)
                await asyncio.sleep(0.005)
            seen.append(time.perf_counter() - t)
            committed.append(time.perf_counter() - t_committed)
        bg_rate = (await published(ctx) - bg_events0) / (time.perf_counter() - bg_t0)
        stop.set()
        await bg
        # from the POST (the registry's own answer time included) and from the commit (the registry answered)
        out["event_to_visible_p50_ms"] = round(statistics.median(seen) * 1000, 1)
        out["event_to_visible_p99_ms"] = p99(seen)
        out["commit_to_visible_p50_ms"] = round(statistics.median(committed) * 1000, 1)
        out["commit_to_visible_p99_ms"] = p99(committed)
        out["background_events_per_s"] = round(bg_rate)
        out["consumer_rss_mb_end"] = rss_mb("indicators-consumer", ctx.spec)
    # 4. back-fill of a catalogue change over the city-year, in chunks, the consumer running beside it
    await wait_applied(ctx, await published(ctx))
    out.update(await backfill_rate(ctx))
    # 5. the per-event cost as the stored history grows (after the consumer has caught up: it shares the box)
    await wait_applied(ctx, await published(ctx))
    sizes = [int(x) for x in os.environ.get("BENCH_HISTORY", "10000,100000,1000000").split(",") if x]
    out.update(await history_growth(ctx, sizes, rng))
    out["consumer_rss_mb_after_history"] = rss_mb("indicators-consumer", ctx.spec)
    return out


def changed_catalogue() -> catalogue.Catalogue:
    """A catalogue change that moves a count of every delivery (the caesarean rate redefined to count vaginal
    births): the back-fill writes a difference for every woman delivered, not only re-reads."""
    doc = json.loads(catalogue.CATALOGUE_FILE.read_text(encoding="utf-8"))
    for ind in doc["indicators"]:
        if ind["code"] == "caesarean_rate":
            ind["numerator"]["where"] = [["mode", "==", "vaginal"]]
    return catalogue.parse(doc)


async def backfill_rate(ctx: BenchContext) -> dict[str, Any]:
    """Units back-filled per second (补算): the engine's chunked back-fill (`Engine.backfill`, as the consumer and
    `indicators.admin backfill` run it) of a changed catalogue over every stored unit, then back again."""
    db = Database.for_service(Settings(db_prefix=ctx.spec.db_prefix), "indicators", pool_size=2)
    out: dict[str, Any] = {}
    try:
        for name, cat in (("changed", changed_catalogue()), ("restored", catalogue.load())):
            t0 = time.perf_counter()
            n = await Engine(cat).backfill(db)
            secs = time.perf_counter() - t0
            out[f"backfill_{name}_units"] = n
            out[f"backfill_{name}_units_per_s"] = round(n / secs) if secs else None
    finally:
        await db.dispose()
    return out


def family_facts(rng: random.Random) -> list[Fact]:
    """A mother, her pregnancy, its delivery and the live-born child, as the registry's events give them."""
    pid, mid, cid = (uuid.uuid4().hex for _ in range(3))
    lmp = date(2025, 1, 1) + timedelta(days=rng.randint(0, 330))
    region = village(rng)
    born = (lmp + timedelta(days=rng.randint(250, 290))).isoformat()
    return [
        Fact(f"person:{mid}", f"person:{mid}", 1, False, {
            "person_id": mid, "sex": "F", "birth_date": "1994-01-01",
            "residence": [{"since": "1994-01-01", "region_code": region}]}),
        Fact(f"pregnancy:{pid}", f"pregnancy:{pid}", 1, False, {
            "pregnancy_id": pid, "mother_id": mid, "lmp_date": lmp.isoformat(), "institution_code": "BH00",
            "registered_on": (lmp + timedelta(days=70)).isoformat(), "residence_code": region}),
        Fact(f"person:{cid}", f"person:{cid}", 1, False, {
            "person_id": cid, "sex": "F", "birth_date": born, "mother_id": mid, "born_in_pregnancy_id": pid,
            "residence": [{"since": born, "region_code": region}]}),
        Fact(f"encounter:bench/D{pid}", f"pregnancy:{pid}", 1, False, {
            "encounter_key": f"bench/D{pid}", "type": "delivery", "occurred_on": born, "institution_code": "BH00",
            "institution_region": region, "pregnancy_id": pid, "delivery": {
                "place": "hospital", "mode": "vaginal", "institution_midwifery_licensed": True,
                "babies": [{"sex": "F", "birth_weight_g": 3000, "outcome": "live", "child_id": cid}]}}),
    ]


async def history_growth(ctx: BenchContext, sizes: list[int], rng: random.Random) -> dict[str, Any]:
    """The engine's cost per event (in process, the consumer's code path) as the stored history grows: pad
    the fact and unit tables with inert subjects up to each size, then apply the same kind of work."""
    out: dict[str, Any] = {}
    db = Database.for_service(Settings(db_prefix=ctx.spec.db_prefix), "indicators", pool_size=1)
    engine = Engine(catalogue.load())
    admin = await asyncpg.connect(ctx.dsn("indicators", admin=True))
    try:
        # warm-up (connections, prepared statements, caches): the first size would otherwise pay for it
        warm = [f for _ in range(100) for f in family_facts(rng)]
        async with db.begin() as conn:
            await engine.apply_facts(conn, warm)
        for size in sizes:
            have = int(await admin.fetchval("select count(distinct subject_key) from fact"))
            if size > have:
                await admin.execute(
                    "insert into fact (record_key, subject_key, version, voided, body) "
                    "select 'person:h' || g, 'person:h' || g, 1, false, "
                    "jsonb_build_object('person_id', 'h' || g, 'sex', 'F') "
                    "from generate_series($1::bigint, $2::bigint) g", have, size - 1)
                await admin.execute(
                    "insert into unit (unit_key, contributions, deps, catalogue_digest) "
                    "select 'person:h' || g, '[]'::jsonb, '{}', $3 from generate_series($1::bigint, $2::bigint) g "
                    "on conflict do nothing", have, size - 1, engine.catalogue.digest)
                await admin.execute("analyze fact; analyze unit; analyze unit_link; analyze counter")
            facts = [f for _ in range(250) for f in family_facts(rng)]
            t0 = time.perf_counter()
            for i in range(0, len(facts), 500):
                async with db.begin() as conn:
                    await engine.apply_facts(conn, facts[i:i + 500])
            out[f"engine_us_per_event_at_{size}_subjects"] = round((time.perf_counter() - t0) / len(facts) * 1e6)
        costs = [v for k, v in out.items() if k.startswith("engine_us_per_event_at_")]
        out["engine_cost_growth_x"] = round(max(costs) / min(costs), 2) if costs else None
    finally:
        await admin.close()
        await db.dispose()
    return out


async def count_at(http: httpx.AsyncClient, url: str, region: str) -> int:
    r = await http.get(url, params={"region": region, "period": "2025", "codes": "live_births"})
    return int(r.json()["rows"][0]["numerator"])
