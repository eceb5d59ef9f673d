"""Building certificate cases through the real APIs (registry and certificates), shared by the certificate
tests and `bench/certificates.py`: institutions with their people (the certificate custodian, the seal custodian,
the office head: person accounts, each posting with their own token), live births, stock, two-step issues."""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
from kit.clients import create_person
from kit.settings import Settings

BABIES_PER_DELIVERY = 8  # the registry's maximum: fewer pregnancies to post for thousands of children


@dataclass
class Office:
    """An issuing institution with its two custodians (证章分离) and the county's office head, as person
    accounts (ids) with their tokens."""

    code: str
    region: str
    keeper: str   # certificate custodian (证件管理员)
    sealer: str   # seal custodian (印章管理员)
    head: str     # the county's certificate office head (办公室负责人): stock, custodians, voids
    tokens: dict[str, str]

    def by(self, account: str) -> dict[str, str]:
        """Request headers of one of the office's people."""
        return {"Authorization": f"Bearer {self.tokens[account]}"}


async def call(http: httpx.AsyncClient, method: str, url: str, idempotent: bool = False,
               **kw: Any) -> httpx.Response:
    """One request, retried while the service answers 503 (nothing was changed; the database server is
    shared and may briefly refuse connections) and, when the request is `idempotent`, on a dropped
    connection (a keep-alive connection closed by the server as it was reused)."""
    for attempt in range(50):
        try:
            r = await http.request(method, url, **kw)
        except httpx.TransportError:
            if not idempotent or attempt >= 5:
                raise
            await asyncio.sleep(0.5)
            continue
        if r.status_code != 503:
            return r
        await asyncio.sleep(0.2)
    return r


async def _ok(r: httpx.Response) -> Any:
    assert r.status_code < 300, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


async def people(settings: Settings, code: str, region: str) -> Office:
    """The person accounts of an issuing institution (in `region`): its two custodians (working there) and the
    county's office head (at the bureau), each acting for the county."""
    county = region[:6]
    keeper, kt = await create_person(settings, "王证管", ["certificate_custodian"], county, institution_code=code,
                                     staff_id=f"K-{code}")
    sealer, st = await create_person(settings, "李印管", ["seal_custodian"], county, institution_code=code,
                                     staff_id=f"S-{code}")
    head, ht = await create_person(settings, "赵主任", ["office_head"], county, staff_id=f"H-{code}")
    return Office(code, region, keeper, sealer, head, {keeper: kt, sealer: st, head: ht})


async def assign(http: httpx.AsyncClient, certs: str, o: Office, account: str, role: str,
                 timeout: float = 20) -> httpx.Response:
    """The office head assigns `account` as the institution's `role` custodian, once the institution's event
    reached certificates (until then it is unknown: 422 institution_code)."""
    deadline = time.monotonic() + timeout
    while True:
        r = await call(http, "POST", f"{certs}/v1/custodians", True, headers=o.by(o.head), json={
            "institution_code": o.code, "account_id": account, "role": role})
        if r.status_code < 300 or time.monotonic() > deadline or "unknown institution" not in r.text:
            return r
        await asyncio.sleep(0.1)


async def office(http: httpx.AsyncClient, registry: str, certs: str, region: str, settings: Settings,
                 code: str | None = None) -> Office:
    """PUT the institution in the registry (as the caller's system token), create its people, and have the
    office head assign the custodians once its event reached certificates."""
    code = code or f"H{uuid.uuid4().hex[:8].upper()}"
    await _ok(await call(http, "PUT", f"{registry}/v1/institutions/{code}", True, json={
        "name": f"测试医院{code}", "region_code": region, "kind": "hospital", "midwifery_licensed": True}))
    o = await people(settings, code, region)
    await _ok(await assign(http, certs, o, o.keeper, "certificate"))
    await _ok(await assign(http, certs, o, o.sealer, "seal"))
    return o


async def births(http: httpx.AsyncClient, registry: str, institution: str, residence: str, n: int,
                 born_on: date, place: str = "hospital", concurrency: int = 8) -> list[str]:
    """`n` live-born children delivered at `institution` (up to 8 per delivery); returns their person ids."""
    lmp = born_on - timedelta(days=275)
    sizes = [min(BABIES_PER_DELIVERY, n - i) for i in range(0, n, BABIES_PER_DELIVERY)]
    preg_ids = [f"P-{uuid.uuid4().hex[:14]}" for _ in sizes]
    sem = asyncio.Semaphore(concurrency)

    async def pregnancy(pid: str) -> None:
        async with sem:
            await _ok(await call(http, "POST", f"{registry}/v1/pregnancies", True, json={
                "pregnancy_id": pid, "source": "cert-test", "lmp_date": lmp.isoformat(),
                "registered_on": (lmp + timedelta(days=70)).isoformat(), "institution_code": institution,
                "mother": {"name": "母亲", "sex": "F", "birth_date": "1995-03-01", "residence_code": residence}}))

    await asyncio.gather(*(pregnancy(p) for p in preg_ids))
    children: list[str] = []
    items = [{"encounter_id": f"D-{pid}", "source": "cert-test", "type": "delivery",
              "occurred_at": f"{born_on.isoformat()}T08:00:00+08:00", "institution_code": institution,
              "subject_id": pid, "place": place, "mode": "vaginal",
              "babies": [{"sex": "FM"[j % 2], "birth_weight_g": 2600, "outcome": "live"} for j in range(k)]}
             for pid, k in zip(preg_ids, sizes, strict=True)]
    for i in range(0, len(items), 100):  # small batches: each is one registry transaction
        res = await _ok(await call(http, "POST", f"{registry}/v1/encounters:batch", True, json=items[i:i + 100],
                                   timeout=120))
        assert res["accepted"] == len(items[i:i + 100]), res
    # the batch answers per item without the children: read them from the pregnancies
    async def kids(pid: str) -> list[str]:
        async with sem:
            p = await _ok(await call(http, "GET", f"{registry}/v1/pregnancies/{pid}", True))
            return [c for e in p["encounters"] for c in e.get("children", [])]

    for ks in await asyncio.gather(*(kids(p) for p in preg_ids)):
        children.extend(ks)
    assert len(children) == n
    return children


async def wait_known(dsn: str, children: list[str], timeout: float = 60) -> None:
    """Until the certificates consumer has every child and its birth (from the registry's events)."""
    ids = [uuid.UUID(c) for c in children]
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while True:
            n = await conn.fetchval("select count(*) from child c join child_birth b using (child_id) "
                                    "where c.child_id = any($1::uuid[]) and not b.voided", ids)
            if n == len(ids):
                return
            assert time.monotonic() < deadline, f"certificates knows {n} of {len(ids)} children"
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def new_prefix() -> str:
    """A serial prefix range no other case uses: a letter and the first 4 digits."""
    return f"{chr(ord('A') + uuid.uuid4().int % 26)}{uuid.uuid4().int % 10_000:04d}"


async def stock(http: httpx.AsyncClient, certs: str, o: Office, prefix: str, first: int, n: int,
                received_on: date, allocated_on: date | None = None) -> tuple[str, str]:
    """The office head receives a batch of `n` blanks `prefix`+first.. and allocates all of it to `o`; returns
    (from, to)."""
    sf, st = f"{prefix}{first:05d}", f"{prefix}{first + n - 1:05d}"
    batch = f"B-{uuid.uuid4().hex[:10]}"
    await _ok(await call(http, "POST", f"{certs}/v1/stock/batches", headers=o.by(o.head), json={
        "batch_no": batch, "serial_from": sf, "serial_to": st, "received_on": received_on.isoformat()}))
    await _ok(await confirm(http, certs, o, batch))
    await _ok(await call(http, "POST", f"{certs}/v1/stock/allocations", headers=o.by(o.head), json={
        "institution_code": o.code, "serial_from": sf, "serial_to": st,
        "allocated_on": (allocated_on or received_on).isoformat()}))
    return sf, st


async def confirm(http: httpx.AsyncClient, certs: str, o: Office, batch_no: str,
                  as_: str | None = None) -> httpx.Response:
    """The second person of 双人验收 (the certificate custodian, or `as_`) confirms a recorded batch."""
    return await call(http, "POST", f"{certs}/v1/stock/batches/{batch_no}/confirmation",
                      headers=o.by(as_ or o.keeper))


async def prepare(http: httpx.AsyncClient, certs: str, o: Office, child: str, kind: str = "first",
                  as_: str | None = None, **extra: Any) -> httpx.Response:
    """The certificate custodian (or `as_`, an account of the office) prepares a certificate for `child`."""
    return await call(http, "POST", f"{certs}/v1/certificates", headers=o.by(as_ or o.keeper), json={
        "kind": kind, "child_id": child, "child_name": "张小明", **extra})


async def seal(http: httpx.AsyncClient, certs: str, o: Office, serial: str, as_: str | None = None) -> httpx.Response:
    """The seal custodian (or `as_`) seals a prepared certificate."""
    return await call(http, "POST", f"{certs}/v1/certificates/{serial}/seal", headers=o.by(as_ or o.sealer))


async def void(http: httpx.AsyncClient, certs: str, o: Office, serial: str, reason: str,
               blank: bool = False) -> httpx.Response:
    """The office head voids a certificate, or (`blank`) a spoiled blank (废证)."""
    path = f"/v1/stock/serials/{serial}/void" if blank else f"/v1/certificates/{serial}/void"
    return await call(http, "POST", certs + path, headers=o.by(o.head), json={"reason": reason})


async def issue(http: httpx.AsyncClient, certs: str, o: Office, child: str, kind: str = "first",
                **extra: Any) -> dict[str, Any]:
    """Prepare (certificate custodian) and seal (seal custodian): one certificate issued."""
    cert = await _ok(await prepare(http, certs, o, child, kind, **extra))
    return dict(await _ok(await seal(http, certs, o, cert["serial"])))
