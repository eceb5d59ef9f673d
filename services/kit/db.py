"""Database access: one async SQLAlchemy engine (asyncpg driver) per service database.

Stores write SQLAlchemy Core / text statements on an AsyncConnection; hot paths may take the raw asyncpg
connection (`raw()`) for COPY and executemany.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kit.settings import Settings

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


class Database:
    """The service's database: `async with db.begin() as conn:` is one transaction."""

    def __init__(self, dsn: str, pool_size: int = 10) -> None:
        #: stale connections a checkout may meet after a database restart (each is replaced) before a fresh one
        self._checkout_attempts = 2 * pool_size + 1
        self.engine: AsyncEngine = create_async_engine(
            dsn,
            pool_size=pool_size,
            # no overflow: an overflow connection is closed when returned, so a burst would open (and introspect)
            # a new connection per request; a checkout waits for a pooled one instead (pool_timeout → 503)
            max_overflow=0,
            # no pre-ping: it costs three round trips (BEGIN, ping, ROLLBACK) per checkout; the BEGIN that
            # `begin()`/`connect()` send anyway is the liveness check (a stale connection is replaced there)
            pool_pre_ping=False,
            pool_recycle=600,
            pool_timeout=5,
            connect_args={"timeout": 3, "command_timeout": 60},
            json_serializer=lambda v: orjson.dumps(v).decode(),
            json_deserializer=orjson.loads,
        )

    @classmethod
    def for_service(cls, settings: Settings, service: str | None = None, pool_size: int | None = None) -> Database:
        return cls(settings.dsn(settings.database(service), settings.role(service)), pool_size or settings.pool_size)

    async def _checkout(self) -> AsyncConnection:
        """A pooled connection with its transaction begun. SQLAlchemy's asyncpg adapter sends BEGIN lazily, with
        its first statement: a store that goes straight to the raw asyncpg connection (`raw()`) would otherwise run
        in autocommit, and a unit of work (state + outbox) would not be atomic. The BEGIN sent here is also the
        liveness check of the pooled connection: one that died with a database restart is discarded and the
        next one tried, as a pre-ping would, without a ping's round trips."""
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
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("select 1")
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
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
