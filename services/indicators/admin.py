"""Operator commands of the indicators service.

    python -m indicators.admin reconcile   # recompute every counter from stored facts; report differences
    python -m indicators.admin rebuild     # disaster recovery: recompute every unit and replace the counters
"""
from __future__ import annotations

import asyncio
import json
import sys

from kit.db import Database
from kit.settings import get_settings

from indicators.domain import catalogue
from indicators.engine import Engine


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
