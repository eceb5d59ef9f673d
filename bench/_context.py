"""What a benchmark module gets: the running stack, a token with every scope, and a way to record figures."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import devstack


@dataclass
class BenchContext:
    spec: devstack.Stack
    token: str
    notes: list[str] = field(default_factory=list)

    def url(self, service: str) -> str:
        return self.spec.url(service)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def dsn(self, service: str, admin: bool = False) -> str:
        """A plain asyncpg DSN of a service database (admin: as the postgres superuser)."""
        user = "postgres" if admin else f"{self.spec.db_prefix}{service}"
        return f"postgresql://{user}@127.0.0.1:5432/{self.spec.db_prefix}{service}"


Result = dict[str, Any]


async def settle(ctx: BenchContext, quiet_s: float = 1.0, timeout: float = 600) -> None:
    """Until the pipeline has absorbed a setup phase: every outbox published and no consumer applied anything for
    `quiet_s` (so a timed phase measures its own work, not the tail of the setup's)."""
    async def counts() -> tuple[int, ...]:
        out = []
        for svc in devstack.SERVICES:
            conn = await asyncpg.connect(ctx.dsn(svc, admin=True))
            try:
                out.append(int(await conn.fetchval("select count(*) from outbox where published_at is null")))
                out.append(int(await conn.fetchval("select count(*) from consumed_event")))
            finally:
                await conn.close()
        return tuple(out)

    deadline = time.monotonic() + timeout
    last = await counts()
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet_s)
        now = await counts()
        if now == last and not any(now[0::2]):
            return
        last = now
    raise RuntimeError("the pipeline did not settle")
