"""The console's calls to the four services (httpx), with the logged-in person's token.

Every contract the console depends on is here and nowhere else, so a change of a service's API is a change of
this module. The console never decides what a person may do: the services do, from the token; the console
shows what they answered (a refusal included)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote

import httpx

from console.settings import ConsoleSettings

#: a read answered 503 (the service's database momentarily out of connections) is asked up to this many times
READ_ATTEMPTS = 3


@dataclass
class ApiError(Exception):
    """A service's RFC 9457 answer (or an unreachable service), kept for the page to show."""

    status: int
    detail: str
    #: field → reason, from the problem's `errors`
    fields: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status}: {self.detail}"


class Api:
    def __init__(self, settings: ConsoleSettings, http: httpx.AsyncClient) -> None:
        self.s = settings
        self.http = http

    # -------------------------------------------------------------- plumbing
    async def _call(self, method: str, url: str, token: str | None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for attempt in range(READ_ATTEMPTS if method == "GET" else 1):
            try:
                r = await self.http.request(method, url, headers=headers, **kw)
            except httpx.HTTPError as e:
                raise ApiError(503, f"服务暂时无法访问（{type(e).__name__}），请稍后重试") from e
            if r.status_code != 503 or attempt == READ_ATTEMPTS - 1 or method != "GET":
                break
            # a read the service could not serve just now (its database refused a connection): nothing changed,
            # so it is asked again after a moment rather than shown to the clerk as an error page
            await asyncio.sleep(0.2 * (attempt + 1))
        if r.status_code >= 400:
            raise _problem(r)
        return r

    async def _json(self, method: str, url: str, token: str | None, **kw: Any) -> Any:
        return (await self._call(method, url, token, **kw)).json()

    def _reg(self, path: str) -> str:
        return self.s.registry_url + path

    def _cert(self, path: str) -> str:
        return self.s.certificates_url + path

    # -------------------------------------------------------------- login (kit's /v1/auth at every service)
    async def login(self, username: str, password: str) -> dict[str, Any]:
        return dict(await self._json("POST", self._reg("/v1/auth/login"), None,
                                     json={"username": username, "password": password}))

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        return dict(await self._json("POST", self._reg("/v1/auth/refresh"), None,
                                     json={"refresh_token": refresh_token}))

    async def me(self, token: str) -> dict[str, Any]:
        return dict(await self._json("GET", self._reg("/v1/auth/me"), token))

    # -------------------------------------------------------------- the registry (the delivery record)
    async def person(self, token: str, person_id: str) -> dict[str, Any]:
        return dict(await self._json("GET", self._reg(f"/v1/persons/{_seg(person_id)}"), token))

    async def pregnancy(self, token: str, pregnancy_id: str) -> dict[str, Any]:
        return dict(await self._json("GET", self._reg(f"/v1/pregnancies/{_seg(pregnancy_id)}"), token))

    async def institution(self, token: str, code: str) -> dict[str, Any]:
        return dict(await self._json("GET", self._reg(f"/v1/institutions/{_seg(code)}"), token))

    async def births_at(self, token: str, institution_code: str, q: str = "",
                        birth_date: date | None = None) -> list[dict[str, Any]]:
        """The registry's live births at the institution found by the mother's name / ID number / record number
        (住院号) and/or birth date, the mother's fields masked as the person's role allows (and audited there)."""
        params: dict[str, str] = {}
        if q:
            params["q"] = q
        if birth_date:
            params["birth_date"] = birth_date.isoformat()
        out = await self._json("GET", self._reg(f"/v1/institutions/{_seg(institution_code)}/births"), token,
                               params=params)
        return list(out.get("items", []))

    # -------------------------------------------------------------- certificates
    async def worklist(self, token: str, institution_code: str,
                       birth_date: date | None = None) -> list[dict[str, Any]]:
        """Live births of the institution without a valid certificate, oldest first (待签发)."""
        params: dict[str, str] = {"institution_code": institution_code}
        if birth_date:
            params["birth_date"] = birth_date.isoformat()
        out = await self._json("GET", self._cert("/v1/worklist"), token, params=params)
        return list(out.get("items", []))

    async def child(self, token: str, child_id: str) -> dict[str, Any]:
        return dict(await self._json("GET", self._cert(f"/v1/children/{_seg(child_id)}"), token))

    async def prepare(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._json("POST", self._cert("/v1/certificates"), token, json=body))

    async def certificate(self, token: str, serial: str) -> dict[str, Any]:
        return dict(await self._json("GET", self._cert(f"/v1/certificates/{_seg(serial)}"), token))

    async def seal(self, token: str, serial: str) -> dict[str, Any]:
        return dict(await self._json("POST", self._cert(f"/v1/certificates/{_seg(serial)}/seal"), token, json={}))

    async def void(self, token: str, serial: str, reason: str) -> dict[str, Any]:
        return dict(await self._json("POST", self._cert(f"/v1/certificates/{_seg(serial)}/void"), token,
                                     json={"reason": reason}))

    async def record_print(self, token: str, serial: str, reason: str | None) -> dict[str, Any]:
        """Count and audit one printed sheet; the service refuses a reprint without a reason."""
        body = {"reason": reason} if reason else {}
        return dict(await self._json("POST", self._cert(f"/v1/certificates/{_seg(serial)}/prints"), token,
                                     json=body))

    async def register(self, token: str, institution_code: str, start: date, end: date,
                       fmt: str = "json") -> httpx.Response:
        return await self._call("GET", self._cert("/v1/certificates/register"), token,
                                params={"institution_code": institution_code, "from": start.isoformat(),
                                        "to": end.isoformat(), "format": fmt})

    async def stock_report(self, token: str, start: date, end: date, institution_code: str = "",
                           region: str = "") -> dict[str, Any]:
        """One institution's stock, or (no institution: the office head at the bureau) every institution's of
        the region and the bureau's own."""
        where = {"institution_code": institution_code} if institution_code else {"region": region}
        return dict(await self._json("GET", self._cert("/v1/stock/report"), token,
                                     params={**where, "from": start.isoformat(), "to": end.isoformat()}))

    async def receive_batch(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._json("POST", self._cert("/v1/stock/batches"), token, json=body))

    async def confirm_batch(self, token: str, batch_no: str) -> dict[str, Any]:
        """双人验收: the custodian's confirmation of a batch the office head recorded."""
        return dict(await self._json("POST", self._cert(f"/v1/stock/batches/{_seg(batch_no)}/confirmation"), token))

    async def awaiting_batches(self, token: str) -> list[dict[str, Any]]:
        out = await self._json("GET", self._cert("/v1/stock/batches"), token, params={"awaiting": "true"})
        return list(out.get("batches", []))

    async def allocate(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._json("POST", self._cert("/v1/stock/allocations"), token, json=body))

    async def void_blank(self, token: str, serial: str, reason: str) -> dict[str, Any]:
        return dict(await self._json("POST", self._cert(f"/v1/stock/serials/{_seg(serial)}/void"), token,
                                     json={"reason": reason}))

    async def verify(self, serial: str, child_name: str, birth_date: date) -> dict[str, Any]:
        """The public check, with the console's own system token (role verifier): {valid, status}."""
        return dict(await self._json("GET", self._cert("/v1/certificates/verify"), self.s.verify_token(),
                                     params={"serial": serial, "child_name": child_name,
                                             "birth_date": birth_date.isoformat()}))


def _seg(value: str) -> str:
    """One path segment, percent-encoded (an id never changes the path it is put into)."""
    return quote(value, safe="")


def _problem(r: httpx.Response) -> ApiError:
    try:
        body = r.json()
    except ValueError:
        return ApiError(r.status_code, r.text[:200] or r.reason_phrase)
    errors = body.get("errors") or [] if isinstance(body, dict) else []
    fields = {str(e.get("field", "")): str(e.get("reason", "")) for e in errors if isinstance(e, dict)}
    detail = body.get("detail") or body.get("title") or r.reason_phrase if isinstance(body, dict) else r.text
    return ApiError(r.status_code, str(detail), fields)
