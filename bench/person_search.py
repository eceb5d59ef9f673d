"""Person search (GET /v1/persons, issue 19) over a registry of BENCH_SEARCH_PERSONS persons (default 100,000):
latency per kind of criterion, through the API with a county's token (scope, masking and audit included).

The persons are written straight into the registry's tables with COPY (the registration path is measured by the
registry benchmark; here only the search is timed), with the pinyin keys the registration computes."""
from __future__ import annotations

import os
import random
import time
import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
from kit.clients import create_client
from kit.settings import Settings
from registry.domain.names import pinyin_key

from bench._context import BenchContext

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
            "于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪")
GIVEN = "秀英桂芳玉兰丽敏静燕艳娟霞红梅琳晓小娜婷雪慧颖倩佳欣怡蕾萍洁丹瑶"
COUNTIES = ["320582", "321324", "110105", "440304"]
QUERIES = 200


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 1)


def people(n: int, rng: random.Random) -> list[tuple[Any, ...]]:
    out = []
    passports = rng.sample(range(10**8), n)  # a passport number is one person's
    for i in range(n):
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        born = date(1970, 1, 1) + timedelta(days=rng.randrange(0, 365 * 35))
        out.append((uuid.uuid4(), name, pinyin_key(name), born, f"139{rng.randrange(10**8):08d}",
                    "passport", f"E{passports[i]:08d}", rng.choice(COUNTIES) + "001001"))
    return out


async def load(ctx: BenchContext, rows: list[tuple[Any, ...]]) -> float:
    conn = await asyncpg.connect(ctx.dsn("registry", admin=True))
    try:
        t = time.perf_counter()
        await conn.copy_records_to_table(
            "person", records=[(p, name, "F", born, phone, kind, num, py) for p, name, py, born, phone, kind, num, _
                               in rows],
            columns=["person_id", "name", "sex", "birth_date", "phone", "document_type", "document_number",
                     "name_pinyin"])
        await conn.copy_records_to_table("person_residence", records=[(r[0], r[3], r[7]) for r in rows],
                                         columns=["person_id", "since", "region_code"])
        await conn.execute("analyze person; analyze person_residence")
        return time.perf_counter() - t
    finally:
        await conn.close()


async def run(ctx: BenchContext) -> dict[str, Any]:
    n = int(os.environ.get("BENCH_SEARCH_PERSONS", "100000"))
    rng = random.Random(19)
    rows = people(n, rng)
    loaded_s = await load(ctx, rows)
    settings = Settings(db_prefix=ctx.spec.db_prefix, kafka_bootstrap=ctx.spec.bootstrap)
    _, token = await create_client(settings, "bench-search", ["registry:read", "pii:read"], COUNTIES[0])
    mine = [r for r in rows if r[7].startswith(COUNTIES[0])]
    criteria = {
        "name": lambda r: {"name": r[1]},
        "name_pinyin_prefix": lambda r: {"pinyin": r[2][:4], "birth_date": str(r[3])},
        "document": lambda r: {"document": r[6]},
        "phone": lambda r: {"phone": r[4]},
        "birth_date": lambda r: {"birth_date": str(r[3])},
    }
    out: dict[str, Any] = {"persons": n, "in_the_callers_county": len(mine), "load_s": round(loaded_s, 1)}
    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:
        url = ctx.url("registry") + "/v1/persons"
        for kind, query in criteria.items():
            times, found = [], 0
            for r in rng.sample(mine, min(QUERIES, len(mine))):
                t = time.perf_counter()
                resp = await http.get(url, params=query(r))
                times.append(time.perf_counter() - t)
                assert resp.status_code == 200, resp.text
                found += any(p["person_id"] == str(r[0]) for p in resp.json()["persons"])
            out[f"{kind}_p50_ms"] = pct(times, 0.5)
            out[f"{kind}_p99_ms"] = pct(times, 0.99)
            # the share of searches whose person is on the first page (20): a common name or a birth date alone
            # matches more than a page
            out[f"{kind}_found_share"] = round(found / len(times), 3)
    return out
