"""Group commit for single requests: calls that arrive while earlier ones are being written are run together,
as one unit of work, and each caller gets its own answer.

A lone call runs at once, alone (no added latency when the service is quiet). Under load, calls queue while
`max_running` units are in flight and the next unit takes up to `max_items` of them: one lock-and-read, one
write and one commit (one WAL flush) serve many requests, so throughput grows with concurrency instead of each
request paying its own round trips. This is the database's own group commit, one level up.

`run_many(items)` answers every item in order (a value or an exception for that item alone); if it raises, the
exception is every item's answer.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    def __init__(self, run_many: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]],
                 max_items: int = 100, max_running: int = 2) -> None:
        self._run_many = run_many
        self.max_items = max_items
        self.max_running = max_running
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """`item`'s answer, once the unit of work it was put in has committed (or its exception)."""
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        self._start()
        return await fut  # a cancelled caller (client gone) leaves its item in the unit: it is still written

    def _start(self) -> None:
        while self._queue and self._running < self.max_running:
            unit, self._queue = self._queue[:self.max_items], self._queue[self.max_items:]
            self._running += 1
            task = asyncio.create_task(self._run(unit))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, unit: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            answers = await self._run_many([item for item, _ in unit])
            if len(answers) != len(unit):
                raise RuntimeError(f"{len(answers)} answers for {len(unit)} items")
            for (_, fut), answer in zip(unit, answers, strict=True):
                if fut.done():
                    continue
                if isinstance(answer, BaseException):
                    fut.set_exception(answer)
                else:
                    fut.set_result(answer)
        except BaseException as e:
            for _, fut in unit:
                if not fut.done():
                    fut.set_exception(e)
            if not isinstance(e, Exception):
                raise
        finally:
            self._running -= 1
            self._start()
