"""kit.db.ShrinkingPool against the real Postgres: a burst grows the pool to its size, reusing connections
(never one per request); idle connections beyond the minimum are closed after the idle time; the pool serves
again afterwards. Connections are counted in pg_stat_activity by this pool's own application_name."""
from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg

from kit.db import Database
from kit.settings import Settings


async def held(name: str) -> int:
    s = Settings()
    conn = await asyncpg.connect(host=s.pg_host, port=s.pg_port, user=s.pg_admin_user, database="postgres")
    try:
        n: int = await conn.fetchval("select count(*) from pg_stat_activity where application_name = $1", name)
        return n
    finally:
        await conn.close()


async def until(name: str, at_most: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        n = await held(name)
        if n <= at_most or time.monotonic() > deadline:
            return n
        await asyncio.sleep(0.1)


async def test_a_burst_grows_the_pool_and_idleness_shrinks_it_to_its_minimum() -> None:
    s = Settings()
    name = f"kit-pool-test-{uuid.uuid4().hex[:8]}"
    size, keep, idle_s = 4, 1, 1.0
    db = Database(f"postgresql+asyncpg://{s.pg_admin_user}@{s.pg_host}:{s.pg_port}/postgres", size,
                  pool_min=keep, idle_s=idle_s, application_name=name)
    backends: set[int] = set()

    async def work() -> None:
        async with db.connect() as conn:
            backends.add((await conn.exec_driver_sql("select pg_backend_pid()")).scalar_one())
            await conn.exec_driver_sql("select pg_sleep(0.2)")

    try:
        await asyncio.gather(*(work() for _ in range(3 * size)))
        # three rounds of `size` at once: the pool grew to its size and reused its connections
        assert len(backends) == size
        assert await held(name) == size
        assert await until(name, keep, timeout=4 * idle_s + 2) == keep
        # what stays open serves the next request without a new connection
        before = set(backends)
        await work()
        assert backends == before
        # and a second burst grows it again
        await asyncio.gather(*(work() for _ in range(size)))
        assert await held(name) == size
    finally:
        await db.dispose()
    assert await until(name, 0, timeout=5) == 0
