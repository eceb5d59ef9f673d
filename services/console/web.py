"""The console's web mechanics: the session (a signed, HttpOnly cookie holding the person's tokens), CSRF
tokens on every form, security headers, templates, and the per-address limit of the public verification.

No database: everything a page needs is in the session or asked of the services with the person's token."""
from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from kit.ratelimit import RateLimit
from starlette.datastructures import FormData
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console.client import Api, ApiError

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")

#: nothing is loaded from anywhere but the console itself (卫生专网: no internet); no inline script at all
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'")
#: refresh the access token when it has less than this left
REFRESH_MARGIN_S = 60


class LoginRequired(Exception):
    """No session, or the session ended: the page answers with a redirect to the login page."""


class CsrfFailed(Exception):
    pass


@dataclass
class Session:
    """The logged-in person, as the service answered at login."""

    token: str
    account: dict[str, Any]

    @property
    def institution_code(self) -> str:
        return str(self.account.get("institution_code") or "")

    def has_role(self, role: str) -> bool:
        return role in (self.account.get("roles") or [])


def csrf_token(request: Request) -> str:
    """The session's CSRF token (synchroniser pattern), created on first use."""
    tok = request.session.get("csrf")
    if not tok:
        tok = secrets.token_urlsafe(32)
        request.session["csrf"] = tok
    return str(tok)


async def checked_form(request: Request) -> FormData:
    """The posted form, after its CSRF token matched the session's (every POST goes through here)."""
    form = await request.form()
    given = str(form.get("csrf_token") or "")
    expected = str(request.session.get("csrf") or "")
    if not expected or not hmac.compare_digest(given, expected):
        raise CsrfFailed()
    return form


def start_session(request: Request, answer: dict[str, Any]) -> None:
    """After a login: a new session (new CSRF token: no fixation) with the tokens and who logged in."""
    request.session.clear()
    request.session.update({
        "csrf": secrets.token_urlsafe(32), "access": answer["access_token"],
        "refresh": answer.get("refresh_token"), "exp": time.time() + float(answer.get("expires_in", 900)),
        "account": answer.get("account") or {},
    })


async def session(request: Request) -> Session:
    """The logged-in person (dependency of every staff page); the access token is refreshed when near its end."""
    access = request.session.get("access")
    if not access:
        raise LoginRequired()
    if float(request.session.get("exp", 0)) - time.time() < REFRESH_MARGIN_S:
        access = await _refresh(request)
    return Session(str(access), dict(request.session.get("account") or {}))


async def _refresh(request: Request) -> str:
    refresh = request.session.get("refresh")
    if not refresh:
        request.session.clear()
        raise LoginRequired()
    api: Api = request.app.state.api
    try:
        answer = await api.refresh(str(refresh))
    except ApiError as e:
        request.session.clear()
        raise LoginRequired() from e
    request.session.update({"access": answer["access_token"], "refresh": answer.get("refresh_token"),
                            "exp": time.time() + float(answer.get("expires_in", 900))})
    return str(answer["access_token"])


def render(request: Request, name: str, status: int = 200, **ctx: Any) -> Any:
    acct = request.session.get("account") if request.session.get("access") else None
    return templates.TemplateResponse(request, name, {"csrf": csrf_token(request), "me": acct, **ctx},
                                      status_code=status)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def verify_limit(per_second: float, burst: int) -> RateLimit:
    return RateLimit(per_second, burst)


class SecurityHeaders:
    """CSP, no framing, no sniffing, no referrer (a serial in a URL goes nowhere), no caching of staff pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers += [(b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY"),
                            (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with)
