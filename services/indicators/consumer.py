"""The indicators consumer process: `python -m indicators.consumer`.

Besides applying events, it keeps the engine's clock at the current month (China time), so that child
population indicators follow the children's ages, and back-fills every count when the catalogue changed (in
chunks, while the events keep being applied).
"""
import asyncio
import logging

from kit.consumer import serve
from kit.db import Database
from kit.settings import get_settings
from prometheus_client import Gauge

from indicators.clock import china_today
from indicators.domain import catalogue
from indicators.engine import Engine, IndicatorsHandler

log = logging.getLogger("indicators.consumer")
BACKFILL_REMAINING = Gauge("mch_indicators_backfill_remaining_units",
                           "units still computed under an older catalogue (a back-fill in progress)")


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
    backfiller = asyncio.create_task(backfill(engine, db))
    ticker = asyncio.create_task(keep_time(engine, db))
    try:
        await serve(settings, IndicatorsHandler(engine), db)
    finally:
        ticker.cancel()
        backfiller.cancel()


async def backfill(engine: Engine, db: Database) -> None:
    """Back-fill a catalogue change in chunks beside the live events (progress: the `backfill` table, the
    `mch_indicators_backfill_remaining_units` gauge, `python -m indicators.admin backfill-status`)."""
    def progress(done: int, total: int) -> None:
        BACKFILL_REMAINING.set(total - done)

    try:
        n = await engine.backfill(db, progress=progress)
    except Exception:  # the database may be restarting: the next start resumes (the stale units are still stale)
        log.warning("back-fill failed", exc_info=True)
        return
    BACKFILL_REMAINING.set(0)
    if n:
        log.info("catalogue %s: %d units back-filled from stored facts", engine.catalogue.digest, n)


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
