"""The certificate office console (出生医学证明办公室): a web console for the clerks, the office head and public
security, served as a fifth process. It calls the four services' REST APIs with the logged-in person's token and
keeps no database: `uvicorn console.main:app`."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from console import pages, quality_pages
from console.client import Api, ApiError
from console.settings import ConsoleSettings, get_settings
from console.web import HERE, CsrfFailed, LoginRequired, SecurityHeaders, render, verify_limit


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    s = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=s.request_timeout_s,
                                     limits=httpx.Limits(max_connections=100, max_keepalive_connections=100)) as http:
            app.state.api = Api(s, http)
            yield

    app = FastAPI(title="出生医学证明办公室", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = s
    app.state.verify_limit = verify_limit(s.verify_per_second, s.verify_burst)
    app.add_middleware(SessionMiddleware, secret_key=s.secret(), session_cookie="mch_console",
                       max_age=s.session_max_age_s, same_site="strict", https_only=s.secure_cookies)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(quality_pages.router)
    _handlers(app)
    return app


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> HTMLResponse:
        return render(request, "error.html", 403, title="页面已过期",
                      message="表单已失效（安全校验未通过），请返回刷新页面后重试。")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> HTMLResponse | RedirectResponse:
        if exc.status == 401:
            request.session.clear()
            return RedirectResponse("/login", status_code=303)
        status = exc.status if exc.status < 500 else 502
        return render(request, "error.html", status, title=pages.status_title(exc.status), message=exc.detail)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> HTMLResponse:
        return render(request, "error.html", 500, title="系统错误", message="处理时出现错误，请稍后重试或联系运维。")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")


app = create_app()
