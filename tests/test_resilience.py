"""Crashes and restarts mid-stream: nothing accepted is lost, nothing is counted twice."""
from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
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


class Posting:
    """Posts the cases one by one and tells a chaos task when it is past given points, so that a kill or a
    restart happens while requests are still being posted — and records the times to prove it."""

    def __init__(self, cases: list[DeliveryCase], marks: tuple[int, ...]) -> None:
        self.cases, self.marks = cases, marks
        self.reached = [asyncio.Event() for _ in marks]
        self.struck = [asyncio.Event() for _ in marks]
        self.started = self.finished = 0.0

    async def run(self, http: httpx.AsyncClient, stack: Stack) -> None:
        self.started = time.monotonic()
        for i, c in enumerate(self.cases):
            for k, mark in enumerate(self.marks):
                if i == mark:
                    self.reached[k].set()
                    await self.struck[k].wait()   # the chaos task acts now, with the rest still to post
            await post_case(http, stack, c)
        self.finished = time.monotonic()

    def overlapped(self, times: list[float]) -> None:
        assert len(times) == len(self.marks), times
        assert all(self.started < t < self.finished for t in times), (
            f"chaos at {[round(t - self.started, 2) for t in times]} s, posting took "
            f"{round(self.finished - self.started, 2)} s: the disruption did not overlap the posting")


async def _chaos(stack: Stack, program: str, posting: Posting) -> list[float]:
    """kill -9 the program at each mark of the posting (supervisord restarts it); the kill times."""
    times = []
    for reached, struck in zip(posting.reached, posting.struck, strict=True):
        await reached.wait()
        old = stack.kill9(program)
        times.append(time.monotonic())
        struck.set()
        await asyncio.to_thread(stack.wait_running, program, old)
    return times


async def test_kill9_registry_relay_mid_stream(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    insts = await setup_institutions(http, stack, county)
    cases = random_cases(random.Random(21), county, insts, 80)
    posting = Posting(cases, (10, 35, 60))
    _, kills = await asyncio.gather(posting.run(http, stack), _chaos(stack, "registry-relay", posting))
    posting.overlapped(kills)
    await wait_values(http, stack, county, "2025", expected(cases, insts, county, *YEAR), timeout=60)


async def test_kill9_indicators_consumer_mid_stream(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    insts = await setup_institutions(http, stack, county)
    cases = random_cases(random.Random(22), county, insts, 80)
    posting = Posting(cases, (10, 35, 60))
    _, kills = await asyncio.gather(posting.run(http, stack), _chaos(stack, "indicators-consumer", posting))
    posting.overlapped(kills)
    await wait_values(http, stack, county, "2025", expected(cases, insts, county, *YEAR), timeout=60)
    r = await http.post(f"{stack.url('indicators')}/v1/admin/reconcile")
    assert r.json()["consistent"], r.json()


async def test_broker_restart_mid_stream_loses_nothing(http: httpx.AsyncClient, stack: Stack) -> None:
    """The local broker forgets everything on restart: relays republish, consumers start the new log at 0."""
    county = fresh_county()
    insts = await setup_institutions(http, stack, county)
    cases = random_cases(random.Random(23), county, insts, 60)
    posting = Posting(cases, (20,))

    async def restart_broker() -> list[float]:
        await posting.reached[0].wait()
        began = time.monotonic()
        restart = asyncio.create_task(asyncio.to_thread(stack.restart, "broker"))
        await asyncio.sleep(0.05)   # supervisorctl has begun stopping it
        posting.struck[0].set()
        await restart
        return [began]

    _, restarted = await asyncio.gather(posting.run(http, stack), restart_broker())
    posting.overlapped(restarted)
    await wait_values(http, stack, county, "2025", expected(cases, insts, county, *YEAR), timeout=90)
    r = await http.post(f"{stack.url('indicators')}/v1/admin/reconcile")
    assert r.json()["consistent"], r.json()


async def _retry(http: httpx.AsyncClient, stack: Stack, c: DeliveryCase) -> None:
    """As the HIS does: repost a case refused while Postgres restarted. Only "nothing changed, try again" answers
    (503, a dropped connection) are retried; anything else — or still refused after 10 s — fails the test."""
    for _ in range(50):
        try:
            r = await post_pregnancy(http, stack, c)
            if r.status_code in (200, 201):
                r = await http.post(f"{stack.url('registry')}/v1/encounters", json=c.encounter_body())
        except httpx.TransportError:
            await asyncio.sleep(0.2)
            continue
        if r.status_code in (200, 201):
            return
        assert r.status_code == 503, r.text
        await asyncio.sleep(0.2)
    raise AssertionError(f"case {c.pregnancy_id} still refused after Postgres came back")


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
        await _retry(http, stack, c)
    await wait_values(http, stack, county, "2025", expected(accepted + pending, insts, county, *YEAR), timeout=60)
