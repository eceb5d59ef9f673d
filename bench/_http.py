"""A lean keep-alive HTTP/1.1 client for the load phases of the benchmarks (one connection per simulated client).

httpx costs the load generator about a millisecond of CPU per request, taken from the same two cores as the
services it measures; like wrk, this one only writes a request and reads the status, headers and a
Content-Length body, so the figures measure the services, not the client."""
from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import orjson


class LeanClient:
    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        u = urlsplit(base_url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{self.host}:{self.port}", **headers}.items())
        self._r: asyncio.StreamReader | None = None
        self._w: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        """POST a JSON body; (status, parsed JSON answer). Reconnects once if the server closed the connection."""
        data = orjson.dumps(body)
        head = (f"POST {path} HTTP/1.1\r\n{self._fixed}Content-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()
        for attempt in (0, 1):
            if self._w is None:
                self._r, self._w = await asyncio.open_connection(self.host, self.port)
            assert self._r is not None
            try:
                self._w.write(head + data)
                status_line = await self._r.readuntil(b"\r\n")
                if not status_line:
                    raise ConnectionResetError
                length, close = 0, False
                while (line := await self._r.readuntil(b"\r\n")) != b"\r\n":
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and value.strip().lower() == "close":
                        close = True
                payload = await self._r.readexactly(length) if length else b""
                if close:
                    await self.close()
                return int(status_line.split()[1]), orjson.loads(payload) if payload else None
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._w is not None:
            self._w.close()
            self._w = None
            self._r = None
