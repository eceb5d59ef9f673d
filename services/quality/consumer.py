"""The quality consumer process: `python -m quality.consumer`.

Reads the registry's, the certificates' and screening's topics with kit's consumer loop (exactly once: each batch
and its checkpoint in one transaction of quality's own database), keeps quality's copy of their records and
evaluates the rules on every unit a batch touches. Beside the loop, a sweep looks again, every
MCH_QUALITY_SWEEP_S seconds, at the units whose time-based rules fall due (28 days after birth, a case's due date)
with "today" from kit.clock."""
import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence

from kit.consumer import Consumed, serve
from kit.db import Database
from kit.settings import get_settings
from sqlalchemy.ext.asyncio import AsyncConnection

from quality import service
from quality.events import read

log = logging.getLogger("quality.consumer")


class QualityView:
    name = "quality"

    def __init__(self, topics: Sequence[str]) -> None:
        self.topics = topics

    async def apply(self, conn: AsyncConnection, events: Sequence[Consumed]) -> None:
        parsed = [p for p in (read.parse(c.envelope) for c in events) if p is not None]
        await service.apply_events(conn, parsed)


async def sweeper(db: Database, every_s: float) -> None:
    while True:
        try:
            n = await service.sweep(db)
            if n:
                log.info("sweep: %d units looked at again", n)
        except Exception:  # a failed sweep is tried again at the next tick; the consumer goes on
            log.exception("sweep failed")
        await asyncio.sleep(every_s)


async def run() -> None:
    settings = get_settings()
    db = Database.for_service(settings, "quality", pool_size=2)
    task = asyncio.create_task(sweeper(db, float(os.environ.get("MCH_QUALITY_SWEEP_S", "60"))))
    try:
        await serve(settings, QualityView([settings.topic(s) for s in read.SOURCES]), db)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
