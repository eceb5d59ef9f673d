"""Shared fixtures: the test stack (real Postgres, real Tansu broker, the four services under supervisord),
API clients with tokens, and helpers that wait for the live indicators."""
from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import devstack
import httpx
import pytest
import pytest_asyncio
from kit.clients import create_client, create_person
from kit.settings import Settings

STACK = devstack.STACKS["test"]


@dataclass
class Stack:
    spec: devstack.Stack
    token: str
    settings: Settings

    def url(self, service: str) -> str:
        return self.spec.url(service)

    def pid(self, program: str) -> int:
        return int(devstack.ctl(self.spec, "pid", program).strip())

    def kill9(self, program: str) -> int:
        """kill -9 one process; supervisord starts it again (autorestart)."""
        pid = self.pid(program)
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_running(self, program: str, old_pid: int | None = None, timeout: float = 20) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            out = devstack.ctl(self.spec, "status", program, check=False)
            if "RUNNING" in out:
                try:
                    if old_pid is None or self.pid(program) != old_pid:
                        return
                except (RuntimeError, ValueError):
                    pass
            time.sleep(0.1)
        raise AssertionError(f"{program} did not come back")

    def restart(self, program: str) -> None:
        devstack.ctl(self.spec, "restart", program)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    token = devstack.up(STACK, fresh=True)
    settings = Settings(db_prefix=STACK.db_prefix, kafka_bootstrap=STACK.bootstrap)
    yield Stack(STACK, token, settings)
    if not os.environ.get("MCH_KEEP_TEST_STACK"):
        devstack.down(STACK)


@pytest_asyncio.fixture(scope="session")
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {stack.token}"}) as c:
        yield c


async def make_token(stack: Stack, scopes: list[str], region: str = "") -> str:
    _, tok = await create_client(stack.settings, f"test-{uuid.uuid4().hex[:6]}", scopes, region)
    return tok


async def make_person(stack: Stack, roles: list[str], region: str, institution_code: str = "",
                      name: str = "测试人员") -> tuple[str, str]:
    """A person's account (staff) with roles, acting for `region`; returns (account_id, token)."""
    return await create_person(stack.settings, name, roles, region, institution_code=institution_code,
                               staff_id=uuid.uuid4().hex[:6])


def _real_counties() -> list[str]:
    """The county codes of the registry's shipped region table (GB/T 2260), shuffled; Jiangsu (32) first."""
    path = Path(__file__).resolve().parent.parent / "services" / "registry" / "data" / "regions.csv"
    codes = [ln.split(",", 1)[0] for ln in path.read_text(encoding="utf-8").splitlines() if ln[:6].isdigit()]
    counties = [c for c in codes if len(c) == 6]
    rng = random.Random()
    js, rest = [c for c in counties if c.startswith("32")], [c for c in counties if not c.startswith("32")]
    rng.shuffle(js)
    rng.shuffle(rest)
    return js + rest


_COUNTIES = iter(_real_counties())


def fresh_county() -> str:
    """A real county code no other test of this session uses (drawn without replacement), so each test's counts
    are its own."""
    return next(_COUNTIES)


def village(county: str, township: int = 1, village_no: int = 1) -> str:
    return f"{county}{township:03d}{village_no:03d}"


async def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll an async predicate until it returns a truthy value; return it or fail with the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s; last: {last}")
