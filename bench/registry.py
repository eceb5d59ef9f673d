"""Registry benchmark: a generated county's encounters posted through `POST /v1/encounters:batch` (validated,
durable, outbox written) and through single posts at 50 concurrent clients, beside what raw asyncpg COPY of the
same rows into a copy of the encounter table achieves in the same run (the ceiling of the database itself).

Scale with BENCH_REGISTRY_ENCOUNTERS (default 100,000): a tenth of that many pregnancies (booked through
`POST /v1/pregnancies:batch`), each with seven prenatal visits, a delivery and two postpartum visits.

The whole stack runs during the measurement: the registry relay publishes what is posted and the screening,
certificates and indicators consumers apply it, on the same cores. BENCH_REGISTRY_PAUSE_CONSUMERS=1 stops the
three consumers for the posting phases (started again afterwards) to see the registry on its own; the figure
`consumers_running` says which it was.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import devstack
import httpx
import orjson

from bench._context import BenchContext
from bench._http import LeanClient

COUNTY = "320582"  # 张家港市: in the shipped region table
SOURCE = "his-bench"
BATCH = 1000
IN_FLIGHT = 2  # concurrent batch requests (2 cores)
SINGLE_CLIENTS = 50
CONSUMERS = [f"{svc}-consumer" for svc in devstack.CONSUMERS]


def pct(xs: list[float], q: float) -> float:
    return round(sorted(xs)[max(0, int(len(xs) * q) - 1)] * 1000, 1) if xs else float("nan")


def at(d: date) -> str:
    return f"{d.isoformat()}T09:00:00+08:00"


async def setup(ctx: BenchContext, http: httpx.AsyncClient, rng: random.Random,
                pregnancies: int) -> tuple[list[str], list[tuple[str, date, str]]]:
    reg = ctx.url("registry") + "/v1"
    insts = [f"HB{COUNTY}{i}" for i in range(5)]
    for i, code in enumerate(insts):
        r = await http.put(f"{reg}/institutions/{code}", json={
            "name": f"医院{i}", "region_code": f"{COUNTY}{i + 1:03d}001", "kind": "hospital",
            "midwifery_licensed": i != 4})
        r.raise_for_status()
    cases = []
    for _ in range(pregnancies):
        lmp = date(2025, 1, 1) + timedelta(days=rng.randint(0, 300))
        cases.append((f"P-{uuid.uuid4().hex[:14]}", lmp, rng.choice(insts)))
    bodies = [{"pregnancy_id": pid, "source": SOURCE, "lmp_date": lmp.isoformat(),
               "registered_on": (lmp + timedelta(days=60)).isoformat(), "institution_code": inst,
               "mother": {"name": "孕妇", "sex": "F", "birth_date": "1994-01-01",
                          "residence_code": f"{COUNTY}{rng.randint(1, 12):03d}{rng.randint(1, 9):03d}"}}
              for pid, lmp, inst in cases]
    booked = await post_batches(http, f"{reg}/pregnancies:batch", bodies)
    assert booked == len(bodies), f"{booked} of {len(bodies)} pregnancies booked"
    return insts, cases


def story(rng: random.Random, pid: str, lmp: date, inst: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(visits + delivery, postpartum visits) of one pregnancy: ten encounters."""
    def enc(typ: str, on: date, **f: Any) -> dict[str, Any]:
        return {"encounter_id": f"E-{uuid.uuid4().hex[:16]}", "source": SOURCE, "type": typ, "occurred_at": at(on),
                "institution_code": inst, "subject_id": pid, **f}

    delivered = lmp + timedelta(days=rng.randint(250, 290))
    first = [enc("prenatal_visit", lmp + timedelta(days=d), risk_grade=rng.choice(["green", "yellow", "orange"]))
             for d in sorted(rng.sample(range(60, 245), 7))]
    first.append(enc("delivery", delivered, place="hospital", mode=rng.choice(["vaginal", "caesarean"]),
                     babies=[{"sex": rng.choice("FM"), "birth_weight_g": rng.randint(2200, 4200), "outcome": "live"}]))
    later = [enc("postpartum_visit", delivered + timedelta(days=d)) for d in (3, 28)]
    return first, later


async def post_batches(http: httpx.AsyncClient, url: str, items: list[dict[str, Any]]) -> int:
    sem = asyncio.Semaphore(IN_FLIGHT)
    accepted = 0

    async def one(chunk: list[dict[str, Any]]) -> None:
        nonlocal accepted
        async with sem:
            r = await http.post(url, content=orjson.dumps(chunk), headers={"content-type": "application/json"})
            r.raise_for_status()
            accepted += r.json()["accepted"]

    await asyncio.gather(*(one(items[i:i + BATCH]) for i in range(0, len(items), BATCH)))
    return accepted


async def post_singles(ctx: BenchContext, path: str, items: list[dict[str, Any]]) -> tuple[int, list[float]]:
    """50 clients posting one encounter at a time, each on its own keep-alive connection; a failed request
    counts against the rate, not as a crash."""
    queue = list(reversed(items))
    lat: list[float] = []
    ok = 0

    async def client() -> None:
        nonlocal ok
        h = LeanClient(ctx.url("registry"), ctx.headers)
        try:
            while queue:
                body = queue.pop()
                t = time.perf_counter()
                try:
                    status, _ = await h.post(path, body)
                    ok += status in (200, 201)
                except (OSError, asyncio.IncompleteReadError):
                    pass
                lat.append(time.perf_counter() - t)
        finally:
            await h.close()

    await asyncio.gather(*(client() for _ in range(SINGLE_CLIENTS)))
    return ok, lat


async def copy_rate(ctx: BenchContext, items: list[dict[str, Any]]) -> float:
    """Raw asyncpg COPY of the same rows into a scratch copy of the encounter table (no checks, no outbox)."""
    conn = await asyncpg.connect(ctx.dsn("registry", admin=True))
    try:
        await conn.execute("drop table if exists bench_encounter_copy; create table bench_encounter_copy "
                           "(like encounter including defaults)")
        rows = [(b["source"], b["encounter_id"], 1, b["type"], b["subject_id"], None, None,
                 date.fromisoformat(b["occurred_at"][:10]), b["institution_code"], orjson.dumps(b).decode(),
                 hashlib.sha256(orjson.dumps(b)).hexdigest(), False) for b in items]
        cols = ["source", "encounter_id", "version", "type", "subject_id", "pregnancy_id", "person_id", "occurred_on",
                "institution_code", "body", "content_hash", "voided"]
        t = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            await conn.copy_records_to_table("bench_encounter_copy", records=rows[i:i + BATCH], columns=cols)
        elapsed = time.perf_counter() - t
        await conn.execute("drop table bench_encounter_copy")
    finally:
        await conn.close()
    return len(rows) / elapsed


async def run(ctx: BenchContext) -> dict[str, Any]:
    n = int(os.environ.get("BENCH_REGISTRY_ENCOUNTERS", "100000"))
    rng = random.Random(7)
    pregnancies = max(1, n // 10)
    url = ctx.url("registry") + "/v1/encounters"
    limits = httpx.Limits(max_connections=SINGLE_CLIENTS + 4)
    async with httpx.AsyncClient(timeout=120, headers=ctx.headers, limits=limits) as http:
        print(f"bench registry: booking {pregnancies} pregnancies", flush=True)
        t = time.perf_counter()
        _, cases = await setup(ctx, http, rng, pregnancies)
        booking_s = time.perf_counter() - t
        first: list[dict[str, Any]] = []
        later: list[dict[str, Any]] = []
        for pid, lmp, inst in cases:
            a, b = story(rng, pid, lmp, inst)
            first += a
            later += b
        pause = os.environ.get("BENCH_REGISTRY_PAUSE_CONSUMERS") == "1"
        if pause:
            print(f"bench registry: stopping {', '.join(CONSUMERS)} for the posting phases", flush=True)
            devstack.ctl(ctx.spec, "stop", *CONSUMERS)
        print(f"bench registry: {len(first) + len(later)} encounters in batches of {BATCH}", flush=True)
        t = time.perf_counter()
        accepted = await post_batches(http, url + ":batch", first)
        accepted += await post_batches(http, url + ":batch", later)  # postpartum visits need their delivery
        batch_s = time.perf_counter() - t
        batch_rate = accepted / batch_s
        # single posts: more prenatal visits of the same pregnancies (a tenth of the dataset, at least 1,000)
        singles = []
        for pid, lmp, inst in cases:
            for d in (40, 45):
                singles.append({"encounter_id": f"S-{uuid.uuid4().hex[:16]}", "source": SOURCE,
                                "type": "prenatal_visit", "occurred_at": at(lmp + timedelta(days=d)),
                                "institution_code": inst, "subject_id": pid})
        singles = singles[:max(1000, n // 10)]
        print(f"bench registry: {len(singles)} single posts, {SINGLE_CLIENTS} clients", flush=True)
        t = time.perf_counter()
        ok, lat = await post_singles(ctx, "/v1/encounters", singles)
        single_s = time.perf_counter() - t
        if pause:
            devstack.ctl(ctx.spec, "start", *CONSUMERS)
    copy = await copy_rate(ctx, first + later)
    return {
        "encounters": len(first) + len(later), "pregnancies_booked": pregnancies,
        "booking_per_s": round(pregnancies / booking_s),
        "batch_accepted": accepted, "batch_encounters_per_s": round(batch_rate),
        "single_posts": len(singles), "single_ok": ok, "single_failed": len(singles) - ok,
        "single_requests_per_s": round(ok / single_s),
        "single_p50_ms": pct(lat, 0.5), "single_p99_ms": pct(lat, 0.99), "single_clients": SINGLE_CLIENTS,
        "copy_rows_per_s": round(copy), "batch_vs_copy": round(batch_rate / copy, 3),
        "consumers_running": not pause,
    }
