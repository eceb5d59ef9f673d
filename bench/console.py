"""Console benchmark (issue 16): 50 clerks issue certificates through the certificate office console, against the
same work through the certificates API alone, in one run on one stack.

Per certificate a clerk does what the office does: opens the worklist (待签发), opens the form (pre-filled from the
registry), posts it (制证, the content checked by the certificates service), sees the prepared certificate; the
seal custodian's session seals it (签发) and sees the issued certificate — six pages. The API-only phase posts the
same two writes (prepare with the same content, seal) with the same two person tokens. Reported: issues/s of both
and their ratio; page times (p50/p95/p99) per page and overall.

Every clerk session logs in (the console's login, the services' password check) before the clock starts. The
office has one certificate custodian and one seal custodian (证章分离: the service allows one of each per
institution), so the 50 clerks are 50 sessions of those two accounts. The load generator (httpx, ~1 ms CPU a
request) runs on the same cores as the stack; on a shared machine the figures carry other people's load.

A third phase makes, straight to the services, the same calls the console makes for an issue (worklist, the four
pre-fill reads, prepare, certificate, seal, certificate): the console's own cost is the difference.

Scale with BENCH_CONSOLE_ISSUES (default 300 per phase) and BENCH_CONSOLE_CLERKS (default 50).
"""
from __future__ import annotations

import asyncio
import os
import re
import statistics
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable
from datetime import date, timedelta
from typing import Any

import devstack
import httpx
from certificates.service import today
from certificates.tests.stack_helpers import Office, births, call, new_prefix, office, stock, wait_known
from kit import accounts
from kit.settings import Settings

from bench._context import BenchContext, settle
from bench._http import LeanClient

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
REGION = "320581001001"


def pct(xs: list[float], q: float) -> float:
    return round(sorted(xs)[min(len(xs) - 1, int(len(xs) * q))] * 1000, 1) if xs else float("nan")


def form(child_name: str, born: date) -> dict[str, Any]:
    """The certificate's content as a clerk completes it (the same for both phases)."""
    return {"child_name": child_name, "child_sex": "F", "birth_date": born.isoformat(), "birth_time": "08:30",
            "gestational_weeks": "39", "birth_weight_g": "3250", "birth_length_cm": "50", "health": "good",
            "birth_province": "江苏省", "birth_city": "苏州市", "birth_county": "常熟市",
            "birth_region_code": REGION[:6], "place_type": "hospital", "mother_name": "王丽", "mother_age": "29",
            "mother_nationality": "中国", "mother_ethnicity": "汉族", "mother_id_type": "passport",
            "mother_id_number": "E12345678"}


async def run(ctx: BenchContext) -> dict[str, Any]:
    n = int(os.environ.get("BENCH_CONSOLE_ISSUES", "300"))
    clerks = int(os.environ.get("BENCH_CONSOLE_CLERKS", "50"))
    reg, certs = ctx.url("registry"), ctx.url("certificates")
    born = today() - timedelta(days=2)
    settings = Settings(db_prefix=ctx.spec.db_prefix, kafka_bootstrap=ctx.spec.bootstrap)
    async with httpx.AsyncClient(timeout=120, headers=ctx.headers) as http:
        o = await office(http, reg, certs, REGION, settings)
        children = await births(http, reg, o.code, REGION, 3 * n, born)
        await wait_known(ctx.dsn("certificates", admin=True), children, timeout=900)
        await stock(http, certs, o, new_prefix(), 1, 3 * n, today())
    await settle(ctx)
    api = await _api_phase(certs, o, children[:n], born, clerks)
    await settle(ctx)
    same = await _api_same_calls_phase(reg, certs, o, children[n:2 * n], born, clerks)
    await settle(ctx)
    console = await _console_phase(ctx, settings, o, children[2 * n:], born, clerks)
    return {"issues_per_phase": n, "clerks": clerks, "api_issues_per_s": api, "api_same_calls_issues_per_s": same,
            **console, "console_vs_api": round(console["console_issues_per_s"] / api, 3),
            "console_vs_api_same_calls": round(console["console_issues_per_s"] / same, 3)}


async def _api_phase(certs: str, o: Office, children: list[str], born: date, clients: int) -> float:
    queue = _queue(children)

    async def clerk() -> None:
        keeper, sealer = LeanClient(certs, o.by(o.keeper)), LeanClient(certs, o.by(o.sealer))
        try:
            while not queue.empty():
                child = queue.get_nowait()
                status, out = await keeper.post("/v1/certificates", {
                    "kind": "first", "child_id": child, "child_name": "基准",
                    "content": form("基准", born)})
                assert status == 201, out
                status, out = await sealer.post(f"/v1/certificates/{out['serial']}/seal", {})
                assert status == 200, out
        finally:
            await keeper.close()
            await sealer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(clerk() for _ in range(clients)))
    return round(len(children) / (time.perf_counter() - t0), 1)


async def _api_same_calls_phase(reg: str, certs: str, o: Office, children: list[str], born: date,
                                clients: int) -> float:
    """The calls the console makes for one issue, straight to the services: the worklist, the child, its
    pregnancy, its mother and the institution (the pre-fill), prepare, the certificate, seal, the certificate.
    What the console adds beyond these is its own cost (sessions, forms, templates)."""
    queue = _queue(children)

    async def clerk() -> None:
        limits = httpx.Limits(keepalive_expiry=2)  # idle connections dropped before the servers close them
        async with httpx.AsyncClient(timeout=120, headers=o.by(o.keeper), limits=limits) as keeper, \
                httpx.AsyncClient(timeout=120, headers=o.by(o.sealer), limits=limits) as sealer:
            while not queue.empty():
                child = queue.get_nowait()
                await _ok(call(keeper, "GET", f"{certs}/v1/worklist", True, params={"institution_code": o.code}))
                person = await _ok(call(keeper, "GET", f"{reg}/v1/persons/{child}", True))
                preg, mother = person.get("born_in_pregnancy_id"), person.get("mother_id")  # as the console does
                reads = [f"/v1/institutions/{o.code}", *([f"/v1/pregnancies/{preg}"] if preg else []),
                         *([f"/v1/persons/{mother}"] if mother else [])]
                await asyncio.gather(*(_ok(call(keeper, "GET", reg + path, True)) for path in reads))
                out = await _ok(call(keeper, "POST", f"{certs}/v1/certificates", json={
                    "kind": "first", "child_id": child, "child_name": "基准", "content": form("基准", born)}))
                await _ok(call(keeper, "GET", f"{certs}/v1/certificates/{out['serial']}", True))
                await _ok(call(sealer, "POST", f"{certs}/v1/certificates/{out['serial']}/seal", json={}))
                await _ok(call(sealer, "GET", f"{certs}/v1/certificates/{out['serial']}", True))

    t0 = time.perf_counter()
    await asyncio.gather(*(clerk() for _ in range(clients)))
    return round(len(children) / (time.perf_counter() - t0), 1)


async def _ok(r: Awaitable[httpx.Response]) -> Any:
    answer = await r
    assert answer.status_code < 300, (answer.request.url, answer.status_code, answer.text[:300])
    return answer.json()


def _queue(items: list[str]) -> asyncio.Queue[str]:
    q: asyncio.Queue[str] = asyncio.Queue()
    for x in items:
        q.put_nowait(x)
    return q


class PageFailed(Exception):
    """A page answered with an error (counted and reported); the clerk goes on with the next newborn."""


class Session:
    """One clerk's browser: the console's session cookie, its CSRF token, and the time of every page."""

    errors: Counter[str] = Counter()

    def __init__(self, base: str, times: dict[str, list[float]]) -> None:
        # idle connections dropped before uvicorn's keep-alive (5 s) closes them under a request
        self.http = httpx.AsyncClient(base_url=base, timeout=120, limits=httpx.Limits(keepalive_expiry=2))
        self.csrf = ""
        self.times = times

    async def login(self, account: str, password: str) -> None:
        page = await self.http.get("/login")
        self.csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        r = await self.http.post("/login", data={"username": account, "password": password,
                                                 "csrf_token": self.csrf})
        assert r.status_code == 303, r.text
        self.csrf = CSRF.search((await self.http.get("/")).text).group(1)  # type: ignore[union-attr]

    async def page(self, name: str, method: str, url: str, **kw: Any) -> httpx.Response:
        t = time.perf_counter()
        try:
            r = await self.http.request(method, url, **kw)
        except httpx.TransportError:
            if method != "GET":
                raise
            r = await self.http.request(method, url, **kw)  # a connection the server closed as it was reused
        self.times[name].append(time.perf_counter() - t)
        if r.status_code not in (200, 303):
            self.errors[f"{name} {r.status_code}"] += 1
            raise PageFailed(name)
        return r


async def _console_phase(ctx: BenchContext, settings: Settings, o: Office, children: list[str], born: date,
                         clerks: int) -> dict[str, Any]:
    base = f"http://127.0.0.1:{devstack.console_port(ctx.spec)}"
    pw = {a: f"pw-{uuid.uuid4().hex}" for a in (o.keeper, o.sealer)}
    for account, password in pw.items():
        await accounts.reset_password(settings, account, password)
    times: dict[str, list[float]] = defaultdict(list)
    pairs = [(Session(base, times), Session(base, times)) for _ in range(clerks)]
    for keeper, sealer in pairs:  # one after another: a login checks a password hash, on purpose slow
        await keeper.login(o.keeper, pw[o.keeper])
        await sealer.login(o.sealer, pw[o.sealer])
    queue = _queue(children)

    issued: list[str] = []

    async def clerk(keeper: Session, sealer: Session) -> None:
        while not queue.empty():
            try:
                await issue(keeper, sealer, queue.get_nowait())
            except PageFailed:
                pass

    async def issue(keeper: Session, sealer: Session, child: str) -> None:
        await keeper.page("worklist", "GET", "/")
        await keeper.page("prepare_form", "GET", "/prepare", params={"child_id": child})
        r = await keeper.page("prepare_post", "POST", "/prepare", data={
            "csrf_token": keeper.csrf, "child_id": child, "kind": "first", "action": "prepare",
            **form("基准", born)})
        serial = r.headers["location"].rsplit("/", 1)[1]
        await keeper.page("certificate", "GET", f"/certificates/{serial}")
        await sealer.page("seal_post", "POST", f"/certificates/{serial}/seal", data={"csrf_token": sealer.csrf})
        await sealer.page("certificate", "GET", f"/certificates/{serial}")
        issued.append(serial)

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(clerk(k, s) for k, s in pairs))
    finally:
        for k, s in pairs:
            await k.http.aclose()
            await s.http.aclose()
    secs = time.perf_counter() - t0
    every = [t for ts in times.values() for t in ts]
    return {"console_issues_per_s": round(len(issued) / secs, 1), "console_issued": len(issued),
            "pages": len(every),
            "error_pages": dict(Session.errors),
            "page_p50_ms": round(statistics.median(every) * 1000, 1), "page_p95_ms": pct(every, 0.95),
            "page_p99_ms": pct(every, 0.99),
            "page_p95_ms_by_page": {k: pct(v, 0.95) for k, v in sorted(times.items())}}
