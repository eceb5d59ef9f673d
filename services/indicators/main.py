"""The indicators service: live indicator values by region and period."""
import asyncio
import os
from pathlib import Path

from fastapi import FastAPI
from kit.app import create_app

from indicators.api import filings, populations, targets
from indicators.api.routes import router
from indicators.domain import approval, catalogue
from indicators.engine import Engine
from indicators.headline import keep_fresh
from indicators.reports import forms
from indicators.reports.routes import router as reports_router
from indicators.service import Filings, Populations, Targets


async def _startup(app: FastAPI) -> None:
    app.state.engine = Engine(catalogue.load())
    headers = os.environ.get("MCH_FORM_HEADERS")
    app.state.forms = forms.load_all(app.state.engine.catalogue, headers=Path(headers) if headers else None)
    app.state.targets = Targets(app.state.db, app.state.engine.catalogue)
    app.state.populations = Populations(app.state.db, app.state.engine)
    app.state.filings = Filings(app.state.db, app.state.engine.catalogue, approval.all_levels())
    app.state.headline = asyncio.create_task(keep_fresh(app.state.db, app.state.engine.catalogue))


app = create_app("indicators", [router, filings.router, targets.router, populations.router, reports_router],
                 title="MCH indicators",
                 on_startup=_startup,
                 description="Every indicator of the MCH catalogue, incremental and exact, by region and period.")
