"""Quality persistence (asyncpg through the SQLAlchemy connection of the unit of work or the consumer's batch).

Records are kept at their highest version (an older version arriving late changes nothing); queries are
upserted with every change appended to their history (never rewritten)."""
from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from kit.db import from_json, raw, to_json
from sqlalchemy.ext.asyncio import AsyncConnection

from quality.domain.queries import Query
from quality.domain.records import (
    Baby,
    Certificate,
    Encounter,
    FollowupCase,
    Person,
    Pregnancy,
    PregnancyFile,
)
from quality.domain.rules import Measures
from quality.events.read import Institution, Screening


# ---------------------------------------------------------------- records (highest version wins)
async def upsert_institutions(conn: AsyncConnection, items: list[tuple[Institution, int]]) -> None:
    c = await raw(conn)
    await c.executemany(
        "insert into known_institution (code, name, region_code, version) values ($1, $2, $3, $4) "
        "on conflict (code) do update set name = excluded.name, region_code = excluded.region_code, "
        "version = excluded.version where known_institution.version <= excluded.version",
        [(i.code, i.name, i.region_code, v) for i, v in items])


async def _previous(c: Any, table: str, key: str, keys: list[str]) -> list[str]:
    """The institutions the records were attributed to before this batch (their month counts change too)."""
    rows = await c.fetch(f"select institution_code from {table} where {key} = any($1::text[])", keys)
    return [r[0] for r in rows]


async def upsert_pregnancies(conn: AsyncConnection, items: list[tuple[Pregnancy, int, date | None]]) -> list[str]:
    """Keep the pregnancies (highest version wins); returns the institutions they were attributed to before."""
    c = await raw(conn)
    old = await _previous(c, "rec_pregnancy", "pregnancy_id", [p.pregnancy_id for p, _, _ in items])
    await c.executemany(
        "insert into rec_pregnancy (pregnancy_id, mother_id, lmp, booked_on, institution_code, voided, posted_on, "
        "version) values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (pregnancy_id) do update set "
        "mother_id = excluded.mother_id, lmp = excluded.lmp, booked_on = excluded.booked_on, "
        "institution_code = excluded.institution_code, voided = excluded.voided, posted_on = excluded.posted_on, "
        "version = excluded.version where rec_pregnancy.version <= excluded.version",
        [(p.pregnancy_id, p.mother_id, p.lmp, p.booked_on, p.institution_code, p.voided, posted, v)
         for p, v, posted in items])
    return old


def _facts(e: Encounter) -> dict[str, Any]:
    return {"gestational_days": e.gestational_days, "mode": e.mode, "is_newborn_visit": e.is_newborn_visit,
            "z": e.z, "babies": [[b.weight_g, b.outcome, b.child_id, b.sex] for b in e.babies]}


def _encounter(r: Any) -> Encounter:
    f = from_json(r["facts"])
    return Encounter(r["encounter_key"], r["type"], r["occurred_on"], r["institution_code"], r["pregnancy_id"],
                     r["person_id"], r["voided"], f["gestational_days"], f["mode"],
                     tuple(Baby(*b) for b in f["babies"]), f["is_newborn_visit"], f["z"])


async def upsert_encounters(conn: AsyncConnection, items: list[tuple[Encounter, int, date | None]]) -> list[str]:
    """Keep the encounters (and which pregnancy each delivered child was born of); returns the institutions the
    deliveries were attributed to before."""
    c = await raw(conn)
    old = await _previous(c, "rec_encounter", "encounter_key", [e.key for e, _, _ in items if e.type == "delivery"])
    await c.executemany(
        "insert into rec_encounter (encounter_key, type, occurred_on, institution_code, pregnancy_id, person_id, "
        "voided, live_births, caesarean, posted_on, facts, version) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
        "$10, $11, $12) on conflict (encounter_key) do update set type = excluded.type, "
        "occurred_on = excluded.occurred_on, institution_code = excluded.institution_code, "
        "pregnancy_id = excluded.pregnancy_id, person_id = excluded.person_id, voided = excluded.voided, "
        "live_births = excluded.live_births, caesarean = excluded.caesarean, posted_on = excluded.posted_on, "
        "facts = excluded.facts, version = excluded.version where rec_encounter.version <= excluded.version",
        [(e.key, e.type, e.occurred_on, e.institution_code, e.pregnancy_id, e.person_id, e.voided,
          sum(1 for b in e.babies if b.outcome == "live"), e.mode == "caesarean", posted, to_json(_facts(e)), v)
         for e, v, posted in items])
    links = {(b.child_id, e.pregnancy_id) for e, _, _ in items if e.type == "delivery" and e.pregnancy_id
             for b in e.babies if b.child_id}
    if links:
        await c.executemany("insert into child_link (child_id, pregnancy_id) values ($1, $2) "
                            "on conflict (child_id) do update set pregnancy_id = excluded.pregnancy_id", sorted(links))
    return old


async def upsert_persons(conn: AsyncConnection, items: list[tuple[Person, int]]) -> None:
    c = await raw(conn)
    await c.executemany(
        "insert into rec_person (person_id, birth_date, born_in_pregnancy_id, version) values ($1, $2, $3, $4) "
        "on conflict (person_id) do update set birth_date = excluded.birth_date, "
        "born_in_pregnancy_id = excluded.born_in_pregnancy_id, version = excluded.version "
        "where rec_person.version <= excluded.version",
        [(p.person_id, p.birth_date, p.born_in_pregnancy_id, v) for p, v in items])
    links = sorted({(p.person_id, p.born_in_pregnancy_id) for p, _ in items if p.born_in_pregnancy_id})
    if links:
        await c.executemany("insert into child_link (child_id, pregnancy_id) values ($1, $2) on conflict do nothing",
                            links)


async def upsert_certificates(conn: AsyncConnection, items: list[tuple[Certificate, int]]) -> None:
    c = await raw(conn)
    await c.executemany(
        "insert into rec_certificate (serial, child_id, kind, status, institution_code, version) "
        "values ($1, $2, $3, $4, $5, $6) on conflict (serial) do update set child_id = excluded.child_id, "
        "kind = excluded.kind, status = excluded.status, institution_code = excluded.institution_code, "
        "version = excluded.version where rec_certificate.version <= excluded.version",
        [(x.serial, x.child_id, x.kind, x.status, x.institution_code, v) for x, v in items])


async def upsert_cases(conn: AsyncConnection, items: list[tuple[FollowupCase, int]]) -> None:
    c = await raw(conn)
    await c.executemany(
        "insert into rec_case (case_id, case_type, status, due_on, institution_code, version) "
        "values ($1, $2, $3, $4, $5, $6) on conflict (case_id) do update set case_type = excluded.case_type, "
        "status = excluded.status, due_on = excluded.due_on, institution_code = excluded.institution_code, "
        "version = excluded.version where rec_case.version <= excluded.version",
        [(x.case_id, x.case_type, x.status, x.due_on, x.institution_code, v) for x, v in items])


async def upsert_screenings(conn: AsyncConnection, items: list[tuple[Screening, int]]) -> list[str]:
    c = await raw(conn)
    old = await _previous(c, "rec_screening", "screening_key", [s.key for s, _ in items])
    await c.executemany(
        "insert into rec_screening (screening_key, type, hiv_test, performed_on, institution_code, voided, version) "
        "values ($1, $2, $3, $4, $5, $6, $7) on conflict (screening_key) do update set type = excluded.type, "
        "hiv_test = excluded.hiv_test, performed_on = excluded.performed_on, "
        "institution_code = excluded.institution_code, voided = excluded.voided, version = excluded.version "
        "where rec_screening.version <= excluded.version",
        [(s.key, s.type, s.hiv_test, s.performed_on, s.institution_code, s.voided, v) for s, v in items])
    return old


# ---------------------------------------------------------------- evaluation units
async def pregnancies_of_persons(conn: AsyncConnection, person_ids: list[str]) -> list[str]:
    """The pregnancies whose files persons' records belong to: theirs as mothers, and the ones they were born of."""
    c = await raw(conn)
    rows = await c.fetch("select pregnancy_id from rec_pregnancy where mother_id = any($1::text[]) union "
                         "select pregnancy_id from child_link where child_id = any($1::text[])", person_ids)
    return [r[0] for r in rows]


async def pregnancies_of_children(conn: AsyncConnection, child_ids: list[str]) -> list[str]:
    c = await raw(conn)
    rows = await c.fetch("select distinct pregnancy_id from child_link where child_id = any($1::text[])", child_ids)
    return [r[0] for r in rows]


async def voided_records(conn: AsyncConnection, record_keys: list[str]) -> set[str]:
    """Which of these record keys name a voided record (its findings are withdrawn, not corrected)."""
    c = await raw(conn)
    enc = [k for k in record_keys if not k.startswith(("pregnancy:", "case:", "month:"))]
    preg = [k.removeprefix("pregnancy:") for k in record_keys if k.startswith("pregnancy:")]
    out = {r[0] for r in await c.fetch(
        "select encounter_key from rec_encounter where encounter_key = any($1::text[]) and voided", enc)}
    out |= {"pregnancy:" + r[0] for r in await c.fetch(
        "select pregnancy_id from rec_pregnancy where pregnancy_id = any($1::text[]) and voided", preg)}
    return out


async def due_units(conn: AsyncConnection, today: date, limit: int = 2000) -> list[str]:
    c = await raw(conn)
    return [r[0] for r in await c.fetch("select unit from unit_due where due_on <= $1 order by due_on limit $2",
                                        today, limit)]


async def all_units(conn: AsyncConnection) -> list[str]:
    """Every evaluation unit there is (the reconciliation's full recomputation)."""
    c = await raw(conn)
    rows = await c.fetch(
        "select 'P:' || pregnancy_id from rec_pregnancy union all "
        "select 'E:' || encounter_key from rec_encounter where type in ('delivery', 'child_check') union all "
        "select 'C:' || case_id from rec_case union all "
        "select 'M:' || institution_code from (select institution_code from rec_encounter union "
        "select institution_code from rec_pregnancy union select institution_code from rec_screening) i")
    return [r[0] for r in rows]


# ---------------------------------------------------------------- queries
QUERY_COLS = ("key", "id", "unit", "rule_id", "record_key", "institution_code", "detail", "period", "status",
              "opened_on", "due_on", "closed_on", "comment", "answered_by", "version")


def _query(r: Any) -> Query:
    return Query(r["key"], r["rule_id"], r["record_key"], r["institution_code"], r["detail"], r["period"],
                 r["status"], r["opened_on"], r["due_on"], r["closed_on"], r["comment"], r["answered_by"],
                 r["version"])


async def save_query(conn: AsyncConnection, unit: str, q: Query, actor: str) -> None:
    c = await raw(conn)
    vals: list[Any] = [q.key, uuid.UUID(q.id), unit, q.rule_id, q.record_key, q.institution_code, q.detail,
                       q.period, q.status, q.opened_on, q.due_on, q.closed_on, q.comment, q.answered_by, q.version]
    sets = ", ".join(f"{k} = excluded.{k}" for k in QUERY_COLS[2:])
    await c.execute(
        f"insert into quality_query ({', '.join(QUERY_COLS)}) values "
        f"({', '.join(f'${i + 1}' for i in range(len(QUERY_COLS)))}) on conflict (key) do update set {sets}, "
        "updated_at = now()", *vals)
    await c.execute("insert into quality_query_history (key, version, status, comment, actor) values "
                    "($1, $2, $3, $4, $5) on conflict do nothing", q.key, q.version, q.status, q.comment, actor)


async def get_query(conn: AsyncConnection, query_id: str, for_update: bool = False) -> tuple[str, Query] | None:
    """(unit, query) by its id; None for a malformed or unknown id."""
    try:
        qid = uuid.UUID(query_id)
    except ValueError:
        return None
    c = await raw(conn)
    r = await c.fetchrow("select * from quality_query where id = $1" + (" for update" if for_update else ""), qid)
    return (r["unit"], _query(r)) if r else None


async def institution_region(conn: AsyncConnection, code: str) -> str | None:
    c = await raw(conn)
    return await c.fetchval("select region_code from known_institution where code = $1",  # type: ignore[no-any-return]
                            code)


async def list_queries(conn: AsyncConnection, region: str, institution: str | None, statuses: list[str],
                       overdue_on: date | None, limit: int, after: str | None) -> list[tuple[Query, str, str]]:
    """Queries addressed to institutions under a region prefix, (query, institution region, institution name),
    keyed-paged on the query key. Institutions not (yet) known to quality are in no region: never listed."""
    c = await raw(conn)
    args: list[Any] = [region + "%", statuses]
    where = ["i.region_code like $1", "q.status = any($2::text[])"]
    if institution:
        args.append(institution)
        where.append(f"q.institution_code = ${len(args)}")
    if overdue_on is not None:
        args.append(overdue_on)
        where.append(f"q.status = 'open' and q.due_on < ${len(args)}")
    if after:
        args.append(after)
        where.append(f"q.key > ${len(args)}")
    args.append(limit)
    rows = await c.fetch(
        "select q.*, i.region_code as inst_region, i.name as inst_name from quality_query q "
        f"join known_institution i on i.code = q.institution_code where {' and '.join(where)} "
        f"order by q.key limit ${len(args)}", *args)
    return [(_query(r), r["inst_region"], r["inst_name"]) for r in rows]


#: the (institution, month) pairs of a score computation, as two parallel arrays
PAIRS = "with p as (select * from unnest($1::text[], $2::text[]) as p(inst, month))"
#: a record's clinical date within the pair's month (the index on (institution_code, date) serves it)
_IN = ("{t}.institution_code = p.inst and {t}.{col} >= to_date(p.month, 'YYYY-MM') "
       "and {t}.{col} < (to_date(p.month, 'YYYY-MM') + interval '1 month')::date")


def _in(t: str, col: str) -> str:
    return _IN.format(t=t, col=col)


async def score_parts(conn: AsyncConnection, pairs: list[tuple[str, str]], timeliness_days: int,
                      today: date) -> dict[tuple[str, str], dict[str, Any]]:
    """The counts behind the quality scores of each (institution, month of clinical dates) pair of an institution
    known to quality: records, records posted within `timeliness_days` of the encounter, expected newborn visits
    (live births ≥ 28 days old) and those present, and the open (incl. answered) queries about that month. The
    scores API and the published score-parts events both come from here."""
    if not pairs:
        return {}
    c = await raw(conn)
    args = ([i for i, _ in pairs], [m for _, m in pairs])
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in await c.fetch(
            PAIRS + ", i as (select distinct p.inst, p.month, k.name, k.region_code from p "
            "join known_institution k on k.code = p.inst) select * from i", *args):
        out[(r["inst"], r["month"])] = {
            "name": r["name"], "region_code": r["region_code"], "records": 0, "timely": 0,
            "newborn_visits_expected": 0, "newborn_visits_present": 0, "open_queries": 0}
    if not out:
        return out
    for r in await c.fetch(
            PAIRS + ", recs as (select p.inst, p.month, e.posted_on - e.occurred_on as lag from rec_encounter e "
            f"join p on {_in('e', 'occurred_on')} where not e.voided union all "
            "select p.inst, p.month, r.posted_on - r.booked_on from rec_pregnancy r "
            f"join p on {_in('r', 'booked_on')} where not r.voided) "
            "select inst, month, count(*) n, count(*) filter (where lag <= $3) timely from recs group by 1, 2",
            *args, timeliness_days):
        if (key := (r["inst"], r["month"])) in out:
            out[key].update(records=r["n"], timely=r["timely"])
    for r in await c.fetch(
            PAIRS + " select p.inst, p.month, count(*) expected, count(*) filter (where exists ("
            "select 1 from rec_encounter v where v.person_id = e->>2 and not v.voided and v.type = 'child_check' "
            "and (v.facts->>'is_newborn_visit')::boolean)) present "
            f"from p join rec_encounter d on {_in('d', 'occurred_on')}, jsonb_array_elements(d.facts->'babies') e "
            "where d.type = 'delivery' and not d.voided and e->>1 = 'live' and coalesce(e->>2, '') <> '' "
            "and d.occurred_on + 28 < $3 group by 1, 2", *args, today):
        if (key := (r["inst"], r["month"])) in out:
            out[key].update(newborn_visits_expected=r["expected"], newborn_visits_present=r["present"])
    for r in await c.fetch(
            PAIRS + " select p.inst, p.month, count(*) n from p join quality_query q on q.institution_code = p.inst "
            "and q.period = p.month where q.status in ('open', 'answered') group by 1, 2", *args):
        if (key := (r["inst"], r["month"])) in out:
            out[key]["open_queries"] = r["n"]
    return out


async def scores(conn: AsyncConnection, region: str, month: str, timeliness_days: int,
                 today: date) -> list[dict[str, Any]]:
    """score_parts of every institution under `region` for one month (YYYY-MM), with the scores themselves."""
    c = await raw(conn)
    codes = [r[0] for r in await c.fetch("select code from known_institution where region_code like $1 "
                                         "order by code", region + "%")]
    parts = await score_parts(conn, [(code, month) for code in codes], timeliness_days, today)
    out = []
    for code in codes:
        r = parts[(code, month)]
        n, expected, present = r["records"], r["newborn_visits_expected"], r["newborn_visits_present"]
        out.append({
            "institution_code": code, "name": r["name"], "region_code": r["region_code"], "month": month,
            "records": n, "timely": r["timely"], "newborn_visits_expected": expected,
            "newborn_visits_present": present, "open_queries": r["open_queries"],
            "timeliness": round(r["timely"] * 100 / n, 2) if n else None,
            "completeness": round(present * 100 / expected, 2) if expected else None,
            "validity": round(r["open_queries"] * 100 / n, 2) if n else None})
    return out


# ---------------------------------------------------------------- which score parts a change touches
async def record_months(conn: AsyncConnection, encounter_keys: list[str],
                        pregnancy_ids: list[str]) -> set[tuple[str, str]]:
    """The (institution, month) pairs these records are counted in now (before a batch changes them)."""
    c = await raw(conn)
    rows = await c.fetch(
        "select institution_code, to_char(occurred_on, 'YYYY-MM') from rec_encounter "
        "where encounter_key = any($1::text[]) union select institution_code, to_char(booked_on, 'YYYY-MM') "
        "from rec_pregnancy where pregnancy_id = any($2::text[])", encounter_keys, pregnancy_ids)
    return {(r[0], r[1]) for r in rows}


async def birth_months(conn: AsyncConnection, child_ids: list[str]) -> set[tuple[str, str]]:
    """The pairs whose expected newborn visits these children are (their deliveries' institution and month)."""
    c = await raw(conn)
    rows = await c.fetch(
        "select d.institution_code, to_char(d.occurred_on, 'YYYY-MM') from child_link l join rec_encounter d "
        "on d.pregnancy_id = l.pregnancy_id and d.type = 'delivery' where l.child_id = any($1::text[])", child_ids)
    return {(r[0], r[1]) for r in rows}


async def institution_months(conn: AsyncConnection, codes: list[str]) -> set[tuple[str, str]]:
    """Every pair of these institutions (an institution's region changed, or it became known to quality)."""
    c = await raw(conn)
    rows = await c.fetch(
        "select institution_code, to_char(occurred_on, 'YYYY-MM') from rec_encounter "
        "where institution_code = any($1::text[]) union select institution_code, to_char(booked_on, 'YYYY-MM') "
        "from rec_pregnancy where institution_code = any($1::text[]) union select institution_code, period "
        "from quality_query where institution_code = any($1::text[]) and period <> ''", codes)
    return {(r[0], r[1]) for r in rows}


async def recent_birth_months(conn: AsyncConnection, since: date) -> set[tuple[str, str]]:
    """The pairs of deliveries on or after `since` (their newborn visits fall due with the passing days)."""
    c = await raw(conn)
    rows = await c.fetch("select distinct institution_code, to_char(occurred_on, 'YYYY-MM') from rec_encounter "
                         "where type = 'delivery' and occurred_on >= $1", since)
    return {(r[0], r[1]) for r in rows}


async def published_scores(conn: AsyncConnection,
                           pairs: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[tuple[Any, ...], int]]:
    """What was last published for each pair: (region and parts, version); locked until the transaction ends."""
    c = await raw(conn)
    rows = await c.fetch(
        "select s.* from score_published s join unnest($1::text[], $2::text[]) as p(inst, month) "
        "on s.institution_code = p.inst and s.month = p.month order by 1, 2 for update of s",
        [i for i, _ in pairs], [m for _, m in pairs])
    return {(r["institution_code"], r["month"]): (tuple(r[k] for k in SCORE_COLS), r["version"]) for r in rows}


#: the published columns compared (besides institution, month and version)
SCORE_COLS = ("institution_region", "records", "timely", "followups_expected", "followups_present", "open_queries")


async def save_published(conn: AsyncConnection,
                         rows: list[tuple[str, str, tuple[Any, ...], int]]) -> None:
    """Record (institution, month, parts as SCORE_COLS, version) as published."""
    c = await raw(conn)
    cols = ("institution_code", "month", *SCORE_COLS, "version")
    await c.executemany(
        f"insert into score_published ({', '.join(cols)}) values ({', '.join(f'${i + 1}' for i in range(len(cols)))}) "
        "on conflict (institution_code, month) do update set "
        + ", ".join(f"{k} = excluded.{k}" for k in (*SCORE_COLS, "version")),
        [(i, m, *parts, v) for i, m, parts, v in rows])


async def live_query_keys(conn: AsyncConnection) -> list[str]:
    c = await raw(conn)
    return [r[0] for r in await c.fetch("select key from quality_query where status in ('open', 'answered', "
                                        "'accepted')")]


async def query_history(conn: AsyncConnection, key: str) -> list[dict[str, Any]]:
    c = await raw(conn)
    rows = await c.fetch("select version, status, comment, actor, recorded_at from quality_query_history "
                         "where key = $1 order by version", key)
    return [{**dict(r), "recorded_at": r["recorded_at"].isoformat()} for r in rows]


# ---------------------------------------------------------------- set-based reads and writes of a whole batch
async def pregnancy_files(conn: AsyncConnection, ids: list[str]) -> dict[str, PregnancyFile]:
    """pregnancy_file for many pregnancies in seven queries (a consumer batch touches hundreds)."""
    c = await raw(conn)
    files: dict[str, PregnancyFile] = {}
    for p in await c.fetch("select * from rec_pregnancy where pregnancy_id = any($1::text[])", ids):
        files[p["pregnancy_id"]] = PregnancyFile(Pregnancy(p["pregnancy_id"], p["mother_id"], p["lmp"], p["booked_on"],
                                                           p["institution_code"], p["voided"]))
    if not files:
        return files
    mothers = {f.pregnancy.mother_id for f in files.values()}
    rows = await c.fetch("select * from rec_person where person_id = any($1::text[])", list(mothers))
    persons = {r["person_id"]: Person(r["person_id"], r["birth_date"], r["born_in_pregnancy_id"]) for r in rows}
    for f in files.values():
        f.mother = persons.get(f.pregnancy.mother_id)
    for r in await c.fetch("select * from rec_encounter where pregnancy_id = any($1::text[]) and not voided "
                           "order by encounter_key", list(files)):
        files[r["pregnancy_id"]].encounters.append(_encounter(r))
    owner = {b.child_id: pid for pid, f in files.items() for e in f.encounters if e.type == "delivery"
             for b in e.babies if b.child_id}
    if not owner:
        return files
    kids = list(owner)
    for r in await c.fetch("select * from rec_person where person_id = any($1::text[])", kids):
        files[owner[r["person_id"]]].children[r["person_id"]] = Person(r["person_id"], r["birth_date"],
                                                                       r["born_in_pregnancy_id"])
    for r in await c.fetch("select * from rec_encounter where person_id = any($1::text[]) and not voided "
                           "and type = 'child_check' order by encounter_key", kids):
        files[owner[r["person_id"]]].child_encounters.setdefault(r["person_id"], []).append(_encounter(r))
    for r in await c.fetch("select * from rec_certificate where child_id = any($1::text[]) order by serial", kids):
        files[owner[r["child_id"]]].certificates.setdefault(r["child_id"], []).append(
            Certificate(r["serial"], r["child_id"], r["kind"], r["status"], r["institution_code"]))
    return files


async def encounters(conn: AsyncConnection, keys: list[str]) -> dict[str, Encounter]:
    c = await raw(conn)
    rows = await c.fetch("select * from rec_encounter where encounter_key = any($1::text[])", keys)
    return {r["encounter_key"]: _encounter(r) for r in rows}


async def cases(conn: AsyncConnection, ids: list[str]) -> dict[str, FollowupCase]:
    c = await raw(conn)
    rows = await c.fetch("select * from rec_case where case_id = any($1::text[])", ids)
    return {r["case_id"]: FollowupCase(r["case_id"], r["case_type"], r["status"], r["due_on"], r["institution_code"])
            for r in rows}


async def measures_of(conn: AsyncConnection, institutions: list[str]) -> dict[str, Measures]:
    """measures() of many institutions in three queries."""
    c = await raw(conn)
    out: dict[str, Measures] = {i: {} for i in institutions}
    for r in await c.fetch(
            "select institution_code i, to_char(occurred_on, 'YYYY-MM') m, count(*) wd, sum(live_births) lb, "
            "count(*) filter (where caesarean) cs from rec_encounter where institution_code = any($1::text[]) "
            "and type = 'delivery' and not voided group by 1, 2", institutions):
        out[r["i"]][(r["i"], r["m"])] = {"women_delivered": r["wd"], "live_births": int(r["lb"]),
                                         "caesareans": r["cs"]}
    for r in await c.fetch("select institution_code i, to_char(booked_on, 'YYYY-MM') m, count(*) n from rec_pregnancy "
                           "where institution_code = any($1::text[]) and not voided group by 1, 2", institutions):
        out[r["i"]].setdefault((r["i"], r["m"]), {})["booked"] = r["n"]
    for r in await c.fetch("select institution_code i, to_char(performed_on, 'YYYY-MM') m, count(*) n "
                           "from rec_screening where institution_code = any($1::text[]) and hiv_test and not voided "
                           "group by 1, 2", institutions):
        out[r["i"]].setdefault((r["i"], r["m"]), {})["hiv_tested"] = r["n"]
    return out


async def queries_of_units(conn: AsyncConnection, units: list[str]) -> dict[str, dict[str, Query]]:
    c = await raw(conn)
    out: dict[str, dict[str, Query]] = {}
    for r in await c.fetch("select * from quality_query where unit = any($1::text[]) order by key for update",
                           units):
        out.setdefault(r["unit"], {})[r["key"]] = _query(r)
    return out


async def save_queries(conn: AsyncConnection, changed: list[tuple[str, Query]], actor: str) -> None:
    """save_query for many queries: one statement each for the queries and their history."""
    if not changed:
        return
    c = await raw(conn)
    sets = ", ".join(f"{k} = excluded.{k}" for k in QUERY_COLS[2:])
    await c.executemany(
        f"insert into quality_query ({', '.join(QUERY_COLS)}) values "
        f"({', '.join(f'${i + 1}' for i in range(len(QUERY_COLS)))}) on conflict (key) do update set {sets}, "
        "updated_at = now()",
        [(q.key, uuid.UUID(q.id), unit, q.rule_id, q.record_key, q.institution_code, q.detail, q.period, q.status,
          q.opened_on, q.due_on, q.closed_on, q.comment, q.answered_by, q.version) for unit, q in changed])
    await c.executemany("insert into quality_query_history (key, version, status, comment, actor) values "
                        "($1, $2, $3, $4, $5) on conflict do nothing",
                        [(q.key, q.version, q.status, q.comment, actor) for _, q in changed])


async def set_unit_dues(conn: AsyncConnection, dues: list[tuple[str, date | None]]) -> None:
    c = await raw(conn)
    gone = [u for u, d in dues if d is None]
    if gone:
        await c.execute("delete from unit_due where unit = any($1::text[])", gone)
    due = [(u, d) for u, d in dues if d is not None]
    if due:
        await c.executemany("insert into unit_due (unit, due_on) values ($1, $2) on conflict (unit) do update set "
                            "due_on = excluded.due_on", due)
