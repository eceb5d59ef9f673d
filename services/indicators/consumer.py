"""The indicators consumer process: `python -m indicators.consumer`.

Besides applying events, it keeps the engine's clock at the current month (China time), so that child
population indicators follow the children's ages, and back-fills every count when the catalogue changed.
"""
import asyncio
import logging

from kit.consumer import serve
from kit.db import Database
from kit.settings import get_settings

from indicators.clock import china_today
from indicators.domain import catalogue
from indicators.engine import Engine, IndicatorsHandler

log = logging.getLogger("indicators.consumer")


async def keep_time(engine: Engine, db: Database, every_s: float = 60.0) -> None:
    while True:
        try:
            async with db.begin() as conn:
                n = await engine.tick(conn, china_today())
            if n:
                log.info("clock advanced: %d units recomputed", n)
        except Exception:  # the database may be restarting; try again at the next tick
            log.warning("clock tick failed", exc_info=True)
        await asyncio.sleep(every_s)


async def run() -> None:
    settings = get_settings()
    db = Database.for_service(settings, "indicators", pool_size=2)
    engine = Engine(catalogue.load())
    async with db.begin() as conn:
        stale = await engine.backfill_if_changed(conn)
    if stale:
        log.info("catalogue %s changed: %d units recomputed from stored facts", engine.catalogue.digest, stale)
    ticker = asyncio.create_task(keep_time(engine, db))
    try:
        await serve(settings, IndicatorsHandler(engine), db)
    finally:
        ticker.cancel()


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
