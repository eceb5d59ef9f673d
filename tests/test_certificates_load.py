"""Many clerks at once: 50 concurrent clients issuing thousands of certificates from one institution's stock
never get the same serial, never skip one silently, and the stock report balances; and the seed 001 stock
figures (1275 + 6000 − 5575 = 1700) come out of the API exactly."""
from __future__ import annotations

import asyncio
import random
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from certificates.service import today
from certificates.tests.stack_helpers import Office, births, call, new_prefix, office, stock, wait_known

from tests.conftest import Stack, fresh_county, village
from tests.test_certificates_api import dsn, urls

pytestmark = pytest.mark.stack
CLIENTS = 50


async def issue_all(stack: Stack, o: Office, children: list[str], void_every: int = 0) -> tuple[list[str],
                                                                                            list[str]]:
    """`CLIENTS` clients, each with its own connection, take children off a shared queue and prepare (as the
    certificate custodian) + seal (as the seal custodian) a first certificate for each; every `void_every`-th
    preparation is spoiled (废证, voided by the office head) and prepared again.
    Returns (issued serials, voided serials)."""
    _, certs = urls(stack)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for c in children:
        queue.put_nowait(c)
    issued: list[str] = []
    voided: list[str] = []
    counter = 0

    async def clerk() -> None:
        nonlocal counter
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=1)) as http:
            while not queue.empty():
                child = queue.get_nowait()
                while True:
                    r = await call(http, "POST", f"{certs}/v1/certificates", headers=o.by(o.keeper), json={
                        "kind": "first", "child_id": child, "child_name": "李华"})
                    assert r.status_code == 201, r.text
                    serial = r.json()["serial"]
                    counter += 1
                    if void_every and counter % void_every == 0:
                        v = await call(http, "POST", f"{certs}/v1/certificates/{serial}/void",
                                       headers=o.by(o.head), json={"reason": "打印错位"})
                        assert v.status_code == 200, v.text
                        voided.append(serial)
                        continue
                    s = await call(http, "POST", f"{certs}/v1/certificates/{serial}/seal",
                                   headers=o.by(o.sealer))
                    assert s.status_code == 200, s.text
                    issued.append(serial)
                    break

    await asyncio.gather(*(clerk() for _ in range(CLIENTS)))
    return issued, voided


async def period_report(http: httpx.AsyncClient, stack: Stack, o: Office, **period: Any) -> dict[str, Any]:
    _, certs = urls(stack)
    r = await http.get(f"{certs}/v1/stock/report", params={"institution_code": o.code, **period})
    assert r.status_code == 200, r.text
    return dict(r.json()["rows"][0])


def balanced(row: dict[str, Any]) -> bool:
    return bool(row["closing"] == row["opening"] + row["received"] - row["issued"] - row["voided"])


async def test_50_clients_issue_5000_without_duplicate_or_silent_gap(http: httpx.AsyncClient,
                                                                     stack: Stack) -> None:
    reg, certs = urls(stack)
    county = fresh_county()
    o = await office(http, reg, certs, village(county), stack.settings)
    n, void_every, spare = 5000, 97, 200
    children = await births(http, reg, o.code, village(county), n, today() - timedelta(days=2))
    await wait_known(dsn(stack), children)
    prefix = new_prefix()
    voids = n // (void_every - 1) + 1
    sf, st = await stock(http, certs, o, prefix, 1, n + voids + spare, today() - timedelta(days=1))
    issued, voided = await issue_all(stack, o, children, void_every)
    assert len(issued) == n and len(set(issued)) == n                       # no serial issued twice
    assert not set(issued) & set(voided)
    used = sorted(issued + voided)
    first = int(sf[1:])
    # no gap: the serials drawn are exactly the first len(used) of the institution's stock, and every
    # serial among them that is not an issued certificate is a recorded void
    assert used == [f"{sf[0]}{first + i:09d}" for i in range(len(used))]
    conn = await asyncpg.connect(dsn(stack))
    try:
        states = dict(await conn.fetch("select state, count(*) from serial where serial between $1 and $2 "
                                       "group by 1", sf, st))
        dup = await conn.fetchval("select count(*) from (select child_id from serial where state = 'issued' "
                                  "and child_id = any($1::uuid[]) group by 1 having count(*) > 1) d", children)
    finally:
        await conn.close()
    assert states == {"issued": n, "voided": len(voided), "in_stock": n + voids + spare - len(used)}
    assert dup == 0
    row = await period_report(http, stack, o, **{"from": str(today() - timedelta(days=1)), "to": str(today())})
    assert (row["opening"], row["received"], row["issued"], row["voided"]) == (0, n + voids + spare, n,
                                                                                len(voided))
    assert balanced(row) and row["closing"] == n + voids + spare - n - len(voided)
    # and every period balances: the day before (allocation only) and today (issues) chain up
    day1 = await period_report(http, stack, o, **{"from": str(today() - timedelta(days=1)),
                                                  "to": str(today() - timedelta(days=1))})
    day2 = await period_report(http, stack, o, **{"from": str(today()), "to": str(today())})
    assert balanced(day1) and balanced(day2) and day2["opening"] == day1["closing"]
    assert day2["closing"] == row["closing"]


def seed_001_stock() -> tuple[int, int, int, int]:
    """The stock sentence of the seed summary: 申领 received, 库存 opening, 首次签发 issued, 现库存 closing."""
    # shared/ lies beside the clone (CI and every developer's machine), or beside a folder holding it
    seeds = next(d / "shared" / "seeds" for d in Path(__file__).resolve().parents
                 if (d / "shared" / "seeds").is_dir())
    text = next(seeds.glob("001_*.txt")).read_text()
    m = re.search(r"共申领《出生医学证明》(\d+)份\(\w*年底库存(\d+)份\).*?首次\w发(\d+)份,现库存(\d+)份", text)
    assert m, "the seed's stock sentence"
    received, opening, issued, closing = map(int, m.groups())
    return opening, received, issued, closing


async def test_seed_001_stock_figures(http: httpx.AsyncClient, stack: Stack) -> None:
    opening, received, issued, closing = seed_001_stock()
    assert opening + received - issued == closing  # the seed is consistent with itself
    reg, certs = urls(stack)
    county = fresh_county()
    o = await office(http, reg, certs, village(county), stack.settings)
    children = await births(http, reg, o.code, village(county), issued, today() - timedelta(days=2))
    await wait_known(dsn(stack), children)
    prefix = new_prefix()
    start = today() - timedelta(days=1)
    # the year-end stock (年底库存) arrived before the period, this year's 申领 within it
    await stock(http, certs, o, prefix, 1, opening, start - timedelta(days=30))
    await stock(http, certs, o, prefix, 1 + opening, received, start)
    random.shuffle(children)
    done, spoiled = await issue_all(stack, o, children)
    assert len(set(done)) == issued and not spoiled
    row = await period_report(http, stack, o, **{"from": str(start), "to": str(today())})
    assert (row["opening"], row["received"], row["issued"], row["voided"], row["closing"]) == (
        opening, received, issued, 0, closing)
    assert row["issued_by_kind"]["first"] == issued
    # the same figures for the region (the county) with the institution as its only one
    r = await http.get(f"{certs}/v1/stock/report", params={"region": county, "from": str(start),
                                                            "to": str(today())})
    total = r.json()["total"]
    assert (total["opening"], total["received"], total["issued"], total["closing"]) == (
        opening, received, issued, closing)
