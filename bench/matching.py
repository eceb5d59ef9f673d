"""Person-matching benchmark (issue 19): the stored Splink-trained model (registry/data/matching_model.json) on
synthetic populations with planted duplicates (registry.linkage.synthetic), never the one it was trained on.

- quality: precision and recall of automatic links, of the review queue and of both on BENCH_MATCHING_QUALITY
  persons (default 100,000; seed 2026), by Splink's batch prediction with the stored model (no training);
- batch: the same over BENCH_MATCHING_BATCH persons (default 10^6): features (pinyin), blocking and scoring timed
  (goal: ≤ 2 minutes);
- online: BENCH_MATCHING_ONLINE persons (default 100,000) loaded into the registry's tables, then 300 new
  persons (a third of them duplicates) posted one by one through `POST /v1/persons`: latency of the whole
  request and of the matching alone (the candidate query and the scoring) — goal ≤ 50 ms p99.
"""
from __future__ import annotations

import json
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from registry.domain import matching
from registry.linkage import synthetic, train
from registry.store import matching as store

from bench._context import BenchContext

#: every loaded and posted person lives here (a village of the shipped region table): residence tells nothing
VILLAGE = "320582001001"
RESULTS = os.path.join(os.path.dirname(__file__), "results", "matching.json")


def pct(xs: list[float], q: float) -> float:
    return round(sorted(xs)[max(0, int(len(xs) * q) - 1)] * 1000, 2) if xs else float("nan")


def quality(model: dict[str, Any], n: int) -> dict[str, Any]:
    records = list(synthetic.population(n, seed=2026))
    pred, timing = train.batch_match(records, model)
    t = model["thresholds"]
    true_pairs = sum(1 for r in records if r.is_duplicate)
    return {"persons": n, "records": len(records), **timing,
            **train.measure(pred, true_pairs, t["upper_match_weight"], t["lower_match_weight"])}


def batch(model: dict[str, Any], n: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    records = list(synthetic.population(n, seed=1_000_000))
    generated = time.perf_counter() - t0
    pred, timing = train.batch_match(records, model)
    total = timing["features_s"] + timing["blocking_and_scoring_s"]
    return {"persons": n, "records": len(records), "generate_s": round(generated, 1), **timing,
            "matching_s": round(total, 1), "pairs_scored_above_lower": len(pred), "goal_s": 120,
            "met": total <= 120}


async def _load(conn: asyncpg.Connection, records: list[synthetic.Record]) -> list[tuple[str, synthetic.Record]]:
    """The population straight into the registry's tables (COPY): the matcher's candidates."""
    ids = [(str(uuid.uuid4()), r) for r in records]
    feats = [(pid, matching.features(r.name, r.sex, r.birth_date, VILLAGE, r.phone, None, None))
             for pid, r in ids]
    await conn.copy_records_to_table("person", columns=["person_id", "name", "sex", "birth_date", "phone"],
                                     records=[(uuid.UUID(p), r.name, r.sex, r.birth_date, r.phone) for p, r in ids])
    await conn.copy_records_to_table(
        "person_match_key", columns=["person_id", "name", "name_py", "surname_py", "given_py", "birth_date",
                                     "birth_year", "sex", "phone", "residence"],
        records=[(uuid.UUID(p), f.name, f.name_py, f.surname_py, f.given_py, r.birth_date, f.birth_year, f.sex,
                  f.phone, f.residence) for (p, f), (_, r) in zip(feats, ids, strict=True)])
    await conn.execute("analyze person_match_key")
    return ids


async def online(ctx: BenchContext, n: int) -> dict[str, Any]:
    rng = random.Random(5)
    records = [r for r in synthetic.population(n, seed=77, duplicate_share=0) if r.birth_date.year < 2025]
    conn = await asyncpg.connect(ctx.dsn("registry", admin=True))
    try:
        t0 = time.perf_counter()
        loaded = await _load(conn, records)
        load_s = time.perf_counter() - t0
        # the new persons: a third are copies of loaded ones with something gone wrong, the rest new
        probes = []
        for i in range(300):
            src = rng.choice(loaded)[1]
            probe = synthetic.duplicate(rng, src, 10**9 + i) if i % 3 == 0 else \
                synthetic.person(rng, 10**9 + i)
            probes.append(probe)
        model = matching.stored_model()
        alone: list[float] = []
        for p in probes:
            f = matching.features(p.name, p.sex, p.birth_date, VILLAGE, p.phone)
            t = time.perf_counter()
            for _pid, other in await store.candidates_raw(conn, f):
                model.weight(f, other)
            alone.append(time.perf_counter() - t)
        posted: list[float] = []
        decided = {"created": 0, "linked": 0}
        async with httpx.AsyncClient(timeout=30, headers=ctx.headers) as http:
            for p in probes:
                body = {"name": p.name, "sex": p.sex, "birth_date": p.birth_date.isoformat(),
                        "residence_code": VILLAGE, "phone": p.phone}
                t = time.perf_counter()
                r = await http.post(ctx.url("registry") + "/v1/persons", json=body)
                posted.append(time.perf_counter() - t)
                r.raise_for_status()
                decided["created" if r.json()["created"] else "linked"] += 1
        queued = await conn.fetchval("select count(*) from person_match where status = 'pending'")
    finally:
        await conn.close()
    return {"registered": len(loaded), "load_s": round(load_s, 1), "probes": len(probes), **decided,
            "queued_pairs": queued, "match_ms_p50": pct(alone, 0.5), "match_ms_p99": pct(alone, 0.99),
            "post_ms_p50": pct(posted, 0.5), "post_ms_p99": pct(posted, 0.99), "goal_ms_p99": 50}


async def run(ctx: BenchContext) -> dict[str, Any]:
    model = json.loads(matching.MODEL_FILE.read_text(encoding="utf-8"))
    out: dict[str, Any] = {"model_version": model["version"],
                           "note": "2-core machine shared with other engineers' work while measured"}
    out["quality"] = quality(model, int(os.environ.get("BENCH_MATCHING_QUALITY", 100_000)))
    print("bench: matching quality", json.dumps(out["quality"]), flush=True)
    out["online"] = await online(ctx, int(os.environ.get("BENCH_MATCHING_ONLINE", 100_000)))
    print("bench: matching online", json.dumps(out["online"]), flush=True)
    out["batch"] = batch(model, int(os.environ.get("BENCH_MATCHING_BATCH", 1_000_000)))
    _save(out)
    return out


def _save(out: dict[str, Any]) -> None:
    Path(RESULTS).write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
