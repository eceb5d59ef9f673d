"""The indicators service: live indicator values by region and period."""
from fastapi import FastAPI
from kit.app import create_app

from indicators.api.routes import router
from indicators.domain import catalogue
from indicators.engine import Engine


async def _startup(app: FastAPI) -> None:
    app.state.engine = Engine(catalogue.load())


app = create_app("indicators", [router], title="MCH indicators", on_startup=_startup,
                 description="Every indicator of the MCH catalogue, incremental and exact, by region and period.")
