"""kit.coalesce: concurrent calls share units of work, and each caller gets its own answer."""
from __future__ import annotations

import asyncio

import pytest

from kit.coalesce import Coalescer


class Refused(Exception):
    pass


async def test_calls_arriving_while_a_unit_runs_share_the_next_one() -> None:
    units: list[list[int]] = []
    gate = asyncio.Event()

    async def run_many(items: list[int]) -> list[int | BaseException]:
        units.append(items)
        await gate.wait()
        return [Refused(i) if i % 3 == 0 else i * 10 for i in items]

    c: Coalescer[int, int] = Coalescer(run_many, max_items=3, max_running=1)
    calls = [asyncio.create_task(c.submit(i)) for i in range(1, 8)]
    await asyncio.sleep(0)
    gate.set()
    answers = await asyncio.gather(*calls, return_exceptions=True)
    # the first call ran alone; the six that queued behind it went in units of at most three, in arrival order
    assert units == [[1], [2, 3, 4], [5, 6, 7]]
    assert [a if isinstance(a, int) else ("refused", a.args[0]) for a in answers] == [
        10, 20, ("refused", 3), 40, 50, ("refused", 6), 70]


async def test_a_unit_that_fails_as_a_whole_fails_each_of_its_calls_and_the_next_unit_still_runs() -> None:
    async def run_many(items: list[str]) -> list[str | BaseException]:
        if "bad" in items:
            raise RuntimeError("database gone")
        return [s.upper() for s in items]

    c: Coalescer[str, str] = Coalescer(run_many, max_items=10, max_running=1)
    first = asyncio.create_task(c.submit("bad"))
    with pytest.raises(RuntimeError):
        await first
    assert await c.submit("ok") == "OK"


async def test_at_most_max_running_units_are_in_flight() -> None:
    running = 0
    most = 0

    async def run_many(items: list[int]) -> list[int | BaseException]:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        return list(items)

    c: Coalescer[int, int] = Coalescer(run_many, max_items=2, max_running=2)
    assert await asyncio.gather(*(c.submit(i) for i in range(20))) == list(range(20))
    assert most == 2
