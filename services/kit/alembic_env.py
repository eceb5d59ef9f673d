"""Shared body of every migrations/env.py: run alembic against the service database with asyncpg."""
from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def run(version_table: str | None = None) -> None:
    version_table = version_table or context.config.attributes.get("version_table", "alembic_version")
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"

    def do(conn: Connection) -> None:
        context.configure(connection=conn, target_metadata=None, version_table=version_table,
                          transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            await conn.run_sync(do)
            await conn.commit()
        await engine.dispose()

    asyncio.run(main())


def sql(script: str) -> None:
    """Run a multi-statement SQL script in a migration (asyncpg prepares one statement at a time).

    Statements are separated by a semicolon at the end of a line; `$$` bodies must not contain one.
    """
    from alembic import op

    for stmt in script.split(";\n"):
        if stmt.strip():
            op.execute(stmt)
