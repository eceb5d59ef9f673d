"""Use cases of the indicators service that change state: the filing steps (上报 / 审核 / 退回). Each is one unit
of work — it opens the transaction, checks the caller's region on the object, applies the pure rules of
`domain.approval`, writes the filing and its audit step, and commits. Who acts is the authenticated person.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kit.auth import Principal
from kit.db import Database
from kit.records import fail
from sqlalchemy.ext.asyncio import AsyncConnection

from indicators.clock import china_today
from indicators.domain import approval, provisional, regions
from indicators.domain import populations as pop_rules
from indicators.domain import targets as target_rules
from indicators.domain.catalogue import Catalogue, Indicator, by_measure
from indicators.domain.facts import Fact
from indicators.domain.values import value
from indicators.engine import Engine
from indicators.store import filings, names, sql


@dataclass(frozen=True)
class Target:
    report: str
    period: str
    unit: str


class Filings:
    def __init__(self, db: Database, catalogue: Catalogue, levels: dict[str, tuple[int, ...]]) -> None:
        self.db = db
        self.catalogue = catalogue
        self.levels = levels  # report → approval levels, lowest first

    def check(self, t: Target) -> None:
        approval.check_target(t.report, t.period, t.unit, self.levels.get(t.report, ()))  # unknown report: 404

    async def authorise(self, conn: AsyncConnection, t: Target, p: Principal) -> str:
        """The caller's region must cover the unit: a region (403 outside), or an institution's current region
        (an institution unknown or outside answers 404, like any object). Returns the unit's region."""
        if approval.is_institution(t.unit):
            region = await names.institution_region(conn, t.unit[len(approval.INST):])
            p.require_object(region, "institution", t.unit[len(approval.INST):])
            return region or ""
        p.require_region(t.unit, "unit")
        return t.unit

    async def current_figures(self, conn: AsyncConnection, t: Target) -> approval.Figures:
        codes = [i.code for i in self.catalogue.indicators]
        parts = self.catalogue.parts(codes)
        if approval.is_institution(t.unit):
            rows = await sql.read_counters(conn, [t.period], parts, china_today(), region="",
                                           institution=t.unit[len(approval.INST):])
        else:
            rows = await sql.read_counters(conn, [t.period], parts, china_today(), region=t.unit)
        return approval.figures(rows, codes, {i.code for i in self.catalogue.indicators if i.denominator})

    @staticmethod
    async def below(conn: AsyncConnection, report: str, period: str, unit: str, length: int) -> dict[str, str]:
        if length == approval.INSTITUTION:
            return await filings.institutions_below(conn, report, period, unit)
        return await filings.units_below(conn, report, period, unit, length)

    @asynccontextmanager
    async def step(self, t: Target, p: Principal) -> AsyncIterator[tuple[AsyncConnection, str]]:
        """The opening of every filing step (上报, 审核, 退回): the target checked, the caller's region covering its
        unit (routes admit only a person logged in: `require(..., person=True)`), and the report's period locked
        against concurrent steps. Yields the transaction and the unit's region."""
        self.check(t)
        async with self.db.begin() as conn:
            region = await self.authorise(conn, t, p)
            await filings.lock_report_period(conn, t.report, t.period)
            yield conn, region

    async def submit(self, t: Target, p: Principal, request_id: str = "") -> dict[str, Any]:
        """上报: file the unit's current figures as its snapshot (again, if it was returned or not yet approved)."""
        async with self.step(t, p) as (conn, _):
            approval.can_submit(await filings.get(conn, t.report, t.period, t.unit))
            figs = await self.current_figures(conn, t)
            await filings.submit(conn, t.report, t.period, t.unit, figs, self.catalogue.digest, p.actor, p.name)
            await filings.step(conn, t.report, t.period, t.unit, "submit", p.actor, p.name, figures=figs,
                               request_id=request_id)
        return await self.view(t, p)

    async def approve(self, t: Target, p: Principal, request_id: str = "") -> dict[str, Any]:
        """审核通过: lock the filing, once every unit below is approved."""
        async with self.step(t, p) as (conn, _):
            current = await filings.get(conn, t.report, t.period, t.unit)
            below = approval.level_below(t.unit, self.levels[t.report])
            states = await self.below(conn, t.report, t.period, t.unit, below) if below else {}
            approval.can_approve(current, p.actor, sorted(u for u, s in states.items() if s != approval.APPROVED))
            await filings.approve(conn, t.report, t.period, t.unit, p.actor, p.name)
            await filings.step(conn, t.report, t.period, t.unit, "approve", p.actor, p.name, request_id=request_id)
        return await self.view(t, p)

    async def unapprove(self, t: Target, p: Principal, reason: str | None, request_id: str = "") -> dict[str, Any]:
        """退回: unlock a filing (with a reason) so that its unit can refile."""
        async with self.step(t, p) as (conn, region):
            current = await filings.get(conn, t.report, t.period, t.unit)
            above = approval.level_above(t.unit, self.levels[t.report], region)
            parent = await filings.get(conn, t.report, t.period, above) if above else None
            clean = approval.can_unapprove(current, parent, reason)
            await filings.unapprove(conn, t.report, t.period, t.unit)
            await filings.step(conn, t.report, t.period, t.unit, "unapprove", p.actor, p.name, reason=clean,
                               request_id=request_id)
        return await self.view(t, p)

    async def view(self, t: Target, p: Principal) -> dict[str, Any]:
        """The filing: its state, filed vs current figures per indicator, the adjustments (late corrections after
        approval: which records, from where, when) and every step."""
        self.check(t)
        async with self.db.connect() as conn:
            await self.authorise(conn, t, p)
            d = await filings.detail(conn, t.report, t.period, t.unit)
            current = await self.current_figures(conn, t)
            steps = await filings.steps(conn, t.report, t.period, t.unit)
            adjustments = await filings.adjustments(conn, t.report, t.period, t.unit)
        filed: approval.Figures = d["figures"] if d else {}
        today = china_today()
        rows = []
        for ind in self.catalogue.indicators:
            now = current.get(ind.code, [0, None])
            was = filed.get(ind.code)
            rows.append({"code": ind.code, "name_zh": ind.name_zh, "unit": ind.unit,
                         "filed": None if was is None else {"numerator": was[0], "denominator": was[1],
                                                            "value": value(ind, was[0] or 0, was[1])},
                         "current": {"numerator": now[0], "denominator": now[1],
                                     "value": value(ind, now[0] or 0, now[1])},
                         "changed": was is not None and was != now,
                         **provisional.status(ind, t.period, today)})
        counted_by = by_measure(self.catalogue.parts())
        for a in adjustments:
            a["indicators"] = sorted({c for c, _ in counted_by.get(a["measure"], [])})
            # who: `posted_by`, the actors of the events (the person or named system of the token that posted
            # them), and the source system of each record (`encounter:<source>/<id>`); the request ids lead to
            # the posting service's audit row
            a["sources"] = sorted({r.split(":", 1)[-1].split("/", 1)[0] for r in a["records"] if "/" in r})
        meta = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in (d or {}).items()
                if k not in ("figures",)}
        return {"report": t.report, "report_zh": approval.REPORTS[t.report], "period": t.period, "unit": t.unit,
                "state": d["state"] if d else "", "state_zh": approval.STATE_ZH[d["state"] if d else ""],
                "filing": meta or None, "changed": [r["code"] for r in rows if r["changed"]], "rows": rows,
                "adjustments": adjustments, "steps": steps}

    async def completeness(self, report: str, period: str, region: str, p: Principal) -> dict[str, Any]:
        """Completeness and timeliness (上报完整率 / 及时率) of the units one approval level below `region`:
        expected are those with figures in the period, a filing or a name; on time against the deadline."""
        approval.check_listing(report, period, region)
        p.require_region(region)
        levels = self.levels[report]
        below = approval.level_below(region, levels) if region else min(levels)
        if below is None:
            raise fail("region", "no approval level below this region")
        async with self.db.connect() as conn:
            states = await self.below(conn, report, period, region, below)
            named = await names.named_children(conn, region, below)
            first = await filings.first_submitted(conn, report, period, sorted(set(states) | set(named)))
            labels = await names.region_names(conn, set(states) | set(named))
        units = {u: first.get(u, (states.get(u, ""), None)) for u in set(states) | set(named)}
        out = approval.completeness(units, approval.deadline(period))
        for r in out["units"]:
            r["name"] = labels.get(r["unit"], "")
        return {"report": report, "period": period, "region": region, "level": below, **out}

    async def listing(self, report: str, period: str, region: str, p: Principal) -> dict[str, Any]:
        """Every filing of a report and period under a region, with its state."""
        approval.check_listing(report, period, region)
        p.require_region(region)
        async with self.db.connect() as conn:
            rows = await filings.listing(conn, report, period, region)
        return {"report": report, "period": period, "region": region, "filings": rows}



class Targets:
    """Targets (任务数 / 目标值): set, list with their decomposition, delete, decompose to the level below."""

    def __init__(self, db: Database, catalogue: Catalogue) -> None:
        self.db = db
        self.catalogue = catalogue

    def _indicator(self, code: str) -> Indicator:
        ind = self.catalogue.by_code().get(code)
        if ind is None:
            raise fail("code", "unknown indicator code")
        return ind

    @staticmethod
    def _region(region: str, p: Principal, *, blank_ok: bool = False) -> None:
        if not regions.is_prefix(region) or (not region and not blank_ok):
            raise fail("region", "must be a region code prefix of 2, 4, 6, 9 or 12 digits")
        p.require_region(region)

    async def put(self, code: str, region: str, year: int, target: float, comparison: str | None,
                  p: Principal) -> dict[str, Any]:
        ind = self._indicator(code)
        self._region(region, p)
        value_, comp = target_rules.check(ind, target, comparison)
        async with self.db.begin() as conn:
            await sql.put_target(conn, code, region, year, value_, comp, p.actor)
        return {"code": code, "region": region, "year": year, "target": _show(ind, value_), "comparison": comp,
                "set_by": p.actor}

    async def delete(self, code: str, region: str, year: int, p: Principal) -> dict[str, Any]:
        self._indicator(code)
        self._region(region, p)
        async with self.db.begin() as conn:
            if not await sql.delete_target(conn, code, region, year):
                raise fail("code", f"no target of {code} for {region} in {year}", 404)
        return {"code": code, "region": region, "year": year, "deleted": True}

    async def listing(self, region: str, year: int, code: str | None, p: Principal) -> dict[str, Any]:
        if code is not None:
            self._indicator(code)
        self._region(region, p, blank_ok=True)
        by_code = self.catalogue.by_code()
        async with self.db.connect() as conn:
            rows = await sql.list_targets(conn, region, year, code)
            labels = await names.region_names(conn, {r["region"] for r in rows})
        out = [{**r, "target": _show(by_code[r["code"]], r["target"]), "region_name": labels.get(r["region"], "")}
               for r in rows if r["code"] in by_code]
        return {"region": region, "year": year, "targets": out, "decomposition": _decomposition(out, by_code)}

    async def decompose(self, code: str, region: str, year: int, basis_year: int | None,
                        p: Principal) -> dict[str, Any]:
        """A count target split in proportion to the regions' achieved counts of the basis year (largest
        remainders, so the parts sum to the whole); a rate target copied to every region below."""
        ind = self._indicator(code)
        self._region(region, p)
        below = regions.child_level(region)
        if below is None:
            raise fail("region", "a 12-digit village has no level below")
        basis = basis_year or year - 1
        async with self.db.begin() as conn:
            own = (await sql.read_targets(conn, [code], [region], year)).get((code, region))
            if own is None:
                raise fail("code", f"{region} has no target of {code} for {year} to decompose", 404)
            rows = await sql.read_counters(conn, [str(basis)], self.catalogue.parts([code]), china_today(),
                                           region=region, region_len=below)
            achieved = {r["region"]: int(r["n"]) for r in rows if r["part"] == "n"}
            # the regions below with any figures that year (a rate's denominator too) or a name
            units = {r["region"] for r in rows} | set(await names.named_children(conn, region, below))
            if not units:
                raise fail("region", f"no region below {region} is known (no figures in {basis}, no names)", 409)
            if ind.denominator is None:
                parts = {u: Decimal(v) for u, v in
                         target_rules.decompose(int(own[0]), {u: achieved.get(u, 0) for u in units}).items()}
            else:
                parts = {u: own[0] for u in units}
            for u, v in sorted(parts.items()):
                if v > 0:
                    await sql.put_target(conn, code, u, year, v, own[1], p.actor)
        return {"code": code, "region": region, "year": year, "basis_year": basis, "target": _show(ind, own[0]),
                "parts": {u: _show(ind, v) for u, v in sorted(parts.items())}}


def _show(ind: Indicator, v: Decimal) -> int | float:
    return int(v) if ind.denominator is None else float(v)


def _decomposition(rows: list[dict[str, Any]], by_code: dict[str, Indicator]) -> list[dict[str, Any]]:
    """For each count target, the sum of the targets one level below it and what is not decomposed (未分解)."""
    out = []
    for r in rows:
        if by_code[r["code"]].denominator is not None:
            continue
        below = regions.child_level(r["region"])
        parts = [x for x in rows if x["code"] == r["code"] and below and len(x["region"]) == below
                 and x["region"].startswith(r["region"])]
        if parts:
            given = sum(int(x["target"]) for x in parts)
            out.append({"code": r["code"], "region": r["region"], "target": r["target"], "decomposed": given,
                        "not_decomposed": int(r["target"]) - given})
    return out


class Populations:
    """人口基数: population denominators a bureau posts for its regions and years (domain.populations). Each
    change is a fact applied by the engine in the same transaction, so rates like 出生率 move at once and a
    reconciliation or rebuild finds them like every other input."""

    def __init__(self, db: Database, engine: Engine) -> None:
        self.db = db
        self.engine = engine

    @staticmethod
    def _region(region: str, p: Principal) -> None:
        if not regions.is_prefix(region) or not region:
            raise fail("region", "must be a region code of 2, 4, 6, 9 or 12 digits")
        p.require_region(region)

    async def put(self, region: str, kind: str, year: int, value_: int, p: Principal) -> dict[str, Any]:
        self._region(region, p)
        pop_rules.check(region, kind, year, value_)
        key = pop_rules.record_key(region, kind, year)
        async with self.db.begin() as conn:
            await sql.lock_engine(conn)  # the version read and the write are one step
            stored = await sql.population_facts(conn, year)
            clash = pop_rules.overlapping(region, [f.body["region"] for f in stored
                                                   if not f.voided and f.body.get("kind") == kind])
            if clash:
                raise fail("region", f"{kind} for {year} is already posted for {', '.join(clash)}, above or below "
                                     f"{region}: both would count the same people (delete it first)", 409)
            version = max((f.version for f in stored if f.record_key == key), default=0) + 1
            body = {"region": region, "kind": kind, "year": year, "value": value_, "posted_by": p.actor}
            await self.engine.apply_facts(conn, [Fact(key, pop_rules.unit_key(region, kind), version, False, body)])
        return {"region": region, "kind": kind, "kind_zh": pop_rules.KINDS[kind], "year": year, "value": value_,
                "version": version, "posted_by": p.actor}

    async def delete(self, region: str, kind: str, year: int, p: Principal) -> dict[str, Any]:
        self._region(region, p)
        key = pop_rules.record_key(region, kind, year)
        async with self.db.begin() as conn:
            await sql.lock_engine(conn)
            old = next((f for f in await sql.population_facts(conn, year) if f.record_key == key), None)
            if old is None or old.voided:
                raise fail("kind", f"no {kind} figure of {region} for {year}", 404)
            await self.engine.apply_facts(conn, [Fact(key, old.subject_key, old.version + 1, True, old.body)])
        return {"region": region, "kind": kind, "year": year, "deleted": True}

    async def listing(self, region: str, year: int, p: Principal) -> dict[str, Any]:
        """The figures of `region` and the regions below it (those above are another bureau's)."""
        p.require_region(region)
        async with self.db.connect() as conn:
            rows = [f.body for f in await sql.population_facts(conn, year)
                    if not f.voided and str(f.body["region"]).startswith(region)]
        rows.sort(key=lambda b: (b["region"], list(pop_rules.KINDS).index(b["kind"])))
        return {"region": region, "year": year, "kinds": pop_rules.KINDS,
                "populations": [{k: b[k] for k in ("region", "kind", "year", "value")} for b in rows]}
