"""`python -m registry.regions load FILE`: replace the region table with a newer file (code,name CSV);
`python -m registry.regions count`: how many codes are loaded, by level."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg
from kit.settings import get_settings

from registry.domain.regions import parse_csv

SHIPPED = Path(__file__).resolve().parent / "data" / "regions.csv"


async def _connect() -> asyncpg.Connection:
    s = get_settings()
    dsn = s.dsn(s.database("registry"), s.role("registry")).replace("postgresql+asyncpg://", "postgresql://")
    return await asyncpg.connect(dsn)


async def load(rows: list[tuple[str, str]]) -> int:
    conn = await _connect()
    try:
        async with conn.transaction():
            await conn.execute("delete from region")
            await conn.copy_records_to_table("region", records=rows, columns=["code", "name"])
    finally:
        await conn.close()
    return len(rows)


async def count() -> dict[int, int]:
    conn = await _connect()
    try:
        rows = await conn.fetch("select length(code) as level, count(*) as n from region group by 1 order by 1")
    finally:
        await conn.close()
    return {r["level"]: r["n"] for r in rows}


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "load":
        n = asyncio.run(load(parse_csv(Path(argv[1]).read_text(encoding="utf-8"))))
        print(f"loaded {n} region codes from {argv[1]} (the services pick them up within a minute)")
        return 0
    if argv == ["count"]:
        print(asyncio.run(count()))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
