"""The FastAPI application every service is built from: errors, auth, request ids, metrics, health."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import ORJSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kit import errors, logs
from kit.auth import Authenticator
from kit.db import Database
from kit.metrics import HTTP_LATENCY, HTTP_REQUESTS
from kit.settings import Settings, get_settings

log = logging.getLogger("kit.app")


async def broker_reachable(bootstrap: str, timeout: float = 0.5) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
        w.close()
        return True
    except Exception:
        return False


def create_app(
    service: str,
    routers: Sequence[APIRouter],
    *,
    title: str,
    description: str = "",
    on_startup: Callable[[FastAPI], Awaitable[None]] | None = None,
    settings: Settings | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    logs.setup(service, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.db = Database.for_service(settings, service)
        app.state.auth_db = Database(settings.dsn(settings.auth_database, settings.role(service)), 2)
        app.state.authenticator = Authenticator(app.state.auth_db)
        if on_startup is not None:
            await on_startup(app)
        yield
        await app.state.db.dispose()
        await app.state.auth_db.dispose()

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan,
                  default_response_class=ORJSONResponse)
    errors.install(app)

    @app.middleware("http")
    async def request_context(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        token = logs.request_id.set(rid)
        t0 = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["X-Request-ID"] = rid
            return response
        finally:
            route: Any = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            HTTP_REQUESTS.labels(service, request.method, path, str(status)).inc()
            HTTP_LATENCY.labels(service, request.method, path).observe(time.perf_counter() - t0)
            logs.request_id.reset(token)

    @app.get("/healthz", tags=["health"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", tags=["health"], summary="Readiness: database and broker reachable")
    async def readyz(request: Request) -> Response:
        db_ok = await request.app.state.db.ping()
        broker_ok = await broker_reachable(settings.kafka_bootstrap)
        body = {"status": "ok" if db_ok and broker_ok else "unavailable", "database": db_ok, "broker": broker_ok}
        return ORJSONResponse(body, status_code=200 if db_ok and broker_ok else 503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for r in routers:
        app.include_router(r)
    return app
