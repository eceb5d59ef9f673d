"""The certificates service: blank stock, custodians, issuance (出生医学证明), verification, register."""
import asyncio

from fastapi import FastAPI
from kit.app import create_app

from certificates.api.routes import router


async def startup(app: FastAPI) -> None:
    # at most pool_size units of work at once: more clerks wait here for their turn instead of timing out
    # on the connection pool (5 s) or opening overflow connections on a shared server
    app.state.gate = asyncio.Semaphore(app.state.settings.pool_size)


app = create_app("certificates", [router], on_startup=startup, title="MCH certificates",
                 description="Birth-certificate stock ledger (证件库存), custodians (专人管理, 证章分离), "
                 "issue / reissue / replacement / void, verification for public security, issuance register.")
