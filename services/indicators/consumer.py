"""The indicators consumer process: `python -m indicators.consumer`."""
import asyncio

from kit.consumer import serve
from kit.db import Database
from kit.settings import get_settings

from indicators.domain import catalogue
from indicators.engine import Engine, IndicatorsHandler


def main() -> None:
    settings = get_settings()
    db = Database.for_service(settings, "indicators", pool_size=2)
    asyncio.run(serve(settings, IndicatorsHandler(Engine(catalogue.load())), db))


if __name__ == "__main__":
    main()
