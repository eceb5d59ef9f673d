"""A small demo county posted once per test session through the test stack's real APIs (shared by the demo,
annual report and dashboard tests), with what was planned, to compute expected numbers from."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from typing import Any

from demo import county as county_mod
from demo.generate import year_plan
from demo.plan import Plan
from demo.post import Poster, StepResult
from tests.conftest import Stack, fresh_county

YEAR = date.today().year - 1
BIRTHS = 160
SEED = 11


@dataclass
class SmallCounty:
    code: str
    year: int
    plan: Plan
    poster: Poster
    results: list[StepResult]

    def delivered(self) -> list[dict[str, Any]]:
        """Cases whose delivery the registry accepted, delivered in the year."""
        return [c for c in self.plan.cases if c.get("delivered") and c["delivered"].year == self.year
                and f"@c:{c['pregnancy_id']}" in self.poster.done]

    def expected(self) -> dict[str, tuple[int, int | None]]:
        """indicators.md straight from what was posted (every demo delivery facility is midwifery-licensed)."""
        lb = wd = facility = caes = 0
        for c in self.delivered():
            if c["gestation_days"] < 196:
                continue
            wd += 1
            for b in c["babies"]:
                if b["outcome"] == "live":
                    lb += 1
                    facility += c["place"] == "hospital"
                    caes += c["mode"] == "caesarean"
        return {"live_births": (lb, None), "women_delivered": (wd, None),
                "hospital_delivery_rate": (facility, lb), "caesarean_rate": (caes, lb)}


_cache: dict[str, SmallCounty] = {}
_lock = asyncio.Lock()


async def small_county(stack: Stack) -> SmallCounty:
    async with _lock:
        if "county" not in _cache:
            code = fresh_county()
            c = county_mod.load(code, prior_child_cohorts=1)
            plan = year_plan(c, SEED, YEAR, BIRTHS, date.today())
            urls = {svc: stack.url(svc) for svc in ("registry", "screening", "certificates", "indicators")}
            poster = Poster(urls, stack.token, settings=stack.settings)
            results = await poster.run(plan)
            _cache["county"] = SmallCounty(code, YEAR, plan, poster, results)
        return _cache["county"]
