"""The FastAPI application every service is built from: errors, auth, request ids, metrics, health."""
from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import ORJSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit import errors, login, logs
from kit.auth import Authenticator, scopes_required
from kit.db import Database
from kit.metrics import HTTP_LATENCY, HTTP_REQUESTS
from kit.settings import Settings, get_settings

log = logging.getLogger("kit.app")
#: Swagger UI's and ReDoc's scripts and styles, shipped by the fastapi-offline package: /docs and /redoc load
#: nothing from a CDN (an isolated health network has none)
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"


def local_docs(app: FastAPI, title: str) -> None:
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{title} · API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(openapi_url="/openapi.json", title=f"{title} · API",
                              redoc_js_url="/docs-assets/redoc.standalone.js",
                              redoc_favicon_url="/docs-assets/favicon.png", with_google_fonts=False)
        # ReDoc's sidebar shows its maker's logo from the maker's CDN, unconditionally: the browser is told
        # not to fetch images, fonts or data from anywhere but here
        page.headers["Content-Security-Policy"] = "img-src 'self' data:; font-src 'self' data:; connect-src 'self'"
        return page


async def broker_reachable(bootstrap: str, timeout: float = 0.5) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
        w.close()
        return True
    except Exception:
        return False


class RequestContext:
    """Request id (from X-Request-ID or new, in every log line and echoed back) and the HTTP metrics.

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware (`@app.middleware("http")`) runs every request
    in an extra task and streams the response through a memory channel, which cost more than the endpoint."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for k, v in scope["headers"]:
            if k == b"x-request-id":
                rid = v.decode("latin-1")
                break
        rid = rid or uuid.uuid4().hex
        rid_header = (b"x-request-id", rid.encode("latin-1"))
        token = logs.request_id.set(rid)
        t0 = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, rid_header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route: Any = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope["method"]
            HTTP_REQUESTS.labels(self.service, method, path, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, path).observe(time.perf_counter() - t0)
            logs.request_id.reset(token)


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
        app.state.authenticator = Authenticator(app.state.auth_db, settings=settings)
        if on_startup is not None:
            await on_startup(app)
        # what startup built (modules, tables, caches) lives as long as the process: out of the collector's
        # sight, a full collection does not walk it again and again in the middle of requests
        gc.collect()
        gc.freeze()
        yield
        await app.state.db.dispose()
        await app.state.auth_db.dispose()

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan,
                  default_response_class=ORJSONResponse, docs_url=None, redoc_url=None)
    errors.install(app)
    local_docs(app, title)

    app.add_middleware(RequestContext, service=service)

    @app.get("/healthz", tags=["health"], summary="Liveness", openapi_extra=login.PUBLIC)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", tags=["health"], summary="Readiness: database and broker reachable", openapi_extra=login.PUBLIC)
    async def readyz(request: Request) -> Response:
        db_ok = await request.app.state.db.ping()
        broker_ok = await broker_reachable(settings.kafka_bootstrap)
        body = {"status": "ok" if db_ok and broker_ok else "unavailable", "database": db_ok, "broker": broker_ok}
        return ORJSONResponse(body, status_code=200 if db_ok and broker_ok else 503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", openapi_extra=login.PUBLIC)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(login.router)  # people log in at any service (kit.login)
    for r in routers:
        document_authorisation(r)
        app.include_router(r)
    return app


def document_authorisation(router: APIRouter) -> None:
    """Write each operation's authorisation into the OpenAPI: `x-mch-scopes` (what its `require(...)` demands)
    or `x-mch-auth` (`none` public, `any` any valid token, set by the route). The authorisation matrix test
    reads them from every service: an operation with neither checks no token, and fails it."""
    for route in router.routes:
        if not isinstance(route, APIRoute) or "x-mch-auth" in (route.openapi_extra or {}):
            continue
        found = scopes_required(route.dependant)
        if found is not None:
            route.openapi_extra = {**(route.openapi_extra or {}), "x-mch-scopes": list(found[0]),
                                   "x-mch-person": found[1]}
