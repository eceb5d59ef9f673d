"""Quality use cases. Two kinds of work:

- evaluation (the consumer, and the periodic sweep): the other services' events update quality's copy of their
  records; every evaluation unit an event touches — its pregnancy's file (孕产档案), the encounter itself, a
  follow-up case, the institution's monthly measures — is evaluated again from its current records and its
  queries reconciled with the findings. A unit's findings depend only on its records and "today", never on the
  order the events came in, so the live queries equal a full recomputation (`reconciliation`).
- the queries' people (API): an institution lists and answers its queries, the bureau sees its region's,
  accepts answers and sees the scores. Each use case owns one unit of work (kit.scope.UnitOfWork)."""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from kit import outbox
from kit.clock import today_cn
from kit.db import Database
from kit.events import NewEvent
from kit.records import fail
from kit.scope import Scope, UnitOfWork
from sqlalchemy.ext.asyncio import AsyncConnection

from quality.domain import queries, rules
from quality.domain.queries import Query
from quality.domain.records import Certificate, Encounter, FollowupCase, Person, Pregnancy
from quality.domain.rules import Finding
from quality.events import publish
from quality.events.read import Institution, Read, Screening
from quality.store import sql

SERVICE = "quality"
RULES = rules.load()
#: the encounter types that have rules of their own (per record): the others are judged in their pregnancy's file
RECORD_RULE_TYPES = ("delivery", "child_check")
#: the account automatic changes (opened, corrected, withdrawn) are recorded under
RULES_ACTOR = "quality-rules"
#: the sweep looks again at the score parts of the months with deliveries this recent (a birth becomes an
#: expected newborn visit 29 days on; the margin covers a sweep that did not run for a while)
BIRTH_WINDOW_DAYS = 60
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
__all__ = ["today_cn"]


# ---------------------------------------------------------------- applying events
def _of(reads: Sequence[Read], kind: type[Any]) -> list[Read]:
    return [r for r in reads if isinstance(r.record, kind)]


async def _keep(conn: AsyncConnection, reads: Sequence[Read]) -> set[str]:
    """Keep the batch's records (highest version wins), kind by kind in one statement each, and return the
    evaluation units they belong to."""
    units: set[str] = set()
    if insts := _of(reads, Institution):
        await sql.upsert_institutions(conn, [(r.record, r.version) for r in insts])
    if pregs := _of(reads, Pregnancy):
        old = await sql.upsert_pregnancies(conn, [(r.record, r.version, r.posted_on) for r in pregs])
        units |= {f"P:{r.record.pregnancy_id}" for r in pregs} | {f"M:{r.record.institution_code}" for r in pregs}
        units |= {f"M:{i}" for i in old}
    if encs := _of(reads, Encounter):
        old = await sql.upsert_encounters(conn, [(r.record, r.version, r.posted_on) for r in encs])
        es = [r.record for r in encs]
        units |= {f"E:{e.key}" for e in es if e.type in RECORD_RULE_TYPES}
        units |= {f"P:{e.pregnancy_id}" for e in es if e.pregnancy_id}
        units |= {f"M:{e.institution_code}" for e in es if e.type == "delivery"} | {f"M:{i}" for i in old}
        children = [e.person_id for e in es if not e.pregnancy_id and e.person_id]
        if children:
            units |= {f"P:{p}" for p in await sql.pregnancies_of_children(conn, children)}
    if persons := _of(reads, Person):
        await sql.upsert_persons(conn, [(r.record, r.version) for r in persons])
        units |= {f"P:{p}" for p in await sql.pregnancies_of_persons(conn, [r.record.person_id for r in persons])}
    if certs := _of(reads, Certificate):
        await sql.upsert_certificates(conn, [(r.record, r.version) for r in certs])
        units |= {f"P:{p}" for p in await sql.pregnancies_of_children(conn, [r.record.child_id for r in certs])}
    if cases := _of(reads, FollowupCase):
        await sql.upsert_cases(conn, [(r.record, r.version) for r in cases])
        units |= {f"C:{r.record.case_id}" for r in cases}
    if screens := _of(reads, Screening):
        old = await sql.upsert_screenings(conn, [(r.record, r.version) for r in screens])
        units |= {f"M:{r.record.institution_code}" for r in screens if r.record.hiv_test} | {f"M:{i}" for i in old}
    return units


async def _pairs_before(conn: AsyncConnection, reads: Sequence[Read]) -> set[tuple[str, str]]:
    """The (institution, month) score pairs the batch's records count in, before and after the batch."""
    encs, pregs = [r.record for r in _of(reads, Encounter)], [r.record for r in _of(reads, Pregnancy)]
    pairs = await sql.record_months(conn, [e.key for e in encs], [p.pregnancy_id for p in pregs])
    pairs |= {(e.institution_code, e.occurred_on.isoformat()[:7]) for e in encs}
    return pairs | {(p.institution_code, p.booked_on.isoformat()[:7]) for p in pregs}


async def _pairs_after(conn: AsyncConnection, reads: Sequence[Read], changed: Sequence[Query]) -> set[tuple[str, str]]:
    """The pairs the batch touched through children's newborn visits, changed queries and institutions."""
    children = [e.person_id for e in (r.record for r in _of(reads, Encounter)) if e.type == "child_check"
                and e.person_id]
    pairs = await sql.birth_months(conn, children) if children else set()
    if insts := [r.record.code for r in _of(reads, Institution)]:
        pairs |= await sql.institution_months(conn, insts)
    return pairs | {(q.institution_code, q.period) for q in changed}


async def apply_events(conn: AsyncConnection, reads: Sequence[Read], today: date | None = None) -> None:
    """One consumer batch: keep the records, evaluate each touched unit once, and publish the score parts of the
    institution-months that changed (in the batch's transaction, through the outbox)."""
    today = today or today_cn()
    pairs = await _pairs_before(conn, reads)
    units = await _keep(conn, reads)
    changed = await evaluate_units(conn, sorted(units), today)
    pairs |= await _pairs_after(conn, reads, changed)
    await outbox.append(conn, await score_events(conn, pairs, today), SERVICE)


async def score_events(conn: AsyncConnection, pairs: Iterable[tuple[str, str]], today: date) -> list[NewEvent]:
    """质控评分 as events: the score parts of each pair, recomputed, and an event (next version) for each pair whose
    parts differ from the ones last published. Pairs of institutions quality does not know yet (no region) wait
    for the institution's event."""
    keys = sorted((i, m) for i, m in set(pairs) if i and MONTH.match(m))
    if not keys:
        return []
    parts = await sql.score_parts(conn, keys, RULES.timeliness_days, today)
    before = await sql.published_scores(conn, sorted(parts))
    rows, events = [], []
    for (inst, month), p in sorted(parts.items()):
        now = (p["region_code"], p["records"], p["timely"], p["newborn_visits_expected"],
               p["newborn_visits_present"], p["open_queries"])
        old, version = before.get((inst, month), (None, 0))
        if now != old:
            rows.append((inst, month, now, version + 1))
            events.append(publish.score_parts_changed(inst, month, p, RULES.timeliness_days, version + 1))
    if rows:
        await sql.save_published(conn, rows)
    return events


async def findings_of_units(conn: AsyncConnection, units: list[str],
                            today: date) -> dict[str, tuple[list[Finding], date | None]]:
    """Each unit's findings from its current records, and when its time-based rules must be looked at again; the
    records of all the units are read together (a handful of queries per batch, not per unit)."""
    ids: dict[str, list[str]] = {"P": [], "E": [], "C": [], "M": []}
    for unit in units:
        ids[unit[0]].append(unit[2:])
    out: dict[str, tuple[list[Finding], date | None]] = {}
    if ids["P"]:
        files = await sql.pregnancy_files(conn, ids["P"])
        for pid in ids["P"]:
            f = files.get(pid)
            out[f"P:{pid}"] = ((rules.pregnancy_findings(RULES, f, today) if f else []),
                               rules.pregnancy_next_check(RULES, f, today))
    if ids["E"]:
        encs = await sql.encounters(conn, ids["E"])
        for key in ids["E"]:
            e = encs.get(key)
            out[f"E:{key}"] = (rules.encounter_findings(RULES, e) if e else []), None
    if ids["C"]:
        found = await sql.cases(conn, ids["C"])
        for cid in ids["C"]:
            c = found.get(cid)
            out[f"C:{cid}"] = (rules.case_findings(RULES, c, today) if c else []), rules.case_next_check(c, today)
    if ids["M"]:
        measures = await sql.measures_of(conn, ids["M"])
        for inst in ids["M"]:
            m = measures.get(inst, {})
            months = sorted({month for _, month in m})
            out[f"M:{inst}"] = rules.aggregate_findings(RULES, m) + rules.outlier_findings(RULES, m, months), None
    return out


async def evaluate_units(conn: AsyncConnection, units: list[str], today: date) -> list[Query]:
    """Evaluate the units again and reconcile their queries with the findings; returns the queries that changed."""
    if not units:
        return []
    results = await findings_of_units(conn, units, today)
    existing = await sql.queries_of_units(conn, units)
    gone = [q.record_key for u in units for k, q in existing.get(u, {}).items()
            if k not in {f.key for f in results[u][0]}]
    voided = await sql.voided_records(conn, gone) if gone else set()
    changed: list[tuple[str, Query]] = []
    for u in units:
        found = {f.key: f for f in results[u][0]}
        changed += [(u, q) for q in queries.reconcile(existing.get(u, {}), found, voided, today,
                                                      RULES.query_due_days)]
    await sql.save_queries(conn, changed, RULES_ACTOR)
    # only pregnancy files and follow-up cases have time-based rules
    await sql.set_unit_dues(conn, [(u, results[u][1]) for u in units if u[0] in "PC"])
    return [q for _, q in changed]


async def sweep(db: Database, today: date | None = None) -> int:
    """The time-based rules (28 days after birth, a case past its due date): evaluate the units whose day came.
    Run periodically by the consumer process; returns how many units were looked at."""
    today = today or today_cn()
    async with db.begin() as conn:
        units = await sql.due_units(conn, today)
        changed = await evaluate_units(conn, units, today)
        # births become expected newborn visits 28 days on: the recent months' parts move with the days
        pairs = {(q.institution_code, q.period) for q in changed}
        pairs |= await sql.recent_birth_months(conn, today - timedelta(days=BIRTH_WINDOW_DAYS))
        await outbox.append(conn, await score_events(conn, pairs, today), SERVICE)
    return len(units)


async def reconciliation(conn: AsyncConnection, today: date) -> dict[str, Any]:
    """Every unit recomputed from its records, against the live queries: what is open but should not be, and
    what should be open but is not (both empty when the live evaluation is right)."""
    should: set[str] = set()
    units = await sql.all_units(conn)
    for i in range(0, len(units), 1000):
        for found, _ in (await findings_of_units(conn, units[i:i + 1000], today)).values():
            should |= {f.key for f in found}
    live = set(await sql.live_query_keys(conn))
    return {"units": len(units), "live_queries": len(live),
            "missing": sorted(should - live)[:100], "extra": sorted(live - should)[:100],
            "equal": should == live}


# ---------------------------------------------------------------- the queries' people
def _require_query(scope: Scope, found: tuple[str, Query] | None, region: str | None, query_id: str) -> Query:
    """The one check of a query: addressed to an institution of the caller's region, and, for a member of an
    institution's staff, to that institution; otherwise answered as if it did not exist."""
    inst = scope.principal.institution_code
    ok = found is not None and (not inst or found[1].institution_code == inst)
    scope.require_object([region] if ok else [], "query", query_id)
    assert found is not None
    return found[1]


def view(q: Query, today: date, region: str = "", name: str = "") -> dict[str, Any]:
    rule = RULES.by_id(q.rule_id)
    return {"id": q.id, "key": q.key, "rule_id": q.rule_id, "severity": rule.severity,
            "description_zh": rule.description_zh,
            "description_en": rule.description_en, "record_key": q.record_key, "institution_code": q.institution_code,
            "institution_name": name, "institution_region": region, "detail": q.detail, "period": q.period,
            "status": q.status, "opened_on": q.opened_on.isoformat(), "due_on": q.due_on.isoformat(),
            "overdue": q.overdue(today), "level": q.level(today),
            "closed_on": q.closed_on.isoformat() if q.closed_on else None, "comment": q.comment,
            "answered_by": q.answered_by, "version": q.version}


async def list_queries(db: Database, scope: Scope, region: str, institution: str | None, statuses: Iterable[str],
                       escalated: bool, limit: int, after: str | None) -> list[dict[str, Any]]:
    """A region's queries (the caller's region or part of it: checked by the router); a member of an
    institution's staff sees only her institution's."""
    own = scope.principal.institution_code
    if own and institution and institution != own:
        return []
    async with UnitOfWork(db, scope, SERVICE) as uow:
        today = uow.today()
        rows = await sql.list_queries(uow.conn, region, own or institution, list(statuses),
                                      today if escalated else None, limit, after)
    return [view(q, today, reg, name) for q, reg, name in rows]


async def get_query(db: Database, scope: Scope, query_id: str) -> dict[str, Any]:
    async with UnitOfWork(db, scope, SERVICE) as uow:
        found = await sql.get_query(uow.conn, query_id)
        region = await sql.institution_region(uow.conn, found[1].institution_code) if found else None
        q = _require_query(scope, found, region, query_id)
        out = view(q, uow.today(), region or "")
        out["history"] = await sql.query_history(uow.conn, q.key)
    return out


async def answer_query(db: Database, scope: Scope, query_id: str, comment: str) -> dict[str, Any]:
    """核实无误: the institution confirms the record as recorded, with its comment, under the token's account."""
    async with UnitOfWork(db, scope, SERVICE) as uow:
        found = await sql.get_query(uow.conn, query_id, for_update=True)
        region = await sql.institution_region(uow.conn, found[1].institution_code) if found else None
        q = _require_query(scope, found, region, query_id)
        assert found is not None
        new = queries.answer(q, comment, scope.actor)
        await sql.save_query(uow.conn, found[0], new, scope.actor)
        uow.emit(*await score_events(uow.conn, [(new.institution_code, new.period)], uow.today()))
        return view(new, uow.today(), region or "")


async def accept_query(db: Database, scope: Scope, query_id: str, comment: str | None) -> dict[str, Any]:
    """The bureau accepts the record as it is (a bureau account: no institution of its own)."""
    if scope.principal.institution_code:
        raise fail("query", "an institution's staff answer their queries; the bureau above accepts them", 403)
    async with UnitOfWork(db, scope, SERVICE) as uow:
        found = await sql.get_query(uow.conn, query_id, for_update=True)
        region = await sql.institution_region(uow.conn, found[1].institution_code) if found else None
        q = _require_query(scope, found, region, query_id)
        assert found is not None
        new = queries.accept(q, comment, scope.actor, uow.today())
        await sql.save_query(uow.conn, found[0], new, scope.actor)
        # an accepted query is no longer open: the month's validity moves
        uow.emit(*await score_events(uow.conn, [(new.institution_code, new.period)], uow.today()))
        return view(new, uow.today(), region or "")


async def scores(db: Database, scope: Scope, region: str, month: str) -> list[dict[str, Any]]:
    """Timeliness, completeness and validity per institution of the region for one month (and the township each
    institution is in, for the ranking by township)."""
    async with UnitOfWork(db, scope, SERVICE) as uow:
        rows = await sql.scores(uow.conn, region, month, RULES.timeliness_days, uow.today())
    own = scope.principal.institution_code
    for r in rows:
        r["township"] = r["region_code"][:9]
    return [r for r in rows if not own or r["institution_code"] == own]


def rule_view() -> dict[str, Any]:
    return {"version": RULES.version, "rules": [
        {"id": r.id, "kind": r.kind, "severity": r.severity, "scope": r.scope, "description_zh": r.description_zh,
         "description_en": r.description_en, "check": r.check} for r in RULES.rules],
        "query_due_days": RULES.query_due_days, "timeliness_days": RULES.timeliness_days}


def default_month(today: date) -> str:
    return (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
