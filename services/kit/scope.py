"""The caller's scope and the unit of work a use case owns.

A use case is given a `Scope` (who acts: the principal from the token, the region tree they act for, the request
id and one China-time clock) and opens one `UnitOfWork` with it (cosmicpython's unit_of_work: the connection, the
events collected on the way, committed together through the transactional outbox or not at all). Every object a
use case reads or writes is checked against the scope in one place (`Scope.require_object`), before anything is
written or returned. Generic: no service is imported here.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from kit import outbox
from kit.auth import Principal
from kit.clock import Clock
from kit.db import Database, savepoint
from kit.errors import Problem
from kit.events import NewEvent
from kit.logs import request_id
from kit.records import DomainError, field_error


@dataclass(frozen=True)
class Scope:
    """Who is acting, for which part of the region tree, and what "today" is (China time, 北京时间)."""

    principal: Principal
    clock: Clock = field(default_factory=Clock)

    @property
    def actor(self) -> str:
        """The account an action or a read is recorded under (audit rows, voided_by, recorded_by)."""
        return self.principal.actor

    @property
    def request_id(self) -> str:
        return request_id.get()

    def today(self) -> date:
        return self.clock.today()

    def sees(self, region_code: str | None) -> bool:
        return region_code is not None and self.principal.sees_region(region_code)

    def sees_any(self, region_codes: Iterable[str | None]) -> bool:
        return any(self.sees(r) for r in region_codes)

    def require_object(self, region_codes: Iterable[str | None], what: str, key: str) -> None:
        """The object is visible if any of its regions (its current region, or the region of whoever cared for
        it, as the service's rule says) lies under the caller's; otherwise the same 404 as a missing object."""
        codes = list(region_codes)
        self.principal.require_object(next((c for c in codes if self.sees(c)), None), what, key)


class UnitOfWork:
    """One transaction of a use case: `conn`, the scope, and the events to publish with it (outbox, at commit).

    `async with UnitOfWork(db, scope) as uow: ...; uow.emit(event)` — the events are written to the outbox in the
    same transaction when the block ends without an error; an error rolls everything back."""

    def __init__(self, db: Database, scope: Scope, service: str | None = None) -> None:
        self.db = db
        self.scope = scope
        self.service = service
        self.events: list[NewEvent] = []
        self._cm: Any = None
        self.conn: AsyncConnection

    def emit(self, *events: NewEvent) -> None:
        self.events.extend(events)

    def today(self) -> date:
        return self.scope.today()

    async def flush(self) -> None:
        """Write the events emitted so far to the outbox now, so that events a store writes itself (set-based
        encounter posts) come after them in the topic, as they do when each is its own request."""
        if self.events:
            await outbox.append(self.conn, self.events, self.service)
            self.events = []

    async def __aenter__(self) -> UnitOfWork:
        self._cm = self.db.begin()
        self.conn = await self._cm.__aenter__()
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        if exc is None and self.events:
            try:
                await outbox.append(self.conn, self.events, self.service)
            except BaseException as e:
                await self._cm.__aexit__(type(e), e, e.__traceback__)
                raise
        return await self._cm.__aexit__(et, exc, tb)  # type: ignore[no-any-return]


#: one answer per item of a batch: (status, the item's answer or {"errors": [...]})
ItemAnswer = tuple[int, dict[str, Any]]


async def per_item(db: Database, scope: Scope, items: list[Any],
                   unit: Callable[[UnitOfWork, Any], Awaitable[ItemAnswer]],
                   service: str | None = None) -> list[ItemAnswer]:
    """A low-volume batch as one unit of work with a savepoint per item, answered per item: a refused item
    changes nothing (its writes and events are dropped) and does not affect its neighbours."""
    answers: list[ItemAnswer] = []
    async with UnitOfWork(db, scope, service) as uow:
        for item in items:
            mark = len(uow.events)
            try:
                async with savepoint(uow.conn):
                    answers.append(await unit(uow, item))
            except DomainError as e:
                del uow.events[mark:]
                answers.append((e.status, {"errors": e.errors}))
            except Problem as e:
                del uow.events[mark:]
                answers.append((e.status, {"errors": e.errors or [field_error("body", e.detail)]}))
    return answers
