"""The connection budget (decision 56), counted on the real test stack: at rest a stack holds at most 25
Postgres connections (20 before the quality service); under a burst its pools grow (to no more than their sizes
add up to) and shrink back when idle; a dev stack at rest plus a test stack at its busiest fit in Postgres's default
max_connections with room.

Counted in pg_stat_activity by the application_name every process of the stack sets (MCH_PROCESS_NAME), on the
stack's databases: the suite's own connections are not the stack's."""
from __future__ import annotations

import asyncio
import time
from collections import Counter

import asyncpg
import devstack
import httpx
from kit.settings import Settings

from tests.conftest import Stack

#: what a stack may hold at rest, and Postgres's default max_connections (this machine's may be raised): the four
#: services of decision 56 rest at 19 of 20; the quality service adds its API's 2, its relay's 2 and its consumer's 1
REST_BUDGET = 25
PG_DEFAULT_MAX = 100
#: left for operators, migrations, psql and the suite's own connections
ROOM = 10


def program_names(spec: devstack.Stack) -> set[str]:
    """application_name of every connection a stack's processes open (a relay's listener adds "-listen")."""
    names = set(devstack.programs(spec))
    return names | {f"{n}-listen" for n in names if n.endswith("-relay")}


def ceiling(spec: devstack.Stack) -> int:
    """The most connections a stack can open, from its pool settings: each API its service pool and an auth pool
    of 2 (kit.app), certificates' API also its asyncpg pool of twice the pool size; each relay a pool of one and
    its listener; each consumer a pool of 2."""
    size = int(spec.env.get("MCH_POOL_SIZE", Settings().pool_size))
    apis = len(devstack.SERVICES) * (size + 2) + 2 * size
    return apis + 2 * len(devstack.SERVICES) + 2 * len(devstack.CONSUMERS)


async def count(stack: Stack) -> Counter[str]:
    """The stack's connections per process (application_name), on the stack's databases."""
    conn = await asyncpg.connect(host=stack.settings.pg_host, port=stack.settings.pg_port,
                                 user=stack.settings.pg_admin_user, database="postgres")
    try:
        rows = await conn.fetch("select application_name, count(*) as n from pg_stat_activity "
                                "where starts_with(datname, $1) group by 1", stack.spec.db_prefix)
    finally:
        await conn.close()
    names = program_names(stack.spec)
    return Counter({r["application_name"]: r["n"] for r in rows if r["application_name"] in names})


def at_minimum(c: Counter[str]) -> bool:
    """Each pool back to its minimum (MCH_POOL_MIN = 1): an API its service and auth pools (certificates' asyncpg
    pool keeps none), a relay its pool and listener (named apart), a consumer its pool."""
    return all(n <= (2 if name.endswith("-api") else 1) for name, n in c.items())


async def settle(stack: Stack, at_most: int, each_at_minimum: bool = False) -> Counter[str]:
    """Wait until the stack holds at most `at_most` connections (and, if asked, each pool its minimum): idle
    connections go after MCH_POOL_IDLE_S (plus one shrink round, each process on its own clock); gives up after
    three such intervals and returns the last count."""
    idle_s = Settings().pool_idle_s
    deadline = time.monotonic() + 3 * idle_s + 5
    while True:
        c = await count(stack)
        if (c.total() <= at_most and (at_minimum(c) or not each_at_minimum)) or time.monotonic() > deadline:
            return c
        await asyncio.sleep(0.5)


async def burst(stack: Stack, http: httpx.AsyncClient, per_service: int) -> list[int]:
    """Concurrent reads that each take a connection of their service's pool (and of its auth pool)."""
    paths = {"registry": "/v1/institutions/H5-NO-SUCH", "screening": "/readyz",
             "certificates": "/v1/certificates/H5NOSUCH", "indicators": "/v1/indicators/values?period=2026"}

    async def one(svc: str, path: str) -> int:
        return (await http.get(stack.url(svc) + path)).status_code

    return list(await asyncio.gather(*(one(s, p) for _ in range(per_service) for s, p in paths.items())))


async def peak_during(stack: Stack, work: asyncio.Future[list[int]]) -> tuple[int, list[int]]:
    """The most connections the stack held while `work` ran (sampled every 20 ms)."""
    peak = 0
    while not work.done():
        peak = max(peak, (await count(stack)).total())
        await asyncio.sleep(0.02)
    return peak, await work


async def test_a_stack_at_rest_holds_at_most_the_budget(stack: Stack) -> None:
    c = await settle(stack, REST_BUDGET)
    assert c.total() <= REST_BUDGET, f"{c.total()} connections at rest: {dict(c)}"
    # every long-lived process is there and named: a budget counted on unnamed connections would prove nothing
    assert {"registry-api", "registry-relay", "registry-relay-listen"} <= set(c), dict(c)


async def test_pools_grow_under_a_burst_and_shrink_back(stack: Stack, http: httpx.AsyncClient) -> None:
    rest = (await settle(stack, REST_BUDGET)).total()
    work = asyncio.ensure_future(burst(stack, http, per_service=60))
    peak, statuses = await peak_during(stack, work)
    assert set(statuses) <= {200, 404}, Counter(statuses)
    assert peak > rest, f"the pools did not grow under the burst ({rest} at rest, {peak} at the peak)"
    assert peak <= ceiling(stack.spec), f"{peak} connections, more than the pools add up to ({ceiling(stack.spec)})"
    # a dev stack at rest beside this stack at its busiest fits in a default Postgres, with room
    assert REST_BUDGET + peak <= PG_DEFAULT_MAX - ROOM, f"{REST_BUDGET} + {peak} connections"
    after = await settle(stack, REST_BUDGET, each_at_minimum=True)
    print(f"connections: {rest} at rest, {peak} at the burst's peak, {after.total()} after it")
    assert after.total() <= REST_BUDGET, f"{after.total()} connections after the burst: {dict(after)}"
    assert at_minimum(after), dict(after)


def test_the_dev_stack_at_its_ceiling_beside_a_resting_test_stack_fits() -> None:
    """From the dev stack's pool settings (`make run` loading the demo while the suite rests between tests): its
    pools cannot open so many that a resting test stack no longer fits, with room."""
    assert ceiling(devstack.STACKS["dev"]) + REST_BUDGET <= PG_DEFAULT_MAX - ROOM
