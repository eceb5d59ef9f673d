"""Quality use cases. Two kinds of work:

- evaluation (the consumer, and the periodic sweep): the other services' events update quality's copy of their
  records; every evaluation unit an event touches — its pregnancy's file (孕产档案), the encounter itself, a
  follow-up case, the institution's monthly measures — is evaluated again from its current records and its
  queries reconciled with the findings. A unit's findings depend only on its records and "today", never on the
  order the events came in, so the live queries equal a full recomputation (`reconciliation`).
- the queries' people (API): an institution lists and answers its queries, the bureau sees its region's,
  accepts answers and sees the scores. Each use case owns one unit of work (kit.scope.UnitOfWork)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from kit.clock import today_cn
from kit.db import Database
from kit.records import fail
from kit.scope import Scope, UnitOfWork
from sqlalchemy.ext.asyncio import AsyncConnection

from quality.domain import queries, rules
from quality.domain.queries import Query
from quality.domain.records import Certificate, Encounter, FollowupCase, Person, Pregnancy
from quality.domain.rules import Finding
from quality.events.read import Institution, Read, Screening
from quality.store import sql

SERVICE = "quality"
RULES = rules.load()
#: the encounter types that have rules of their own (per record): the others are judged in their pregnancy's file
RECORD_RULE_TYPES = ("delivery", "child_check")
#: the account automatic changes (opened, corrected, withdrawn) are recorded under
RULES_ACTOR = "quality-rules"
__all__ = ["today_cn"]


# ---------------------------------------------------------------- applying events
async def _touch(conn: AsyncConnection, r: Read, units: set[str]) -> None:
    """Keep the record (highest version wins) and note the evaluation units it belongs to."""
    x = r.record
    if isinstance(x, Institution):
        await sql.upsert_institution(conn, x, r.version)
    elif isinstance(x, Pregnancy):
        old = await sql.upsert_pregnancy(conn, x, r.version, r.posted_on)
        units.update({f"P:{x.pregnancy_id}", f"M:{x.institution_code}"} | ({f"M:{old}"} if old else set()))
    elif isinstance(x, Encounter):
        old = await sql.upsert_encounter(conn, x, r.version, r.posted_on)
        if x.type in RECORD_RULE_TYPES:
            units.add(f"E:{x.key}")
        if x.pregnancy_id:
            units.add(f"P:{x.pregnancy_id}")
        elif x.person_id and (p := await sql.pregnancy_of_child(conn, x.person_id)):
            units.add(f"P:{p}")
        if x.type == "delivery":
            units.update({f"M:{x.institution_code}"} | ({f"M:{old}"} if old else set()))
    elif isinstance(x, Person):
        await sql.upsert_person(conn, x, r.version)
        units.update(f"P:{p}" for p in await sql.pregnancies_of_person(conn, x.person_id))
    elif isinstance(x, Certificate):
        await sql.upsert_certificate(conn, x, r.version)
        if p := await sql.pregnancy_of_child(conn, x.child_id):
            units.add(f"P:{p}")
    elif isinstance(x, FollowupCase):
        await sql.upsert_case(conn, x, r.version)
        units.add(f"C:{x.case_id}")
    elif isinstance(x, Screening):
        old = await sql.upsert_screening(conn, x, r.version)
        if x.hiv_test:
            units.update({f"M:{x.institution_code}"} | ({f"M:{old}"} if old else set()))


async def apply_events(conn: AsyncConnection, reads: Sequence[Read], today: date | None = None) -> None:
    """One consumer batch: keep the records, then evaluate each touched unit once."""
    units: set[str] = set()
    for r in reads:
        await _touch(conn, r, units)
    today = today or today_cn()
    for unit in sorted(units):
        await evaluate_unit(conn, unit, today)


async def findings_of(conn: AsyncConnection, unit: str, today: date) -> tuple[list[Finding], date | None]:
    """A unit's findings from its current records, and when its time-based rules must be looked at again."""
    kind, ident = unit.split(":", 1)
    if kind == "P":
        f = await sql.pregnancy_file(conn, ident)
        return (rules.pregnancy_findings(RULES, f, today) if f else []), rules.pregnancy_next_check(RULES, f, today)
    if kind == "E":
        e = await sql.get_encounter(conn, ident)
        return (rules.encounter_findings(RULES, e) if e else []), None
    if kind == "C":
        c = await sql.get_case(conn, ident)
        return (rules.case_findings(RULES, c, today) if c else []), rules.case_next_check(c, today)
    m = await sql.measures(conn, ident)
    months = sorted({month for _, month in m})
    return rules.aggregate_findings(RULES, m) + rules.outlier_findings(RULES, m, months), None


async def evaluate_unit(conn: AsyncConnection, unit: str, today: date) -> list[Query]:
    found, next_due = await findings_of(conn, unit, today)
    existing = await sql.queries_of_unit(conn, unit)
    gone = [q.record_key for k, q in existing.items() if k not in {f.key for f in found}]
    voided = await sql.voided_records(conn, gone) if gone else set()
    changed = queries.reconcile(existing, {f.key: f for f in found}, voided, today, RULES.query_due_days)
    for q in changed:
        await sql.save_query(conn, unit, q, RULES_ACTOR)
    if unit[0] in "PC":  # only pregnancy files and follow-up cases have time-based rules
        await sql.set_unit_due(conn, unit, next_due)
    return changed


async def sweep(db: Database, today: date | None = None) -> int:
    """The time-based rules (28 days after birth, a case past its due date): evaluate the units whose day came.
    Run periodically by the consumer process; returns how many units were looked at."""
    today = today or today_cn()
    async with db.begin() as conn:
        units = await sql.due_units(conn, today)
        for unit in units:
            await evaluate_unit(conn, unit, today)
    return len(units)


async def reconciliation(conn: AsyncConnection, today: date) -> dict[str, Any]:
    """Every unit recomputed from its records, against the live queries: what is open but should not be, and
    what should be open but is not (both empty when the live evaluation is right)."""
    should: set[str] = set()
    for unit in await sql.all_units(conn):
        found, _ = await findings_of(conn, unit, today)
        should |= {f.key for f in found}
    live = set(await sql.live_query_keys(conn))
    return {"units": len(await sql.all_units(conn)), "live_queries": len(live),
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
