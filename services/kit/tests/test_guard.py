"""kit.guard's refusals, kit.downloads' header, and kit.app.RequestContext served by a real uvicorn: an unexpected
error, a body too large or of the wrong type, each answered as problem+json on a connection that stays usable."""
from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import Body, FastAPI

from kit import errors, guard
from kit.app import RequestContext
from kit.downloads import attachment
from kit.records import fail


def refused(body: bytes) -> tuple[str, str] | None:
    p = guard.body_refusal(body)
    if p is None:
        return None
    assert p.errors is not None
    return p.errors[0]["field"], p.errors[0]["reason"]


@pytest.mark.parametrize("body, field", [
    (b'{"name": "a\\u0000b"}', "name"),
    (b'{"a": {"b": [1, "\\ud800"]}}', "a.b.1"),
    (b'[{"ok": 1}, {"x\\u0000": 1}]', "1.x\x00"),
    (b'{"v": NaN}', "v"), (b'{"v": -Infinity}', "v"), (b'{"v": 1e400}', "v"),
    (b'{"v": 2147483648}', "v"), (b'{"v": -2147483648}', "v"), (b'{"v": 1e10}', "v"),
    (b'{"v": 123456789012345678901234567890}', "v"),
])
def test_values_no_endpoint_takes_are_refused_by_their_field(body: bytes, field: str) -> None:
    got = refused(body)
    assert got is not None and got[0] == field, got


@pytest.mark.parametrize("body", [
    b'{"name": "\xe7\x8e\x8b\xe8\x8a\xb3", "phone": "13912345678", "id": "320582199001011234"}',
    b'{"v": 2147483647, "w": -2147483647, "x": 1e9, "y": 1e-300, "z": 12.5}',
    b'{"emoji": "\\ud83d\\ude00", "text": "NaN and Infinity are words", "esc": "\\\\u0000"}',
    b'{"broken": ', b'',
])
def test_ordinary_and_malformed_bodies_go_on(body: bytes) -> None:
    """Malformed JSON goes on: the framework's parser names where it breaks."""
    assert refused(body) is None


def test_a_body_that_is_not_utf8_is_refused_at_its_byte() -> None:
    assert refused(b'{"name": "\xff"}') == ("body", "not UTF-8 at byte 10")
    assert refused(b'{"name": "\xed\xa0\x80"}') == ("body", "not UTF-8 at byte 10")  # an encoded surrogate


def test_nul_in_a_query_parameter_names_it() -> None:
    p = guard.query_refusal(b"from=2026-01-01&institution_code=H%00x")
    assert p is not None and p.errors == [{"field": "institution_code", "reason": "contains a NUL character"}]
    assert guard.query_refusal(b"a=%2500") is None


def test_a_download_name_in_chinese_is_rfc_5987() -> None:
    cd = attachment('年报 "321324".xlsx')["Content-Disposition"]
    assert cd.isascii() and cd.startswith('attachment; filename="321324_.xlsx"')
    assert unquote(cd.split("filename*=UTF-8''")[1]) == '年报 "321324".xlsx'


# ------------------------------------------------------------------ the middleware, served by uvicorn
LIMIT = 1000


def _app() -> FastAPI:
    app = FastAPI()
    errors.install(app)
    app.add_middleware(RequestContext, service="test", max_body_bytes=LIMIT)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail")

    @app.get("/down")
    async def down() -> None:
        """A database that does not answer (nothing listens on the port)."""
        port = _free_port()
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", timeout=2)
        await conn.close()

    @app.get("/rule")
    async def rule() -> None:
        raise fail("thing", "is not allowed", 409)

    @app.post("/echo/{key}")
    async def echo(key: str, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        return {"key": key, **body}

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def exchange(port: int, paths: list[str]) -> list[bytes]:
    """GETs one after another on ONE TCP connection; each answer's status line, b"" once the server closed it
    (an HTTP client library would quietly open a new connection and hide that)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    for path in paths:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            out.append(b"")
            break
        length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        out.append(head.split(b"\r\n")[0])
    writer.close()
    return out


@pytest.fixture
async def served() -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app(), log_level="critical", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, no event)
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_an_unexpected_error_keeps_the_connection(served: str) -> None:
    """uvicorn closes a connection when an exception leaves the app after an answer was sent: the middleware
    answers it and lets nothing escape."""
    port = int(served.rsplit(":", 1)[1])
    assert await exchange(port, ["/nowhere", "/boom", "/rule", "/down", "/boom", "/nowhere"]) == [
        b"HTTP/1.1 404 Not Found", b"HTTP/1.1 500 Internal Server Error", b"HTTP/1.1 409 Conflict",
        b"HTTP/1.1 503 Service Unavailable", b"HTTP/1.1 500 Internal Server Error", b"HTTP/1.1 404 Not Found"]


async def test_errors_are_problems_and_the_connection_stays(served: str) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=served, limits=limits) as c:
        r = await c.get("/boom", headers={"X-Request-ID": "rid-1"})
        assert (r.status_code, r.headers["content-type"], r.json()["request_id"]) == \
            (500, errors.PROBLEM, "rid-1")
        assert "secret" not in r.text
        r = await c.get("/down")
        assert (r.status_code, r.headers["retry-after"], r.json()["title"]) == (503, "1", "Service unavailable")
        r = await c.get("/rule")
        assert (r.status_code, r.json()["title"], r.json()["errors"]) == \
            (409, "Conflict", [{"field": "thing", "reason": "is not allowed"}])
        r = await c.post("/echo/a", content=b'{"x": "' + b"y" * LIMIT + b'"}',
                         headers={"content-type": "application/json"})
        assert (r.status_code, r.json()["errors"][0]["field"]) == (413, "body")

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(LIMIT // 100 + 2):
                yield b" " * 100

        r = await c.post("/echo/a", content=chunks(), headers={"content-type": "application/json"})
        assert (r.status_code, r.json()["errors"][0]["field"]) == (413, "body")
        r = await c.post("/echo/a", content=b"x=1", headers={"content-type": "text/plain"})
        assert (r.status_code, r.json()["errors"][0]["field"]) == (415, "content-type")
        r = await c.post("/echo/a", content=b'{"x": 1,}', headers={"content-type": "application/json"})
        assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "body")
        assert "position 8" in r.json()["errors"][0]["reason"]
        r = await c.post("/echo/a%00b", json={"x": 1})
        assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "key")
        r = await c.get("/nowhere")
        assert (r.status_code, r.headers["content-type"]) == (404, errors.PROBLEM)
        r = await c.post("/echo/ok", json={"x": 1})
        assert (r.status_code, r.json()) == (200, {"key": "ok", "x": 1})
