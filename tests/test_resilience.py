"""Crashes and restarts mid-stream: nothing accepted is lost, nothing is counted twice."""
from __future__ import annotations

import asyncio
import os
import random
import subprocess
from datetime import date

import httpx

from tests.conftest import Stack, fresh_county
from tests.helpers import (
    DeliveryCase,
    expected,
    post_case,
    post_pregnancy,
    random_cases,
    setup_institutions,
    wait_values,
)

YEAR = (date(2025, 1, 1), date(2025, 12, 31))


async def _post_all(http: httpx.AsyncClient, stack: Stack, cases: list[DeliveryCase]) -> None:
    for c in cases:
        await post_case(http, stack, c)


async def _chaos(stack: Stack, program: str, times: int, every: float) -> int:
    killed = 0
    for _ in range(times):
        await asyncio.sleep(every)
        old = stack.kill9(program)
        killed += 1
        await asyncio.to_thread(stack.wait_running, program, old)
    return killed


async def test_kill9_registry_relay_mid_stream(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    insts = await setup_institutions(http, stack, county)
    cases = random_cases(random.Random(21), county, insts, 80)
    _, killed = await asyncio.gather(_post_all(http, stack, cases), _chaos(stack, "registry-relay", 3, 0.4))
    assert killed == 3
    await wait_values(http, stack, county, "2025", expected(cases, insts, county, *YEAR), timeout=60)


async def test_kill9_indicators_consumer_mid_stream(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    insts = await setup_institutions(http, stack, county)
    cases = random_cases(random.Random(22), county, insts, 80)
    _, killed = await asyncio.gather(_post_all(http, stack, cases), _chaos(stack, "indicators-consumer", 3, 0.4))
    assert killed == 3
    await wait_values(http, stack, county, "2025", expected(cases, insts, county, *YEAR), timeout=60)
    r = await http.post(f"{stack.url('indicators')}/v1/admin/reconcile")
    assert r.json()["consistent"], r.json()


async def test_broker_restart_mid_stream_loses_nothing(http: httpx.AsyncClient, stack: Stack) -> None:
    """The local broker forgets everything on restart: relays republish, consumers start the new log at 0."""
    county = fresh_county()
    insts = await setup_institutions(http, stack, county)
    cases = random_cases(random.Random(23), county, insts, 60)
    await _post_all(http, stack, cases[:20])

    async def restart_broker() -> None:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(stack.restart, "broker")

    await asyncio.gather(_post_all(http, stack, cases[20:]), restart_broker())
    await wait_values(http, stack, county, "2025", expected(cases, insts, county, *YEAR), timeout=90)
    r = await http.post(f"{stack.url('indicators')}/v1/admin/reconcile")
    assert r.json()["consistent"], r.json()


def _restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
                   check=True, capture_output=True)


async def test_postgres_restart_answers_503_and_loses_nothing(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    insts = await setup_institutions(http, stack, county)
    cases = random_cases(random.Random(24), county, insts, 400)
    statuses: list[int] = []
    accepted: list[DeliveryCase] = []
    pending: list[DeliveryCase] = []
    restarting = asyncio.Event()
    restarted = asyncio.Event()

    async def poster() -> None:
        for i, c in enumerate(cases):
            if i == 10:
                restarting.set()
            if restarted.is_set() and i > 40:
                pending.extend(cases[i:])
                return
            try:
                r1 = await post_pregnancy(http, stack, c)
                statuses.append(r1.status_code)
                if r1.status_code >= 300:
                    pending.append(c)
                    continue
                r2 = await http.post(f"{stack.url('registry')}/v1/encounters", json=c.encounter_body())
                statuses.append(r2.status_code)
                (accepted if r2.status_code < 300 else pending).append(c)
            except httpx.TransportError:
                pending.append(c)

    async def restart() -> None:
        await restarting.wait()
        await asyncio.to_thread(_restart_postgres)
        restarted.set()

    await asyncio.gather(poster(), restart())
    failures = [s for s in statuses if s >= 300]
    assert failures, "expected some requests to fail while Postgres restarted"
    assert set(failures) == {503}, statuses
    # the HIS retries what was refused; what was accepted must already be durable and counted once
    for c in pending:
        for _ in range(50):
            try:
                await post_case(http, stack, c)
                break
            except AssertionError:
                await asyncio.sleep(0.2)
    await wait_values(http, stack, county, "2025", expected(accepted + pending, insts, county, *YEAR), timeout=60)
