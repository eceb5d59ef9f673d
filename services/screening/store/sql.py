"""Screening persistence (asyncpg through the SQLAlchemy connection of the unit of work)."""
from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from kit.db import from_json, raw, to_json
from sqlalchemy.ext.asyncio import AsyncConnection

from screening.domain.followup import Action, Case
from screening.domain.model import PersonInfo, PregnancyInfo


# ---------------------------------------------------------------- known from registry events (highest version wins)
async def upsert_institution(conn: AsyncConnection, code: str, region_code: str, version: int) -> None:
    c = await raw(conn)
    await c.execute(
        "insert into known_institution (code, region_code, version) values ($1, $2, $3) "
        "on conflict (code) do update set region_code = excluded.region_code, version = excluded.version "
        "where known_institution.version <= excluded.version", code, region_code, version)


async def institution_region(conn: AsyncConnection, code: str) -> str | None:
    c = await raw(conn)
    r: str | None = await c.fetchval("select region_code from known_institution where code = $1", code)
    return r


async def upsert_person(conn: AsyncConnection, person_id: str, sex: str, birth_date: date,
                        residence: list[tuple[str, str]], mother_id: str | None, born_in: str | None,
                        version: int) -> None:
    c = await raw(conn)
    await c.execute(
        "insert into known_person (person_id, sex, birth_date, residence, mother_id, born_in_pregnancy_id, version) "
        "values ($1, $2, $3, $4, $5, $6, $7) on conflict (person_id) do update set sex = excluded.sex, "
        "birth_date = excluded.birth_date, residence = excluded.residence, mother_id = excluded.mother_id, "
        "born_in_pregnancy_id = excluded.born_in_pregnancy_id, version = excluded.version "
        "where known_person.version <= excluded.version",
        person_id, sex, birth_date, to_json([list(s) for s in residence]), mother_id, born_in, version)


async def get_person(conn: AsyncConnection, person_id: str) -> PersonInfo | None:
    c = await raw(conn)
    r = await c.fetchrow("select * from known_person where person_id = $1", person_id)
    if r is None:
        return None
    return PersonInfo(r["person_id"], r["sex"], r["birth_date"], [(s, code) for s, code in from_json(r["residence"])],
                      r["mother_id"])


async def upsert_pregnancy(conn: AsyncConnection, p: PregnancyInfo, version: int) -> None:
    c = await raw(conn)
    await c.execute(
        "insert into known_pregnancy (pregnancy_id, mother_id, lmp_date, registered_on, residence_code, voided, "
        "version) values ($1, $2, $3, $4, $5, $6, $7) on conflict (pregnancy_id) do update set "
        "mother_id = excluded.mother_id, lmp_date = excluded.lmp_date, registered_on = excluded.registered_on, "
        "residence_code = excluded.residence_code, voided = excluded.voided, version = excluded.version "
        "where known_pregnancy.version <= excluded.version",
        p.pregnancy_id, p.mother_id, p.lmp_date, p.registered_on, p.residence_code, p.voided, version)


async def get_pregnancy(conn: AsyncConnection, pregnancy_id: str) -> PregnancyInfo | None:
    c = await raw(conn)
    r = await c.fetchrow(
        "select p.*, (select max(d.delivered_on) from known_delivery d where d.pregnancy_id = p.pregnancy_id "
        "and not d.voided) as delivered_on from known_pregnancy p where p.pregnancy_id = $1", pregnancy_id)
    if r is None:
        return None
    return PregnancyInfo(r["pregnancy_id"], r["mother_id"], r["lmp_date"], r["registered_on"], r["residence_code"],
                         r["voided"], r["delivered_on"])


async def upsert_delivery(conn: AsyncConnection, key: str, pregnancy_id: str, on: date, voided: bool,
                          version: int) -> None:
    c = await raw(conn)
    await c.execute(
        "insert into known_delivery (encounter_key, pregnancy_id, delivered_on, voided, version) "
        "values ($1, $2, $3, $4, $5) on conflict (encounter_key) do update set pregnancy_id = excluded.pregnancy_id, "
        "delivered_on = excluded.delivered_on, voided = excluded.voided, version = excluded.version "
        "where known_delivery.version <= excluded.version", key, pregnancy_id, on, voided, version)


async def upsert_graded_visit(conn: AsyncConnection, key: str, pregnancy_id: str, on: date, grade: str,
                              institution_code: str, voided: bool, version: int) -> None:
    c = await raw(conn)
    await c.execute(
        "insert into graded_visit (encounter_key, pregnancy_id, occurred_on, risk_grade, institution_code, voided, "
        "version) values ($1, $2, $3, $4, $5, $6, $7) on conflict (encounter_key) do update set "
        "pregnancy_id = excluded.pregnancy_id, occurred_on = excluded.occurred_on, risk_grade = excluded.risk_grade, "
        "institution_code = excluded.institution_code, voided = excluded.voided, version = excluded.version "
        "where graded_visit.version <= excluded.version",
        key, pregnancy_id, on, grade, institution_code, voided, version)


async def graded_visits(conn: AsyncConnection, pregnancy_id: str | list[str]) -> list[tuple[date, str, str]]:
    """(date, grade, institution) of the pregnancy's live graded visits, oldest first (of several registrations
    of one episode, merged: a list)."""
    c = await raw(conn)
    ids = [pregnancy_id] if isinstance(pregnancy_id, str) else pregnancy_id
    rows = await c.fetch("select occurred_on, risk_grade, institution_code from graded_visit "
                         "where pregnancy_id = any($1::text[]) and not voided order by occurred_on, encounter_key",
                         ids)
    return [(r["occurred_on"], r["risk_grade"], r["institution_code"]) for r in rows]


# ---------------------------------------------------------------- screening results
async def lock_record(conn: AsyncConnection, key: str) -> None:
    """Serialise concurrent posts of one source record (the first insert would otherwise race)."""
    c = await raw(conn)
    await c.execute("select pg_advisory_xact_lock(hashtextextended($1, 0))", key)


async def get_screening(conn: AsyncConnection, source: str, screening_id: str,
                        for_update: bool = False) -> dict[str, Any] | None:
    c = await raw(conn)
    r = await c.fetchrow("select * from screening where source = $1 and screening_id = $2"
                         + (" for update" if for_update else ""), source, screening_id)
    if r is None:
        return None
    d = dict(r)
    d["result"] = from_json(d["result"])
    d["case_id"] = str(d["case_id"]) if d["case_id"] else None
    return d


async def save_screening(conn: AsyncConnection, row: dict[str, Any], reason: str | None = None) -> None:
    """Insert or replace the current version, and append it to the history (never overwritten)."""
    c = await raw(conn)
    cols = ("source", "screening_id", "version", "type", "subject_id", "subject_key", "person_id", "pregnancy_id",
            "partner_id", "performed_on", "institution_code", "institution_region", "residence_code", "result",
            "classification", "rule_version", "case_id", "content_hash", "voided", "void_reason")
    vals = [row.get(k) for k in cols]
    vals[cols.index("result")] = to_json(row["result"])
    vals[cols.index("case_id")] = uuid.UUID(row["case_id"]) if row.get("case_id") else None
    sets = ", ".join(f"{k} = excluded.{k}" for k in cols[2:])
    await c.execute(
        f"insert into screening ({', '.join(cols)}) values ({', '.join(f'${i + 1}' for i in range(len(cols)))}) "
        f"on conflict (source, screening_id) do update set {sets}, updated_at = now()", *vals)
    await c.execute(
        "insert into screening_history (source, screening_id, version, result, classification, rule_version, "
        "voided, reason) values ($1, $2, $3, $4, $5, $6, $7, $8)", row["source"], row["screening_id"],
        row["version"], to_json(row["result"]), row["classification"], row["rule_version"], row["voided"], reason)


async def screening_history(conn: AsyncConnection, source: str, screening_id: str) -> list[dict[str, Any]]:
    c = await raw(conn)
    rows = await c.fetch("select version, result, classification, rule_version, voided, reason, recorded_at "
                         "from screening_history where source = $1 and screening_id = $2 order by version",
                         source, screening_id)
    return [{**dict(r), "result": from_json(r["result"]), "recorded_at": r["recorded_at"].isoformat()} for r in rows]


# ---------------------------------------------------------------- follow-up cases
CASE_COLS = ("case_id", "screening_source", "screening_id", "screening_type", "reason", "subject_key", "person_id",
             "pregnancy_id", "region_code", "institution_code", "opened_on", "due_on", "status", "closed_on",
             "outcome", "closed_reason", "version")


def _case(r: Any, actions: list[Any]) -> Case:
    return Case(
        case_id=str(r["case_id"]), screening_type=r["screening_type"], reason=r["reason"],
        subject_key=r["subject_key"], person_id=r["person_id"], pregnancy_id=r["pregnancy_id"],
        region_code=r["region_code"], institution_code=r["institution_code"], opened_on=r["opened_on"],
        due_on=r["due_on"], screening_source=r["screening_source"], screening_id=r["screening_id"],
        status=r["status"], closed_on=r["closed_on"], outcome=r["outcome"], closed_reason=r["closed_reason"],
        version=r["version"],
        actions=tuple(Action(a["action"], a["on_date"], a["note"], a["outcome"]) for a in actions))


async def _load_cases(c: Any, rows: list[Any]) -> list[Case]:
    if not rows:
        return []
    acts = await c.fetch("select * from followup_action where case_id = any($1::uuid[]) order by case_id, seq",
                         [r["case_id"] for r in rows])
    by: dict[Any, list[Any]] = {}
    for a in acts:
        by.setdefault(a["case_id"], []).append(a)
    return [_case(r, by.get(r["case_id"], [])) for r in rows]


async def get_case(conn: AsyncConnection, case_id: str, for_update: bool = False) -> Case | None:
    try:
        cid = uuid.UUID(case_id)
    except ValueError:
        return None
    c = await raw(conn)
    r = await c.fetchrow("select * from followup_case where case_id = $1" + (" for update" if for_update else ""),
                         cid)
    return (await _load_cases(c, [r]))[0] if r else None


async def case_of_screening(conn: AsyncConnection, source: str, screening_id: str) -> Case | None:
    c = await raw(conn)
    r = await c.fetchrow("select * from followup_case where screening_source = $1 and screening_id = $2 for update",
                         source, screening_id)
    return (await _load_cases(c, [r]))[0] if r else None


async def high_risk_case(conn: AsyncConnection, pregnancy_id: str) -> Case | None:
    c = await raw(conn)
    r = await c.fetchrow("select * from followup_case where pregnancy_id = $1 and screening_type = "
                         "'pregnancy_high_risk' for update", pregnancy_id)
    return (await _load_cases(c, [r]))[0] if r else None


async def open_cases_of_pregnancy(conn: AsyncConnection, pregnancy_id: str) -> list[Case]:
    c = await raw(conn)
    rows = await c.fetch("select * from followup_case where pregnancy_id = $1 and status = 'open' "
                         "order by case_id for update", pregnancy_id)
    return await _load_cases(c, rows)


async def save_case(conn: AsyncConnection, case: Case, recorded_by: str = "") -> None:
    """Upsert the case; actions are append-only (new ones inserted, never rewritten)."""
    c = await raw(conn)
    vals = [getattr(case, k) for k in CASE_COLS]
    vals[0] = uuid.UUID(case.case_id)
    sets = ", ".join(f"{k} = excluded.{k}" for k in CASE_COLS[1:])
    await c.execute(
        f"insert into followup_case ({', '.join(CASE_COLS)}) values "
        f"({', '.join(f'${i + 1}' for i in range(len(CASE_COLS)))}) "
        f"on conflict (case_id) do update set {sets}, updated_at = now()", *vals)
    n = await c.fetchval("select count(*) from followup_action where case_id = $1", vals[0])
    for seq, a in enumerate(case.actions[n:], start=n + 1):
        await c.execute("insert into followup_action (case_id, seq, action, on_date, note, outcome, recorded_by) "
                        "values ($1, $2, $3, $4, $5, $6, $7)", vals[0], seq, a.action, a.on, a.note, a.outcome,
                        recorded_by)


async def list_cases(conn: AsyncConnection, region: str, status: str | None, overdue: bool | None, today: date,
                     case_type: str | None, limit: int, after: tuple[date, str] | None) -> list[Case]:
    """Cases under a region prefix (index followup_region), oldest due first, keyset-paged on (due_on, case_id).
    `overdue`: True = open and past due on `today`; False = not that; None = either."""
    c = await raw(conn)
    where = ["region_code like $1"]
    args: list[Any] = [region + "%"]
    if status:
        args.append(status)
        where.append(f"status = ${len(args)}")
    if overdue is not None:
        args.append(today)
        where.append(("" if overdue else "not ") + f"(status = 'open' and due_on < ${len(args)})")
    if case_type:
        args.append(case_type)
        where.append(f"screening_type = ${len(args)}")
    if after is not None:
        args += [after[0], uuid.UUID(after[1])]
        where.append(f"(due_on, case_id) > (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    rows = await c.fetch(f"select * from followup_case where {' and '.join(where)} "
                         f"order by due_on, case_id limit ${len(args)}", *args)
    return await _load_cases(c, rows)


async def audit_pii(conn: AsyncConnection, client_id: str, request_id: str, subject_kind: str, subject_id: str,
                    fields: list[str], unmasked: bool) -> None:
    c = await raw(conn)
    await c.execute("insert into pii_audit (client_id, request_id, subject_kind, subject_id, fields, unmasked) "
                    "values ($1, $2, $3, $4, $5, $6)", client_id, request_id, subject_kind, subject_id, fields,
                    unmasked)


async def set_voided_by(conn: AsyncConnection, source: str, screening_id: str, actor: str) -> None:
    """Who voided the result (the token's account), kept beside it."""
    c = await raw(conn)
    await c.execute("update screening set voided_by = $3 where source = $1 and screening_id = $2",
                    source, screening_id, actor)
