"""The certificates service: blank stock, custodians, issuance (出生医学证明), verification, register."""
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from kit.app import create_app
from kit.ratelimit import RateLimit

from certificates.api.routes import router
from certificates.store import sql


async def startup(app: FastAPI) -> None:
    # the units of work run on a plain asyncpg pool (no ORM layer on the hot path of issuing); a bounded number
    # at once: more clerks queue for a connection instead of opening more on a shared server
    app.state.pg = await sql.pool(app.state.settings)
    # verification answers whether a serial, a name and a birth date belong together: limited per client, so a
    # token cannot be used to guess its way through the register
    settings = app.state.settings
    app.state.verify_limit = RateLimit(settings.rate_limit_per_second, settings.rate_limit_burst)


app = create_app("certificates", [router], on_startup=startup, title="MCH certificates",
                 description="Birth-certificate stock ledger (证件库存), custodians (专人管理, 证章分离), "
                 "issue / reissue / replacement / void, verification for public security, issuance register.")
_lifespan = app.router.lifespan_context


@asynccontextmanager
async def _closing(a: FastAPI) -> AsyncIterator[None]:
    async with _lifespan(a):
        yield
        await a.state.pg.close()


app.router.lifespan_context = _closing
