"""Prometheus gauges of headline indicators for Grafana: the current month, quarter, year and statistical year,
at configured region levels. Label cardinality is bounded: a fixed code list × the regions of those levels that
have data × 4 current periods."""
from __future__ import annotations

import asyncio
import logging
import os
from datetime import date

from kit.db import Database
from prometheus_client import Gauge

from indicators.clock import china_today
from indicators.domain import periods
from indicators.domain.catalogue import Catalogue
from indicators.domain.values import value
from indicators.store import sql

log = logging.getLogger("indicators.headline")

HEADLINE = ("live_births", "women_delivered", "hospital_delivery_rate", "caesarean_rate",
            "systematic_management_rate", "early_booking_rate", "postpartum_visit_rate", "high_risk_share",
            "maternal_mortality_ratio", "infant_mortality_rate", "under3_systematic_management_rate",
            "under7_health_management_rate", "prenatal_screening_rate", "hbig_rate", "premarital_exam_rate",
            "followup_completion_rate", "certs_issued", "cert_stock_closing")

VALUE = Gauge("mch_indicator_value", "headline indicator value (rate × factor, or count)",
              ["code", "region", "period"])
NUMERATOR = Gauge("mch_indicator_numerator", "headline indicator numerator", ["code", "region", "period"])
DENOMINATOR = Gauge("mch_indicator_denominator", "headline indicator denominator", ["code", "region", "period"])


def current_periods(today: date) -> list[str]:
    month, quarter, _half, year, sy = periods.keys_of(today)[:5]
    return [month, quarter, year, sy]


def levels() -> list[int]:
    return [int(x) for x in os.environ.get("MCH_INDICATOR_METRIC_LEVELS", "0,2,4,6").split(",") if x.strip()]


async def refresh(db: Database, cat: Catalogue) -> int:
    by_code = cat.by_code()
    codes = [c for c in HEADLINE if c in by_code]
    today = china_today()
    keys = current_periods(today)
    async with db.connect() as conn:
        rows = await sql.read_counters(conn, keys, cat.parts(codes), today, levels=levels())
    cells: dict[tuple[str, str, str], dict[str, int]] = {}
    for r in rows:
        cells.setdefault((r["code"], r["region"], r["period"]), {})[r["part"]] = r["n"]
    for g in (VALUE, NUMERATOR, DENOMINATOR):
        g.clear()
    for (code, region, period), parts in cells.items():
        ind = by_code[code]
        n, d = parts.get("n", 0), parts.get("d", 0)
        NUMERATOR.labels(code, region, period).set(n)
        if ind.denominator is not None:
            DENOMINATOR.labels(code, region, period).set(d)
        v = value(ind, n, d if ind.denominator is not None else None)
        if v is not None:
            VALUE.labels(code, region, period).set(v)
    return len(cells)


async def keep_fresh(db: Database, cat: Catalogue, every_s: float = 15.0) -> None:
    while True:
        try:
            await refresh(db, cat)
        except Exception:  # the database may be restarting: keep the last values, try again
            log.warning("headline refresh failed", exc_info=True)
        await asyncio.sleep(every_s)
