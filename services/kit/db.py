"""Database access: one async SQLAlchemy engine (asyncpg driver) per service database.

Stores write SQLAlchemy Core / text statements on an AsyncConnection; hot paths may take the raw asyncpg
connection (`raw()`) for COPY and executemany.

Pools grow to their size under load and shrink back when idle (`ShrinkingPool`): a machine runs a dev stack and a
test stack (and in production many replicas) against one Postgres, whose connections are the scarce resource
(decision 56). Every connection names its process (`application_name`) so `pg_stat_activity` says who holds it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import asyncpg
import orjson
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util import queue as sqla_queue

from kit.settings import Settings, get_settings

log = logging.getLogger("kit.db")

#: errors that mean "the database is not reachable right now" (answered 503, retried by workers)
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.TooManyConnectionsError,
    # a connection cut mid-protocol (server shutting down) leaves the client in this state
    asyncpg.exceptions.InternalClientError,
)


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` (possibly wrapped by SQLAlchemy) says the database is down or restarting."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, UNAVAILABLE_ERRORS):
            return True
        # a pool wait that timed out (every connection busy) is overload: retry later, like a restart
        if isinstance(cur, sa_exc.InterfaceError | sa_exc.DisconnectionError | sa_exc.TimeoutError):
            return True
        if isinstance(cur, sa_exc.DBAPIError) and "connection" in str(cur).lower() and (
            "closed" in str(cur).lower() or "refused" in str(cur).lower() or "terminat" in str(cur).lower()
        ):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


class ShrinkingPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's queue pool that also gives idle connections back to the server.

    A QueuePool keeps every connection it ever opened until the process ends: after one burst a service held its
    whole pool for good (a dev stack ~50 connections at rest). Here the pool is a stack (LIFO: the connection
    used last is handed out next), so under light load the same few connections serve and the others stay idle;
    `shrink()` closes those idle longer than `idle_s`, keeping `keep` open. A burst still grows the pool to its
    size, connections are reused across requests (never one per request), and afterwards it shrinks back.
    """

    #: connections kept open however long idle (a lone request after a quiet minute pays no connect)
    keep: int = 1
    #: a connection idle longer than this (seconds) is closed by the next `shrink()`
    idle_s: float = 5.0

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()
        super()._do_return_conn(record)

    def shrink(self) -> int:
        """Close the connections idle longer than `idle_s` beyond `keep` open ones; returns how many.

        Runs in SQLAlchemy's greenlet context (closing an asyncpg connection awaits). The idle entries are taken
        off the stack (newest first), the ones to keep put back in their order, the others closed and counted
        out exactly as QueuePool discards an overflow connection (`_dec_overflow`)."""
        now = time.monotonic()
        room = max(0, self.keep - self.checkedout())  # before the idle ones are taken off (they'd count as out)
        idle: list[ConnectionPoolEntry] = []
        while True:
            try:
                idle.append(self._pool.get_nowait())
            except sqla_queue.Empty:
                break
        kept = [r for i, r in enumerate(idle) if i < room or now - r.info.get("idle_since", now) < self.idle_s]
        for r in reversed(kept):
            self._pool.put_nowait(r)
        closed = [r for r in idle if all(r is not k for k in kept)]
        for r in closed:
            try:
                r.close()
            except Exception:  # a connection the server already dropped: it is gone either way
                log.debug("closing an idle connection failed", exc_info=True)
            finally:
                self._dec_overflow()
        return len(closed)

    def recreate(self) -> ShrinkingPool:
        pool = super().recreate()
        assert isinstance(pool, ShrinkingPool)
        pool.keep, pool.idle_s = self.keep, self.idle_s
        return pool


class Database:
    """The service's database: `async with db.begin() as conn:` is one transaction.

    `pool_size` is the most connections it opens (a burst); `pool_min` the connections it keeps when idle;
    `idle_s` how long a connection beyond those may stay idle. Unset, they come from the settings
    (MCH_POOL_MIN, MCH_POOL_IDLE_S); `application_name` (MCH_PROCESS_NAME) names the process in pg_stat_activity."""

    def __init__(self, dsn: str, pool_size: int = 10, *, pool_min: int | None = None, idle_s: float | None = None,
                 application_name: str | None = None) -> None:
        settings = get_settings()
        #: stale connections a checkout may meet after a database restart (each is replaced) before a fresh one
        self._checkout_attempts = 2 * pool_size + 1
        self._shrinker: asyncio.Task[None] | None = None
        self.engine: AsyncEngine = create_async_engine(
            dsn,
            poolclass=ShrinkingPool,
            pool_use_lifo=True,
            pool_size=pool_size,
            # no overflow: an overflow connection is closed when returned, so a burst would open (and introspect)
            # a new connection per request; a checkout waits for a pooled one instead (pool_timeout → 503).
            # Shrinking is ShrinkingPool's, by idle time, after the burst.
            max_overflow=0,
            # no pre-ping: it costs three round trips (BEGIN, ping, ROLLBACK) per checkout; the BEGIN that
            # `begin()`/`connect()` send anyway is the liveness check (a stale connection is replaced there)
            pool_pre_ping=False,
            pool_recycle=600,
            pool_timeout=5,
            connect_args={"timeout": 3, "command_timeout": 60, "server_settings": {
                "application_name": (application_name or settings.process_name)[:63]}},
            json_serializer=lambda v: orjson.dumps(v).decode(),
            json_deserializer=orjson.loads,
        )
        pool = self.pool
        pool.keep = min(pool_size, settings.pool_min if pool_min is None else pool_min)
        pool.idle_s = settings.pool_idle_s if idle_s is None else idle_s

    @classmethod
    def for_service(cls, settings: Settings, service: str | None = None, pool_size: int | None = None) -> Database:
        return cls(settings.dsn(settings.database(service), settings.role(service)), pool_size or settings.pool_size,
                   pool_min=settings.pool_min, idle_s=settings.pool_idle_s, application_name=settings.process_name)

    @property
    def pool(self) -> ShrinkingPool:
        pool = self.engine.pool
        assert isinstance(pool, ShrinkingPool)
        return pool

    def _keep_shrinking(self) -> None:
        """Start (once per event loop) the task that shrinks the pool while this database is in use: an idle
        process has no checkins to trigger it, and that is exactly when its connections should go."""
        loop = asyncio.get_running_loop()
        task = self._shrinker
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        self._shrinker = loop.create_task(self._shrink_forever(), name="kit.db shrink")

    async def _shrink_forever(self) -> None:
        while True:
            pool = self.pool
            await asyncio.sleep(max(pool.idle_s / 2, 0.5))
            try:
                await greenlet_spawn(pool.shrink)
            except Exception:  # never let housekeeping end the process's database access
                log.warning("shrinking the connection pool failed", exc_info=True)

    async def _checkout(self) -> AsyncConnection:
        """A pooled connection with its transaction begun. SQLAlchemy's asyncpg adapter sends BEGIN lazily, with
        its first statement: a store that goes straight to the raw asyncpg connection (`raw()`) would otherwise run
        in autocommit, and a unit of work (state + outbox) would not be atomic. The BEGIN sent here is also the
        liveness check of the pooled connection: one that died with a database restart is discarded and the
        next one tried, as a pre-ping would, without a ping's round trips."""
        self._keep_shrinking()
        for attempt in range(self._checkout_attempts):
            conn = await self.engine.connect()
            try:
                fairy = await conn.get_raw_connection()
                adapter: Any = fairy.dbapi_connection
                if adapter._transaction is None:
                    await adapter._start_transaction()
                return conn
            except BaseException as e:
                if is_unavailable(e) and attempt + 1 < self._checkout_attempts:
                    await conn.invalidate()
                    await conn.close()
                    continue
                await conn.close()
                raise
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        conn = await self._checkout()
        try:
            async with conn.begin():
                yield conn
        finally:
            await conn.close()

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """Reads (a transaction rolled back when the block ends)."""
        conn = await self._checkout()
        try:
            yield conn
        finally:
            await conn.close()

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection outside any transaction: each statement commits on its own (a unit of work that is
        one statement). A connection found dead is discarded (no BEGIN checked it: the caller may try again)."""
        self._keep_shrinking()
        conn = await self.engine.connect()
        try:
            yield conn
        except BaseException as e:
            if is_unavailable(e):
                await conn.invalidate()
            raise
        finally:
            await conn.close()

    async def ping(self) -> bool:
        self._keep_shrinking()
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("select 1")
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        if self._shrinker is not None:
            self._shrinker.cancel()
            with suppress(asyncio.CancelledError, RuntimeError):
                await self._shrinker
            self._shrinker = None
        await self.engine.dispose()


async def raw(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy AsyncConnection (same transaction)."""
    fairy = await conn.get_raw_connection()
    driver: Any = fairy.driver_connection
    return driver  # type: ignore[no-any-return]


@asynccontextmanager
async def savepoint(conn: AsyncConnection) -> AsyncIterator[None]:
    """One item of a batch inside the unit of work's transaction: rolled back alone if the block raises.

    Not SQLAlchemy's `begin_nested()`: it names every savepoint anew (sa_savepoint_1, _2, ...), and the asyncpg
    adapter prepares each new text as a statement, so a batch of 1000 items evicted every cached statement of the
    connection and re-planned them item after item. One fixed name, sent as a simple query, prepares nothing."""
    c = await raw(conn)
    await c.execute("savepoint batch_item")
    try:
        yield
    except BaseException:
        await c.execute("rollback to savepoint batch_item")
        raise
    await c.execute("release savepoint batch_item")


def to_json(value: Any) -> str:
    """A json/jsonb parameter for a raw asyncpg query (the dialect's codec passes text through)."""
    return orjson.dumps(value).decode()


def from_json(value: Any) -> Any:
    """A json/jsonb column read through a raw asyncpg query (text, decoded here)."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value
