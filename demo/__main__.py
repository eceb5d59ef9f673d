"""The demo county (示范县) through the platform's real APIs.

    python -m demo load   [--seed 7] [--year 2025] [--births 1300] [--county 321324]   # a whole year
    python -m demo stream [--per-minute 6]                                              # live: deliveries today
    python -m demo plan   [--births 300]                                                # what load would post

URLs and the token come from `.run/urls.env` and `.run/dev-token` (what `make run` writes), or --urls-env /
--token. Everything is posted as HIS systems would (idempotent source ids), so loading twice is a no-op.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
from kit.settings import Settings
from tqdm import tqdm

from demo import county as county_mod
from demo.generate import live_plan, year_plan
from demo.post import Poster, manage_high_risk

ROOT = Path(__file__).resolve().parent.parent
CHINA = timezone(timedelta(hours=8))


def run_dir() -> Path:
    slot = os.environ.get("MCH_STACK_SLOT", "0")
    return ROOT / (".run" + (slot if slot not in ("", "0") else ""))


def read_urls(path: Path) -> dict[str, str]:
    urls = {}
    for line in path.read_text().splitlines():
        k, _, v = line.partition("=")
        if k.endswith("_URL"):
            urls[k.removesuffix("_URL").lower()] = v.strip()
    return urls


def bar(step: str, total: int) -> Any:
    return tqdm(total=total, desc=f"{step:<26}", unit="rec", leave=False, dynamic_ncols=True,
                disable=not sys.stderr.isatty())


def poster(args: argparse.Namespace) -> Poster:
    rd = Path(args.run_dir) if args.run_dir else run_dir()
    urls = read_urls(Path(args.urls_env) if args.urls_env else rd / "urls.env")
    token = args.token or (rd / "dev-token").read_text().strip()
    return Poster(urls, token, progress=bar, echo=True, settings=stack_settings(rd))


def stack_settings(rd: Path) -> Settings | None:
    """The stack's settings (its database prefix: where the certificate offices' person accounts live), from the
    run dir's stack.env; None (the environment's) when there is none."""
    env = rd / "stack.env"
    if not env.exists():
        return None
    values = dict(line.split("=", 1) for line in env.read_text().splitlines() if "=" in line)
    if "DB_PREFIX" not in values:
        return None
    return Settings(db_prefix=values["DB_PREFIX"].strip())


async def load(args: argparse.Namespace) -> int:
    c = county_mod.load(args.county)
    today = datetime.now(CHINA).date()
    year = args.year or today.year
    plan = year_plan(c, args.seed, year, args.births, today)
    p = poster(args)
    print(f"{c.name} {c.code}: year {year}, {len(plan.cases)} pregnancies, {plan.size()} records to post",
          flush=True)
    t0 = time.monotonic()
    await p.run(plan)
    await asyncio.sleep(3)  # the registry's visits reach the screening service, which opens high-risk cases
    hr = await manage_high_risk(p.urls, p.token, c.code, c.rates["high_risk_managed"], args.seed, today)
    print(hr.line())
    print(f"region names: {await name_regions(p.urls['indicators'], p.token, c)} named for the tables and dashboards")
    print(f"done in {time.monotonic() - t0:.0f}s", flush=True)
    return 0


async def name_regions(indicators: str, token: str, c: county_mod.County) -> int:
    """The demo county and its townships by name (乡镇名称) in the report tables and dashboards: the demo's are
    fictional, so they are not among the GB/T 2260 names the indicators service knows."""
    names = {c.code: c.name, **{f"{c.code}{i + 1:03d}": t.name for i, t in enumerate(c.townships)}}
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        for code, name in names.items():
            r = await http.put(f"{indicators}/v1/regions/{code}", json={"name": name})
            r.raise_for_status()
    return len(names)


async def stream(args: argparse.Namespace) -> int:
    """A steady trickle: one pregnancy delivering today every 60/per_minute seconds, with its whole history."""
    c = county_mod.load(args.county)
    p = poster(args)
    every = 60.0 / args.per_minute
    n = 0
    while True:
        today = datetime.now(CHINA).date()
        tag = datetime.now(CHINA).strftime("%Y%m%d%H%M%S") + f"{n % 100:02d}"
        plan = live_plan(c, args.seed + n, today, 1, tag)
        p.echo = False
        results = await p.run(plan)
        accepted = sum(r.accepted for r in results)
        print(f"{datetime.now(CHINA):%H:%M:%S} posted a delivery of {today} ({accepted} records)", flush=True)
        n += 1
        if args.count and n >= args.count:
            return 0
        await asyncio.sleep(every)


def show_plan(args: argparse.Namespace) -> int:
    c = county_mod.load(args.county)
    today = datetime.now(CHINA).date()
    plan = year_plan(c, args.seed, args.year or today.year, args.births, today)
    for step in plan.ordered():
        print(f"{step.name:<26} {len(step.ops):>7}  {step.service} {step.method} {step.batch_path or ''}")
    print(f"{'total':<26} {plan.size():>7}")
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("load", "stream", "plan"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--year", type=int, default=None, help="default: this year, up to today")
    ap.add_argument("--births", type=int, default=None, help="default: the county's 1,300 a year")
    ap.add_argument("--county", default=None, help="6-digit county code (default: the county file's)")
    ap.add_argument("--per-minute", type=float, default=6.0, help="stream: deliveries a minute")
    ap.add_argument("--count", type=int, default=0, help="stream: stop after this many (0: never)")
    ap.add_argument("--run-dir", default=None, help="the stack's run dir (urls.env, dev-token); default .run")
    ap.add_argument("--urls-env", default=None)
    ap.add_argument("--token", default=os.environ.get("MCH_TOKEN"))
    args = ap.parse_args()
    if args.command == "plan":
        sys.exit(show_plan(args))
    sys.exit(asyncio.run(load(args) if args.command == "load" else stream(args)))


if __name__ == "__main__":
    main()
