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

from kit import errors, guard, login, logs
from kit.auth import Authenticator, scopes_required
from kit.db import Database
from kit.metrics import HTTP_LATENCY, HTTP_REQUESTS
from kit.openapi_docs import add_problem_responses, extend_openapi
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


#: methods whose request may carry a body (the platform's bodies are JSON)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyTooLarge(Exception):
    """The body went past the limit while it was being read."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, refused as soon as it passes `limit` (chunked bodies have no Content-Length)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then waits on the real one (disconnects)."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


class RequestContext:
    """Request id (from X-Request-ID or new, in every log line, echoed back and in every problem body), the HTTP
    metrics, the request's guards (body size, content type, kit.guard's bad values) and the last word on errors.

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware (`@app.middleware("http")`) runs every request
    in an extra task and streams the response through a memory channel, which cost more than the endpoint.

    An exception no handler took used to leave this middleware after Starlette's error middleware had answered;
    uvicorn then closed the keep-alive connection without a word, and the client's next request on it failed.
    Here it is answered as a problem (500 with the request id, or 503) and goes no further."""

    def __init__(self, app: ASGIApp, service: str, max_body_bytes: int = 8 * 1024 * 1024) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for k, v in scope["headers"]:
            if k == b"x-request-id":
                rid = v.decode("latin-1")
                break
        rid = rid if rid and len(rid) <= 200 and rid.isprintable() else uuid.uuid4().hex
        rid_header = (b"x-request-id", rid.encode("latin-1"))
        token = logs.request_id.set(rid)
        t0 = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                headers = [h for h in message.get("headers", ()) if h[0].lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, rid_header]}
            await send(message)

        try:
            refusal = await self._guard(scope, receive)
            if isinstance(refusal, errors.Problem):
                await errors.problem_response(refusal)(scope, receive, send_with_id)
            else:
                await self.app(scope, refusal, send_with_id)
        except Exception as exc:
            if started:  # part of an answer is out: nothing sensible can follow it on this connection
                raise
            await errors.problem_response(errors.unexpected(exc))(scope, receive, send_with_id)
        finally:
            route: Any = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope["method"]
            HTTP_REQUESTS.labels(self.service, method, path, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, path).observe(time.perf_counter() - t0)
            logs.request_id.reset(token)

    async def _guard(self, scope: Scope, receive: Receive) -> errors.Problem | Receive:
        """A problem refusing the request before any router sees it, or the `receive` the app reads it from."""
        refusal = guard.path_refusal(scope) or guard.query_refusal(scope["query_string"])
        if refusal is not None or scope["method"] not in BODY_METHODS:
            return refusal or receive
        length = content_type = None
        for k, v in scope["headers"]:
            if k == b"content-length":
                length = v
            elif k == b"content-type":
                content_type = v.decode("latin-1")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return self._too_large()
        try:
            body = await read_body(receive, self.max_body_bytes)
        except BodyTooLarge:
            return self._too_large()
        if not body:
            return replay(body, receive)
        if not guard.is_json(content_type):
            return errors.invalid("content-type", f"the body must be application/json, not {content_type or 'untyped'}",
                                  415)
        return guard.body_refusal(body) or replay(body, receive)

    def _too_large(self) -> errors.Problem:
        # the connection stays open: uvicorn discards the rest of the body, so a client that sends the whole body
        # before reading the answer gets the 413 (closing would break its write)
        return errors.invalid("body", f"larger than {self.max_body_bytes} bytes; send fewer items per request", 413)


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
    extend_openapi(app, add_problem_responses)
    local_docs(app, title)

    app.add_middleware(RequestContext, service=service, max_body_bytes=settings.max_body_bytes)

    @app.get("/healthz", tags=["health"], summary="Liveness", openapi_extra=login.PUBLIC)
    async def healthz() -> dict[str, str]:
        """The process answers (for a supervisor's liveness probe); checks nothing else."""
        return {"status": "ok", "service": service}

    @app.get("/readyz", tags=["health"], summary="Readiness: database and broker reachable", openapi_extra=login.PUBLIC)
    async def readyz(request: Request) -> Response:
        """200 when the service's database and the broker are reachable, 503 (with which one is not) otherwise: a
        load balancer sends requests only to a ready instance."""
        db_ok = await request.app.state.db.ping()
        broker_ok = await broker_reachable(settings.kafka_bootstrap)
        body = {"status": "ok" if db_ok and broker_ok else "unavailable", "database": db_ok, "broker": broker_ok}
        return ORJSONResponse(body, status_code=200 if db_ok and broker_ok else 503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", openapi_extra=login.PUBLIC)
    async def metrics() -> Response:
        """Prometheus text exposition: request counts and latencies per route, outbox and consumer lag, pool use."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if settings.test_routes:
        @app.get("/__test__/error", include_in_schema=False)
        async def fail_on_purpose() -> None:
            """An unexpected error on purpose (test stacks only): the answer and the connection after it."""
            raise RuntimeError("an unexpected error on purpose")

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
