"""Building certificate cases through the real APIs (registry and certificates), shared by the certificate
tests and `bench/certificates.py`: institutions with custodians, live births, stock, two-step issues."""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx

BABIES_PER_DELIVERY = 8  # the registry's maximum: fewer pregnancies to post for thousands of children


@dataclass
class Office:
    """An issuing institution with its two custodians (证章分离)."""

    code: str
    region: str
    keeper: str   # certificate custodian (证件管理员)
    sealer: str   # seal custodian (印章管理员)


async def _ok(r: httpx.Response) -> Any:
    assert r.status_code < 300, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


async def office(http: httpx.AsyncClient, registry: str, certs: str, region: str, code: str | None = None,
                 timeout: float = 20) -> Office:
    """PUT the institution in the registry, then name its custodians once its event reached certificates."""
    code = code or f"H{uuid.uuid4().hex[:8].upper()}"
    await _ok(await http.put(f"{registry}/v1/institutions/{code}", json={
        "name": f"测试医院{code}", "region_code": region, "kind": "hospital", "midwifery_licensed": True}))
    o = Office(code, region, f"K-{code}", f"S-{code}")
    deadline = time.monotonic() + timeout
    while True:
        r = await http.post(f"{certs}/v1/custodians", json={"institution_code": code, "staff_id": o.keeper,
                                                            "name": "王证管", "role": "certificate"})
        if r.status_code < 300:
            break
        assert r.status_code == 422 and time.monotonic() < deadline, r.text
        await asyncio.sleep(0.1)
    await _ok(await http.post(f"{certs}/v1/custodians", json={"institution_code": code, "staff_id": o.sealer,
                                                              "name": "李印管", "role": "seal"}))
    return o


async def births(http: httpx.AsyncClient, registry: str, institution: str, residence: str, n: int,
                 born_on: date, place: str = "hospital", concurrency: int = 16) -> list[str]:
    """`n` live-born children delivered at `institution` (up to 8 per delivery); returns their person ids."""
    lmp = born_on - timedelta(days=275)
    sizes = [min(BABIES_PER_DELIVERY, n - i) for i in range(0, n, BABIES_PER_DELIVERY)]
    preg_ids = [f"P-{uuid.uuid4().hex[:14]}" for _ in sizes]
    sem = asyncio.Semaphore(concurrency)

    async def pregnancy(pid: str) -> None:
        async with sem:
            await _ok(await http.post(f"{registry}/v1/pregnancies", json={
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
    for i in range(0, len(items), 1000):
        res = await _ok(await http.post(f"{registry}/v1/encounters:batch", json=items[i:i + 1000]))
        assert res["accepted"] == len(items[i:i + 1000]), res
    # the batch answers per item without the children: read them from the pregnancies
    async def kids(pid: str) -> list[str]:
        async with sem:
            p = await _ok(await http.get(f"{registry}/v1/pregnancies/{pid}"))
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
    """Receive a batch of `n` blanks `prefix`+first.. and allocate all of it to `o`; returns (from, to)."""
    sf, st = f"{prefix}{first:05d}", f"{prefix}{first + n - 1:05d}"
    await _ok(await http.post(f"{certs}/v1/stock/batches", json={
        "batch_no": f"B-{uuid.uuid4().hex[:10]}", "serial_from": sf, "serial_to": st,
        "received_on": received_on.isoformat()}))
    await _ok(await http.post(f"{certs}/v1/stock/allocations", json={
        "institution_code": o.code, "serial_from": sf, "serial_to": st,
        "allocated_on": (allocated_on or received_on).isoformat()}))
    return sf, st


async def prepare(http: httpx.AsyncClient, certs: str, o: Office, child: str, kind: str = "first",
                  **extra: Any) -> httpx.Response:
    return await http.post(f"{certs}/v1/certificates", json={
        "kind": kind, "child_id": child, "child_name": "张小明", "prepared_by": o.keeper, **extra})


async def issue(http: httpx.AsyncClient, certs: str, o: Office, child: str, kind: str = "first",
                **extra: Any) -> dict[str, Any]:
    """Prepare (certificate custodian) and seal (seal custodian): one certificate issued."""
    cert = await _ok(await prepare(http, certs, o, child, kind, **extra))
    return dict(await _ok(await http.post(f"{certs}/v1/certificates/{cert['serial']}/seal",
                                          json={"sealed_by": o.sealer})))
