"""The screening consumer process: `python -m screening.consumer`.

Keeps screening's own view of the registry (institutions, persons with residence history, pregnancies,
deliveries, graded prenatal visits) from the registry's events, never from its tables, and opens the
high-risk pregnancy cases (高危孕产妇专案管理) when a visit first carries an orange / red / purple grade.
"""
import asyncio
from collections.abc import Sequence

from kit.consumer import Consumed, serve
from kit.db import Database
from kit.settings import get_settings
from sqlalchemy.ext.asyncio import AsyncConnection

from screening import service
from screening.events import read


class RegistryView:
    name = "screening"

    def __init__(self, topics: Sequence[str]) -> None:
        self.topics = topics

    async def apply(self, conn: AsyncConnection, events: Sequence[Consumed]) -> None:
        parsed = [p for p in (read.parse(c.envelope) for c in events) if p is not None]
        await service.apply_registry_events(conn, parsed)


async def run() -> None:
    settings = get_settings()
    db = Database.for_service(settings, "screening", pool_size=2)
    await serve(settings, RegistryView([settings.topic("registry")]), db)


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
