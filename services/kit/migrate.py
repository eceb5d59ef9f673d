"""Creates what the platform needs in PostgreSQL: roles, one database per service, the credential database,
and runs every migration. Idempotent: `python -m kit.migrate` on a fresh or an existing server.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config

from kit.auth import AUTH_DDL, auth_grants, new_signing_secret
from kit.settings import SERVICES, Settings, get_settings

log = logging.getLogger("kit.migrate")
SERVICES_DIR = Path(__file__).resolve().parent.parent


async def _admin(settings: Settings, database: str = "postgres") -> asyncpg.Connection:
    return await asyncpg.connect(host=settings.pg_host, port=settings.pg_port, user=settings.pg_admin_user,
                                 database=database)


async def create_databases(settings: Settings, services: tuple[str, ...] = SERVICES, drop: bool = False) -> None:
    conn = await _admin(settings)
    try:
        for svc in services:
            role, db = settings.role(svc), settings.database(svc)
            if drop:
                await conn.execute(f'drop database if exists "{db}" with (force)')
            if not await conn.fetchval("select 1 from pg_roles where rolname = $1", role):
                await conn.execute(f'create role "{role}" login')
            if not await conn.fetchval("select 1 from pg_database where datname = $1", db):
                await conn.execute(f'create database "{db}" owner "{role}" encoding \'UTF8\' template template0')
        auth = settings.auth_database
        if drop:
            await conn.execute(f'drop database if exists "{auth}" with (force)')
        if not await conn.fetchval("select 1 from pg_database where datname = $1", auth):
            await conn.execute(f'create database "{auth}" encoding \'UTF8\' template template0')
    finally:
        await conn.close()
    conn = await _admin(settings, settings.auth_database)
    try:
        await conn.execute(AUTH_DDL)
        await conn.execute("insert into signing_key (kid, secret) values ('k1', $1) on conflict do nothing",
                           new_signing_secret())
        for svc in SERVICES:
            role = settings.role(svc)
            if await conn.fetchval("select 1 from pg_roles where rolname = $1", role):
                await conn.execute(auth_grants(role))
    finally:
        await conn.close()


def _alembic(settings: Settings, service: str, script_dir: Path, version_table: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_dir))
    cfg.set_main_option("sqlalchemy.url", settings.dsn(settings.database(service), settings.role(service)))
    cfg.attributes["version_table"] = version_table
    command.upgrade(cfg, "head")


def migrate(settings: Settings, services: tuple[str, ...] = SERVICES) -> None:
    for svc in services:
        _alembic(settings, svc, SERVICES_DIR / "kit" / "migrations", "kit_alembic_version")
        own = SERVICES_DIR / svc / "migrations"
        if (own / "versions").is_dir() and any((own / "versions").glob("*.py")):
            _alembic(settings, svc, own, "alembic_version")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--drop", action="store_true", help="drop and recreate the databases first (tests)")
    p.add_argument("services", nargs="*", default=list(SERVICES))
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    settings = get_settings()
    asyncio.run(create_databases(settings, tuple(a.services), drop=a.drop))
    migrate(settings, tuple(a.services))
    print(f"databases ready: {', '.join(settings.database(s) for s in a.services)} and {settings.auth_database}")


if __name__ == "__main__":
    main()
