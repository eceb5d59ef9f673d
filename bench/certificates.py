"""Certificates benchmark: issues per second (prepare + seal, the two steps of 签发) with 50 concurrent clients
against one institution's stock, their latencies, and a check that no serial was drawn twice or skipped. Each
clerk prepares as the institution's certificate custodian and seals as its seal custodian (two person accounts,
证章分离), as in production.

Scale with BENCH_CERTS (default 5,000 issues) and BENCH_CERT_CLIENTS (default 50).
"""
from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import time
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
from certificates.service import today
from certificates.tests.stack_helpers import births, new_prefix, office, stock, wait_known
from kit.settings import Settings

from bench._context import BenchContext, settle
from bench._http import LeanClient


def p99(xs: list[float]) -> float:
    return round(sorted(xs)[max(0, int(len(xs) * 0.99) - 1)] * 1000, 1) if xs else float("nan")


async def run(ctx: BenchContext) -> dict[str, Any]:
    n = int(os.environ.get("BENCH_CERTS", "5000"))
    clients = int(os.environ.get("BENCH_CERT_CLIENTS", "50"))
    reg, certs = ctx.url("registry"), ctx.url("certificates")
    region = "320581001001"
    async with httpx.AsyncClient(timeout=120, headers=ctx.headers,
                                 limits=httpx.Limits(max_connections=64)) as http:
        settings = Settings(db_prefix=ctx.spec.db_prefix, kafka_bootstrap=ctx.spec.bootstrap)
        o = await office(http, reg, certs, region, settings)
        t0 = time.perf_counter()
        children = await births(http, reg, o.code, region, n, today() - timedelta(days=2))
        await wait_known(ctx.dsn("certificates", admin=True), children, timeout=600)
        setup_s = time.perf_counter() - t0
        await stock(http, certs, o, new_prefix(), 1, n, today())
        await settle(ctx)  # the births' events applied by every consumer before the clock starts
    queue: asyncio.Queue[str] = asyncio.Queue()
    for c in children:
        queue.put_nowait(c)
    prep: list[float] = []
    seal: list[float] = []
    serials: list[str] = []

    async def clerk() -> None:
        h = LeanClient(certs, o.by(o.keeper))       # the certificate custodian's connection
        sealer = LeanClient(certs, o.by(o.sealer))  # the seal custodian's
        try:
            while not queue.empty():
                child = queue.get_nowait()
                t = time.perf_counter()
                status, out = await h.post("/v1/certificates", {
                    "kind": "first", "child_id": child, "child_name": "基准"})
                prep.append(time.perf_counter() - t)
                assert status == 201, out
                serial = out["serial"]
                t = time.perf_counter()
                status, out = await sealer.post(f"/v1/certificates/{serial}/seal", {})
                seal.append(time.perf_counter() - t)
                assert status == 200, out
                serials.append(serial)
        finally:
            await h.close()
            await sealer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(clerk() for _ in range(clients)))
    secs = time.perf_counter() - t0
    conn = await asyncpg.connect(ctx.dsn("certificates", admin=True))
    try:
        issued = await conn.fetchval("select count(*) from serial where institution_code = $1 and state = 'issued'",
                                     o.code)
    finally:
        await conn.close()
    ordered = sorted(serials)
    gap_free = all(int(b[1:]) - int(a[1:]) == 1 for a, b in itertools.pairwise(ordered))
    return {"issues": n, "clients": clients, "setup_births_s": round(setup_s, 1),
            "issues_per_s": round(n / secs, 1), "requests_per_s": round(2 * n / secs, 1),
            "prepare_p50_ms": round(statistics.median(prep) * 1000, 1), "prepare_p99_ms": p99(prep),
            "seal_p50_ms": round(statistics.median(seal) * 1000, 1), "seal_p99_ms": p99(seal),
            "distinct_serials": len(set(serials)), "issued_in_db": issued, "gap_free": gap_free}
