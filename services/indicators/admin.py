"""Operator commands of the indicators service.

    python -m indicators.admin reconcile   # recompute every counter from stored facts; report differences
    python -m indicators.admin rebuild     # disaster recovery: recompute every unit and replace the counters
    python -m indicators.admin backfill [CHUNK]   # back-fill a catalogue change in chunks, live events go on
    python -m indicators.admin backfill-status    # progress of the latest back-fills (done of total)
    python -m indicators.admin viewer ROLE REGION   # a read-only login role (Grafana) that sees one region
"""
from __future__ import annotations

import asyncio
import json
import re
import secrets
import sys

from kit.db import Database
from kit.settings import Settings, get_settings

from indicators.domain import catalogue
from indicators.engine import BACKFILL_CHUNK, Engine
from indicators.store import sql

REGION = re.compile(r"[0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12}")


#: what a region's viewer may read (row-level security limits the rows to its region: migration i0007)
VIEWER_TABLES = ("counter", "tally", "standing", "period_key", "period_end", "indicator_part", "target", "filing",
                 "filing_step", "adjustment", "fact", "region_name", "grafana_viewer")


async def create_viewer(settings: Settings, role: str, region: str) -> str:
    """Create (or re-point) a read-only login role that sees only `region` and below; returns its password.
    Needs the administrator's connection (creating roles); the role name is prefixed with the stack's."""
    import asyncpg

    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", role) or not REGION.fullmatch(region):
        raise ValueError("ROLE: lower-case letters, digits, _; REGION: a 2/4/6/9/12-digit code")
    name = f"{settings.db_prefix}{role}"
    password = secrets.token_urlsafe(18)
    conn = await asyncpg.connect(host=settings.pg_host, port=settings.pg_port, user=settings.pg_admin_user,
                                 database=settings.database("indicators"))
    try:
        async with conn.transaction():
            exists = await conn.fetchval("select 1 from pg_roles where rolname = $1", name)
            verb = "alter" if exists else "create"
            # identifiers cannot be bound: the name is checked above; the password is a quoted literal
            await conn.execute(f"{verb} role \"{name}\" login nosuperuser nocreatedb nocreaterole "
                               f"password '{password}'")
            await conn.execute(f"grant connect on database \"{settings.database('indicators')}\" to \"{name}\"")
            await conn.execute(f"grant usage on schema public to \"{name}\"")
            await conn.execute(f"grant select on {', '.join(VIEWER_TABLES)} to \"{name}\"")
            await conn.execute("insert into grafana_viewer (role_name, region_prefix) values ($1, $2) "
                               "on conflict (role_name) do update set region_prefix = excluded.region_prefix",
                               name, region)
    finally:
        await conn.close()
    return password


async def run(cmd: str) -> int:
    db = Database.for_service(get_settings(), "indicators", pool_size=1)
    engine = Engine(catalogue.load())
    try:
        if cmd == "reconcile":
            async with db.connect() as conn:
                diffs = await engine.reconcile(conn)
            print(json.dumps({"consistent": not diffs, "difference_count": len(diffs), "differences": diffs[:50]},
                             ensure_ascii=False, indent=1))
            return 0 if not diffs else 1
        if cmd == "viewer" and len(sys.argv) == 4:
            password = await create_viewer(get_settings(), sys.argv[2], sys.argv[3])
            print(json.dumps({"role": get_settings().db_prefix + sys.argv[2], "region": sys.argv[3],
                              "password": password}, ensure_ascii=False))
            return 0
        if cmd == "backfill":
            chunk = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else BACKFILL_CHUNK
            n = await engine.backfill(db, chunk, lambda done, total: print(
                f"back-fill {engine.catalogue.digest}: {done} of {total} units", file=sys.stderr, flush=True))
            print(json.dumps({"catalogue": engine.catalogue.digest, "units_backfilled": n}))
            return 0
        if cmd == "backfill-status":
            async with db.connect() as conn:
                print(json.dumps({"catalogue": engine.catalogue.digest, "backfills": await sql.backfills(conn)},
                                 ensure_ascii=False, indent=1))
            return 0
        if cmd == "rebuild":
            async with db.begin() as conn:
                n = await engine.rebuild(conn)
            print(f"rebuilt {n} units from stored facts")
            return 0
    finally:
        await db.dispose()
    print(__doc__, file=sys.stderr)
    return 2


def main() -> None:
    sys.exit(asyncio.run(run(sys.argv[1] if len(sys.argv) > 1 else "")))


if __name__ == "__main__":
    main()
