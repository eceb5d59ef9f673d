"""RFC 9457 problem+json errors. Every 4xx/5xx of the platform has this shape:
`{type, title, status, detail, errors?: [{field, reason}]}`."""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from kit.db import is_unavailable
from kit.logs import request_id
from kit.records import DomainError, field_error

log = logging.getLogger("kit.errors")
PROBLEM = "application/problem+json"
TYPE_BASE = "https://mch.example.cn/problems/"


class Problem(Exception):
    """Raise from routers or services; becomes a problem+json response and rolls the transaction back."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        kind: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail or title
        self.kind = kind or title.lower().replace(" ", "-")
        self.errors = errors
        self.headers = headers

    def body(self) -> dict[str, Any]:
        b: dict[str, Any] = {
            "type": TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            b["errors"] = self.errors
        if rid := request_id.get():  # what a caller quotes to the operators, who find it in every log line
            b["request_id"] = rid
        return b


def invalid(field: str, reason: str, status: int = 422) -> Problem:
    """One field is wrong: the usual validation problem."""
    return Problem(status, "Invalid request", f"{field}: {reason}", kind="validation",
                   errors=[field_error(field, reason)])


def invalid_many(errors: list[dict[str, str]], status: int = 422) -> Problem:
    detail = "; ".join(f"{e['field']}: {e['reason']}" for e in errors)
    return Problem(status, "Invalid request", detail, kind="validation", errors=errors)


def not_found(what: str, key: str) -> Problem:
    return Problem(404, "Not found", f"{what} {key} does not exist", kind="not-found")


def conflict(detail: str, field: str | None = None) -> Problem:
    return Problem(409, "Conflict", detail, kind="conflict",
                   errors=[field_error(field, detail)] if field else None)


#: the title and problem type of a status that is not a validation failure
TITLES = {400: ("Bad request", "bad-request"), 401: ("Unauthorized", "unauthorized"),
          403: ("Forbidden", "forbidden"), 404: ("Not found", "not-found"),
          405: ("Method not allowed", "method-not-allowed"), 409: ("Conflict", "conflict"),
          413: ("Content too large", "too-large"), 415: ("Unsupported media type", "unsupported-media-type"),
          429: ("Too many requests", "rate-limited")}


def domain_problem(exc: DomainError) -> Problem:
    """A broken domain rule as a problem: 422 names the fields; another status keeps its own title, so services
    raise `DomainError` and never build HTTP answers themselves."""
    if exc.status == 422:
        return invalid_many(exc.errors, exc.status)
    title, kind = TITLES.get(exc.status, ("Invalid request", "validation"))
    return Problem(exc.status, title, str(exc), kind=kind, errors=exc.errors)


def unexpected(exc: BaseException) -> Problem:
    """An error no one handled: 503 when the database is away (nothing changed, retry), else a 500 that shows
    nothing of the error — the request id in the answer finds its traceback in the logs."""
    if is_unavailable(exc):
        log.warning("database unavailable: %s", exc)
        return Problem(503, "Service unavailable", "the database is not reachable; nothing was changed, retry later",
                       kind="unavailable", headers={"Retry-After": "1"})
    log.error("unhandled error", exc_info=exc)
    return Problem(500, "Internal error", "an unexpected error; nothing was changed (quote the request id)")


def problem_response(p: Problem) -> JSONResponse:
    return JSONResponse(p.body(), status_code=p.status, media_type=PROBLEM, headers=p.headers)


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(x) for x in loc if x not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for e in exc.errors():
        msg = e.get("msg", "invalid")
        if e.get("type") == "json_invalid":  # the body is not JSON: say where it stops being JSON
            loc = e.get("loc", ())
            pos = loc[1] if len(loc) > 1 else 0
            out.append(field_error("body", f"not valid JSON at position {pos}: {e.get('ctx', {}).get('error', msg)}"))
            continue
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        out.append(field_error(_loc_to_field(e.get("loc", ())), msg))
    return out


def install(app: FastAPI) -> None:
    """One handler per error vocabulary, so routers and use cases need no try/except: `Problem`, a domain rule
    (`kit.records.DomainError`), request validation, Starlette's HTTP errors (404 of an unknown path, 405) and
    anything unexpected (kit.app.RequestContext answers those first, keeping the connection)."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return problem_response(domain_problem(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(invalid_many(validation_errors(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        title, kind = TITLES.get(exc.status_code, ("Error", "error"))
        detail = str(exc.detail) if exc.detail else title
        # the framework's 400 is a body it could not read: name the body like any other field
        errs = [field_error("body", detail)] if exc.status_code == 400 else None
        return problem_response(Problem(exc.status_code, title, detail, kind=kind, errors=errs,
                                        headers=dict(exc.headers) if exc.headers else None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return problem_response(unexpected(exc))
