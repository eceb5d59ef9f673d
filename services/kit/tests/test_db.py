"""kit.db: a unit of work is one transaction, also for statements sent through the raw asyncpg connection."""
from __future__ import annotations

import uuid

import pytest

from kit.db import Database, raw
from kit.settings import Settings


async def test_raw_statements_inside_begin_roll_back_together() -> None:
    s = Settings()
    db = Database(f"postgresql+asyncpg://{s.pg_admin_user}@{s.pg_host}:{s.pg_port}/postgres", 1)
    table = f"kit_tx_{uuid.uuid4().hex[:8]}"
    try:
        async with db.begin() as conn:
            await conn.exec_driver_sql(f"create table {table} (x int)")
        with pytest.raises(RuntimeError):
            async with db.begin() as conn:
                c = await raw(conn)
                await c.execute(f"insert into {table} values (1)")
                assert await c.fetchval(f"select count(*) from {table}") == 1
                raise RuntimeError("the use case failed after writing")
        async with db.connect() as conn:
            assert (await conn.exec_driver_sql(f"select count(*) from {table}")).scalar() == 0
    finally:
        async with db.begin() as conn:
            await conn.exec_driver_sql(f"drop table if exists {table}")
        await db.dispose()
