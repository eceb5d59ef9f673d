"""The certificates consumer process: `python -m certificates.consumer` (registry facts for first issues)."""
import asyncio

from kit.consumer import serve
from kit.db import Database
from kit.settings import get_settings

from certificates.events.registry import RegistryFacts


async def run() -> None:
    settings = get_settings()
    await serve(settings, RegistryFacts(), Database.for_service(settings, "certificates", pool_size=2))


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
