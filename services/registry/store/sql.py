"""Registry persistence (asyncpg through the SQLAlchemy connection of the unit of work)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from kit import outbox
from kit.db import from_json, raw, to_json
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.domain.model import Institution, Pregnancy
from registry.domain.search import PersonSearch


async def get_institution(conn: AsyncConnection, code: str) -> Institution | None:
    c = await raw(conn)
    r = await c.fetchrow("select code, name, region_code, kind, midwifery_licensed from institution where code = $1",
                         code)
    return Institution(r["code"], r["name"], r["region_code"], r["kind"], r["midwifery_licensed"]) if r else None


async def upsert_institution(conn: AsyncConnection, i: Institution) -> tuple[int, bool]:
    """Returns (version, changed)."""
    c = await raw(conn)
    cur = await c.fetchrow("select name, region_code, kind, midwifery_licensed, version from institution "
                           "where code = $1 for update", i.code)
    if cur is None:
        await c.execute("insert into institution (code, name, region_code, kind, midwifery_licensed) "
                        "values ($1, $2, $3, $4, $5)", i.code, i.name, i.region_code, i.kind, i.midwifery_licensed)
        return 1, True
    if (cur["name"], cur["region_code"], cur["kind"], cur["midwifery_licensed"]) == (
            i.name, i.region_code, i.kind, i.midwifery_licensed):
        return cur["version"], False
    v = cur["version"] + 1
    await c.execute("update institution set name = $2, region_code = $3, kind = $4, midwifery_licensed = $5, "
                    "version = $6, updated_at = now() where code = $1",
                    i.code, i.name, i.region_code, i.kind, i.midwifery_licensed, v)
    return v, True


async def person_by_id_number(conn: AsyncConnection, id_number: str) -> Any:
    c = await raw(conn)
    return await c.fetchrow("select * from person where id_number = $1", id_number)


async def get_person(conn: AsyncConnection, person_id: str) -> Any:
    c = await raw(conn)
    try:
        pid = uuid.UUID(person_id)
    except ValueError:
        return None
    return await c.fetchrow("select * from person where person_id = $1", pid)


async def residence_history(conn: AsyncConnection, person_id: str) -> list[tuple[date | None, str]]:
    c = await raw(conn)
    rows = await c.fetch("select since, region_code from person_residence where person_id = $1 order by since",
                         uuid.UUID(person_id))
    return [(r["since"], r["region_code"]) for r in rows]


async def insert_person(conn: AsyncConnection, *, id_number: str | None, name: str, sex: str, birth_date: date,
                        phone: str | None, residence_code: str, mother_id: str | None = None,
                        born_in: str | None = None, hukou_code: str | None = None) -> str:
    c = await raw(conn)
    pid = uuid.uuid4()
    await c.execute(
        "insert into person (person_id, id_number, name, sex, birth_date, phone, mother_id, born_in_pregnancy_id, "
        "hukou_code) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)", pid, id_number, name, sex, birth_date, phone,
        uuid.UUID(mother_id) if mother_id else None, born_in, hukou_code)
    await c.execute("insert into person_residence (person_id, since, region_code) values ($1, $2, $3)",
                    pid, birth_date, residence_code)
    return str(pid)


def _pregnancy(r: Any) -> Pregnancy:
    return Pregnancy(r["pregnancy_id"], r["source"], str(r["mother_id"]), r["lmp_date"], r["registered_on"],
                     r["institution_code"], r["residence_code"], r["version"], r["delivered_on"], r["voided"])


async def get_pregnancy(conn: AsyncConnection, pregnancy_id: str,
                        for_update: bool = False) -> tuple[Pregnancy, str] | None:
    c = await raw(conn)
    r = await c.fetchrow("select * from pregnancy where pregnancy_id = $1" + (" for update" if for_update else ""),
                         pregnancy_id)
    return (_pregnancy(r), r["content_hash"]) if r else None


async def insert_pregnancy(conn: AsyncConnection, p: Pregnancy, content_hash: str) -> None:
    c = await raw(conn)
    await c.execute(
        "insert into pregnancy (pregnancy_id, source, mother_id, lmp_date, registered_on, institution_code, "
        "residence_code, content_hash, version) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        p.pregnancy_id, p.source, uuid.UUID(p.mother_id), p.lmp_date, p.registered_on, p.institution_code,
        p.residence_code, content_hash, p.version)


async def update_pregnancy(conn: AsyncConnection, p: Pregnancy, content_hash: str) -> None:
    c = await raw(conn)
    await c.execute(
        "update pregnancy set lmp_date = $2, registered_on = $3, institution_code = $4, residence_code = $5, "
        "content_hash = $6, version = $7 where pregnancy_id = $1", p.pregnancy_id, p.lmp_date, p.registered_on,
        p.institution_code, p.residence_code, content_hash, p.version)


def _encounter(r: Any) -> dict[str, Any]:
    d = dict(r)
    d["body"] = from_json(d["body"])
    return d


async def encounters_of_pregnancy(conn: AsyncConnection, pregnancy_id: str) -> list[dict[str, Any]]:
    c = await raw(conn)
    rows = await c.fetch("select e.*, i.region_code as institution_region from encounter e left join institution i "
                         "on i.code = e.institution_code where e.pregnancy_id = $1 "
                         "order by e.occurred_on, e.source, e.encounter_id", pregnancy_id)
    return [_encounter(r) for r in rows]


def _uuids(ids: list[str]) -> list[uuid.UUID]:
    out = []
    for i in ids:
        try:
            out.append(uuid.UUID(i))
        except (ValueError, TypeError, AttributeError):
            pass
    return out


async def institutions_by_code(conn: AsyncConnection, codes: list[str]) -> dict[str, Institution]:
    c = await raw(conn)
    rows = await c.fetch("select code, name, region_code, kind, midwifery_licensed from institution "
                         "where code = any($1::text[])", codes)
    return {r["code"]: Institution(r["code"], r["name"], r["region_code"], r["kind"], r["midwifery_licensed"])
            for r in rows}


async def pregnancies_by_id(conn: AsyncConnection, ids: list[str], for_update: bool = True) -> dict[str, Pregnancy]:
    c = await raw(conn)
    rows = await c.fetch("select * from pregnancy where pregnancy_id = any($1::text[]) order by pregnancy_id"
                         + (" for update" if for_update else ""), ids)
    return {r["pregnancy_id"]: _pregnancy(r) for r in rows}


async def pregnancies_of_mothers(conn: AsyncConnection, mother_ids: list[str]) -> dict[str, Pregnancy]:
    c = await raw(conn)
    rows = await c.fetch("select * from pregnancy where mother_id = any($1::uuid[])", _uuids(mother_ids))
    return {r["pregnancy_id"]: _pregnancy(r) for r in rows}


async def persons_by_id(conn: AsyncConnection, ids: list[str]) -> dict[str, Any]:
    """person id → (row, residence history oldest first)."""
    from registry.domain.encounters import Person

    c = await raw(conn)
    keys = _uuids(ids)
    if not keys:
        return {}
    # one round trip: the residence history comes along as two arrays in date order
    rows = await c.fetch(
        "select p.person_id, p.sex, p.birth_date, p.mother_id, p.born_in_pregnancy_id, p.died_on, p.death_key, "
        "p.version, array(select r.since from person_residence r where r.person_id = p.person_id order by r.since) "
        "as since, array(select r.region_code from person_residence r where r.person_id = p.person_id "
        "order by r.since) as codes from person p where p.person_id = any($1::uuid[])", keys)
    return {str(r["person_id"]): Person(
        str(r["person_id"]), r["sex"], r["birth_date"], list(zip(r["since"], r["codes"], strict=True)),
        str(r["mother_id"]) if r["mother_id"] else None, r["born_in_pregnancy_id"], r["died_on"], r["death_key"],
        r["version"]) for r in rows}


async def encounters_by_key(conn: AsyncConnection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    c = await raw(conn)
    rows = await c.fetch("select e.* from encounter e join unnest($1::text[], $2::text[]) k(s, i) "
                         "on e.source = k.s and e.encounter_id = k.i order by e.source, e.encounter_id for update of e",
                         [k[0] for k in keys], [k[1] for k in keys])
    return {(r["source"], r["encounter_id"]): _encounter(r) for r in rows}


def _load_state_sql(lock: bool) -> str:
    # persons are looked up with `= any(array(...))`, not `in (select ...)`: the planner turns the latter into a
    # hash join over the whole person table (a scan growing with the registry), the former into index lookups
    enc_lock, preg_lock = (" for update of e", " for update of p") if lock else ("", "")
    return (
        "with enc as (select e from encounter e join unnest($1::text[], $2::text[]) k(s, i) "
        f"on e.source = k.s and e.encounter_id = k.i order by e.source, e.encounter_id{enc_lock}), "
        "preg as (select p from pregnancy p where p.pregnancy_id = any($3::text[] || array(select (e).pregnancy_id "
        f"from enc where (e).pregnancy_id is not null)) order by p.pregnancy_id{preg_lock}), "
        "pid as (select unnest($4::uuid[]) as id union select (e).person_id from enc where (e).person_id is not null "
        "union select (p).mother_id from preg union select (b->>'child_id')::uuid from enc, "
        "jsonb_array_elements(case when (e).type = 'delivery' then coalesce((e).body->'babies', '[]') else '[]' end) b "
        "where b->>'child_id' ~ '^[0-9a-fA-F-]{36}$') "
        "select array(select e from enc) as encs, array(select p from preg) as pregs, "
        "array(select i from institution i where i.code = any($5::text[] || array(select (e).institution_code "
        "from enc))) as insts, "
        "array(select p from person p where p.person_id = any(array(select id from pid))) as persons, "
        "array(select row(r.person_id, r.since, r.region_code) from person_residence r "
        "where r.person_id = any(array(select id from pid)) order by r.person_id, r.since) as residences")


_LOAD_LOCKED, _LOAD_UNLOCKED = _load_state_sql(True), _load_state_sql(False)


async def load_encounter_state(conn: AsyncConnection, keys: list[tuple[str, str]], codes: list[str],
                               pregnancy_ids: list[str], person_ids: list[str], lock: bool = True) -> tuple[
        dict[tuple[str, str], Any], dict[str, Institution], dict[str, Pregnancy], dict[str, Any]]:
    """What the encounter rules need, in one round trip: the stored encounters of `keys`, and the institutions,
    pregnancies and persons the items name or the stored encounters refer to (pregnancies' mothers and stored
    deliveries' children included). Encounters and pregnancies are locked, in key order (`lock`; otherwise
    the write checks them: `write_encounters(premises=...)`)."""
    from registry.domain.encounters import Person

    c = await raw(conn)
    r = await c.fetchrow(_LOAD_LOCKED if lock else _LOAD_UNLOCKED, [k[0] for k in keys], [k[1] for k in keys],
                         pregnancy_ids, _uuids(person_ids), codes)
    assert r is not None
    encs = {(e["source"], e["encounter_id"]): _encounter(e) for e in r["encs"]}
    insts = {i["code"]: Institution(i["code"], i["name"], i["region_code"], i["kind"], i["midwifery_licensed"])
             for i in r["insts"]}
    pregs = {p["pregnancy_id"]: _pregnancy(p) for p in r["pregs"]}
    spans: dict[Any, list[tuple[date | None, str]]] = {}
    for pid, since, code in r["residences"]:  # oldest first
        spans.setdefault(pid, []).append((since, code))
    persons = {str(p["person_id"]): Person(
        str(p["person_id"]), p["sex"], p["birth_date"], spans.get(p["person_id"], []),
        str(p["mother_id"]) if p["mother_id"] else None, p["born_in_pregnancy_id"], p["died_on"], p["death_key"],
        p["version"]) for p in r["persons"]}
    return encs, insts, pregs, persons


async def insert_children(conn: AsyncConnection, children: list[Any]) -> None:
    """Children created by deliveries (no name or ID number yet: 新生儿)."""
    if not children:
        return
    c = await raw(conn)
    await c.executemany(
        "insert into person (person_id, id_number, name, sex, birth_date, mother_id, born_in_pregnancy_id) "
        "values ($1, null, '', $2, $3, $4, $5)",
        [(uuid.UUID(p.person_id), p.sex, p.birth_date, uuid.UUID(p.mother_id) if p.mother_id else None, p.born_in)
         for p in children])
    await c.executemany("insert into person_residence (person_id, since, region_code) values ($1, $2, $3)",
                        [(uuid.UUID(p.person_id), p.residence[0][0], p.residence[0][1]) for p in children])


async def correct_children(conn: AsyncConnection, corrected: list[tuple[Any, date]]) -> None:
    """A delivery correction moved a child's birth date or changed its sex (the birth residence span moves too)."""
    if not corrected:
        return
    c = await raw(conn)
    await c.executemany("update person set sex = $2, birth_date = $3, version = $4 where person_id = $1",
                        [(uuid.UUID(p.person_id), p.sex, p.birth_date, p.version) for p, _ in corrected])
    await c.executemany("update person_residence set since = $3 where person_id = $1 and since = $2",
                        [(uuid.UUID(p.person_id), old, p.birth_date) for p, old in corrected if old != p.birth_date])


def _encounter_args(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["source"], row["encounter_id"], row["version"], row["type"], row["subject_id"], row.get("pregnancy_id"),
            str(row["person_id"]) if row.get("person_id") else None, row["occurred_on"],  # asyncpg takes text uuids
            row["institution_code"], to_json(row["body"]), row["content_hash"], row["voided"], row.get("void_reason"))


async def save_encounters(conn: AsyncConnection, rows: list[tuple[dict[str, Any], str | None]]) -> None:
    """Insert or replace the current versions, and append each to the history (never overwritten)."""
    if not rows:
        return
    c = await raw(conn)
    if len({(r["source"], r["encounter_id"]) for r, _ in rows}) == len(rows):
        await _save_encounters_unnest(c, rows)
        return
    # the same encounter twice in a batch (a correction right after its original): one statement per row, in order;
    # the history row is what the upsert returned
    await c.executemany(
        "with e as (insert into encounter (source, encounter_id, version, type, subject_id, pregnancy_id, person_id, "
        "occurred_on, institution_code, body, content_hash, voided, void_reason) "
        "values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
        "on conflict (source, encounter_id) do update set version = excluded.version, type = excluded.type, "
        "subject_id = excluded.subject_id, pregnancy_id = excluded.pregnancy_id, person_id = excluded.person_id, "
        "occurred_on = excluded.occurred_on, institution_code = excluded.institution_code, body = excluded.body, "
        "content_hash = excluded.content_hash, voided = excluded.voided, void_reason = excluded.void_reason, "
        "updated_at = now() returning source, encounter_id, version, body, voided) "
        "insert into encounter_history (source, encounter_id, version, body, voided, reason) "
        "select source, encounter_id, version, body, voided, $14 from e",
        [(*_encounter_args(r), why) for r, why in rows])


_UPSERT_SET = (
    "on conflict (source, encounter_id) do update set version = excluded.version, type = excluded.type, "
    "subject_id = excluded.subject_id, pregnancy_id = excluded.pregnancy_id, person_id = excluded.person_id, "
    "occurred_on = excluded.occurred_on, institution_code = excluded.institution_code, body = excluded.body, "
    "content_hash = excluded.content_hash, voided = excluded.voided, void_reason = excluded.void_reason, "
    "updated_at = now()")


async def _save_encounters_unnest(c: Any, rows: list[tuple[dict[str, Any], str | None]]) -> None:
    """Set-based: the batch's rows as arrays, one statement per table (each key once in the batch)."""
    cols = list(zip(*[_encounter_args(r) for r, _ in rows], strict=True))
    reasons = [why for _, why in rows]
    await c.execute(
        "insert into encounter (source, encounter_id, version, type, subject_id, pregnancy_id, person_id, "
        "occurred_on, institution_code, body, content_hash, voided, void_reason) "
        "select s, i, v, t, sub, preg, per, occ, inst, b::jsonb, h, vd, vr from unnest($1::text[], $2::text[], "
        "$3::int[], $4::text[], $5::text[], $6::text[], $7::uuid[], $8::date[], $9::text[], $10::text[], "
        "$11::text[], $12::bool[], $13::text[]) as x(s, i, v, t, sub, preg, per, occ, inst, b, h, vd, vr) "
        + _UPSERT_SET, *cols)
    await c.execute(
        "insert into encounter_history (source, encounter_id, version, body, voided, reason) "
        "select s, i, v, b::jsonb, vd, r from unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bool[], "
        "$6::text[]) as x(s, i, v, b, vd, r)", cols[0], cols[1], cols[2], cols[9], cols[11], reasons)


@dataclass
class Premises:
    """What a unit of work read without locking it, checked (and locked) by its write: the stored encounters'
    versions and the pregnancies' versions and delivery dates. Empty: the reads were locked already."""

    encounters: list[tuple[str, str, int]] = field(default_factory=list)
    pregnancies: list[tuple[str, int, date | None]] = field(default_factory=list)

    def params(self) -> list[Any]:
        e: list[Any] = list(zip(*self.encounters, strict=True)) if self.encounters else [[]] * 3
        p: list[Any] = list(zip(*self.pregnancies, strict=True)) if self.pregnancies else [[]] * 3
        return [*e, *p]


def _write_all_sql() -> str:
    ok = "where (select ok from chk)"
    enc = ("select s, i, v, t, sub, preg, per, occ, inst, b::jsonb, h, vd, vr from unnest($9::text[], $10::text[], "
           "$11::int[], $12::text[], $13::text[], $14::text[], $15::uuid[], $16::date[], $17::text[], $18::text[], "
           "$19::text[], $20::bool[], $21::text[]) as x(s, i, v, t, sub, preg, per, occ, inst, b, h, vd, vr) " + ok)
    return (
        # the premises, locked (a row changed since it was read fails its join condition once its lock is had)
        "with chk as (select (select count(*) from (select 1 from encounter e join unnest($33::text[], $34::text[], "
        "$35::int[]) x(s, i, v) on e.source = x.s and e.encounter_id = x.i and e.version = x.v "
        "order by e.source, e.encounter_id for update of e) a) = cardinality($33::text[]) "
        "and (select count(*) from (select 1 from pregnancy p join unnest($36::text[], $37::int[], $38::date[]) "
        "x(i, v, d) on p.pregnancy_id = x.i and p.version = x.v and p.delivered_on is not distinct from x.d "
        "order by p.pregnancy_id for update of p) b) = cardinality($36::text[]) as ok), "
        "ch as (insert into person (person_id, id_number, name, sex, birth_date, mother_id, born_in_pregnancy_id) "
        "select p, null, '', s, b, m, bi from unnest($1::uuid[], $2::text[], $3::date[], $4::uuid[], $5::text[]) "
        f"as x(p, s, b, m, bi) {ok}), "
        "rs as (insert into person_residence (person_id, since, region_code) "
        f"select p, s, r from unnest($6::uuid[], $7::date[], $8::text[]) as x(p, s, r) {ok}), "
        "en as (insert into encounter (source, encounter_id, version, type, subject_id, pregnancy_id, person_id, "
        f"occurred_on, institution_code, body, content_hash, voided, void_reason) {enc} {_UPSERT_SET}), "
        "hi as (insert into encounter_history (source, encounter_id, version, body, voided, reason) "
        "select s, i, v, b::jsonb, vd, r from unnest($9::text[], $10::text[], $11::int[], $18::text[], $20::bool[], "
        f"$22::text[]) as x(s, i, v, b, vd, r) {ok}), "
        "dl as (update pregnancy set delivered_on = x.d from unnest($23::text[], $24::date[]) as x(p, d) "
        "where pregnancy.pregnancy_id = x.p and (select ok from chk)), "
        "dt as (update person set died_on = x.d, death_key = x.k from unnest($25::uuid[], $26::date[], $27::text[]) "
        "as x(p, d, k) where person.person_id = x.p and (select ok from chk)), "
        f"ob as ({outbox.insert_sql(28, ok)}) "
        "select ok from chk")


async def write_encounters(conn: AsyncConnection, children: list[Any], rows: list[tuple[dict[str, Any], str | None]],
                           delivered: dict[str, date | None], deaths: dict[str, tuple[date | None, str | None]],
                           events: outbox.OutboxColumns, premises: Premises | None = None) -> bool | None:
    """A unit of work's whole write in one statement (one round trip; outside a transaction it is one on its own):
    new children and their birth residence, the encounters (current version + history), deliveries and deaths
    set, the outbox rows. True: written. False: a premise no longer holds, nothing written. None: an encounter
    key appears twice, nothing written (write it step by step)."""
    if len({(r["source"], r["encounter_id"]) for r, _ in rows}) != len(rows):
        return None
    c = await raw(conn)
    kids = [(uuid.UUID(p.person_id), p.sex, p.birth_date, uuid.UUID(p.mother_id) if p.mother_id else None, p.born_in,
             uuid.UUID(p.person_id), p.residence[0][0], p.residence[0][1]) for p in children]
    kid_cols: list[Any] = list(zip(*kids, strict=True)) if kids else [[]] * 8
    enc_cols: list[Any] = list(zip(*[_encounter_args(r) for r, _ in rows], strict=True)) if rows else [[]] * 13
    return bool(await c.fetchval(
        _WRITE_ALL, *kid_cols, *enc_cols, [why for _, why in rows], list(delivered), list(delivered.values()),
        [uuid.UUID(k) for k in deaths], [d for d, _ in deaths.values()], [k for _, k in deaths.values()], *events,
        *(premises or Premises()).params()))


_WRITE_ALL = _write_all_sql()


async def set_delivered_many(conn: AsyncConnection, changes: dict[str, date | None]) -> None:
    if changes:
        c = await raw(conn)
        await c.executemany("update pregnancy set delivered_on = $2 where pregnancy_id = $1", list(changes.items()))


async def set_deaths(conn: AsyncConnection, changes: dict[str, tuple[date | None, str | None]]) -> None:
    if changes:
        c = await raw(conn)
        await c.executemany("update person set died_on = $2, death_key = $3 where person_id = $1",
                            [(uuid.UUID(k), d, key) for k, (d, key) in changes.items()])


async def encounters_of_person(conn: AsyncConnection, person_id: str) -> list[dict[str, Any]]:
    c = await raw(conn)
    rows = await c.fetch("select e.*, i.region_code as institution_region from encounter e left join institution i "
                         "on i.code = e.institution_code where e.person_id = $1 "
                         "order by e.occurred_on, e.source, e.encounter_id", uuid.UUID(person_id))
    return [_encounter(r) for r in rows]


async def children_of(conn: AsyncConnection, mother_id: str) -> list[str]:
    c = await raw(conn)
    return [str(r["person_id"]) for r in await c.fetch(
        "select person_id from person where mother_id = $1 order by birth_date, person_id", uuid.UUID(mother_id))]


async def region_codes(conn: AsyncConnection) -> list[str]:
    c = await raw(conn)
    return [r["code"] for r in await c.fetch("select code from region")]


async def add_residence(conn: AsyncConnection, person_id: str, since: date, region_code: str) -> bool:
    """Append a residence span (history, never overwritten); False when the same span is already there."""
    c = await raw(conn)
    cur = await c.fetchval("select region_code from person_residence where person_id = $1 and since = $2",
                           uuid.UUID(person_id), since)
    if cur == region_code:
        return False
    if cur is not None:
        await c.execute("update person_residence set region_code = $3, recorded_at = now() "
                        "where person_id = $1 and since = $2", uuid.UUID(person_id), since, region_code)
    else:
        await c.execute("insert into person_residence (person_id, since, region_code) values ($1, $2, $3)",
                        uuid.UUID(person_id), since, region_code)
    return True


async def bump_person_version(conn: AsyncConnection, person_id: str) -> int:
    c = await raw(conn)
    return int(await c.fetchval("update person set version = version + 1 where person_id = $1 returning version",
                                uuid.UUID(person_id)))


async def audit_pii(conn: AsyncConnection, client_id: str, request_id: str, kind: str, subject: str,
                    fields: list[str], unmasked: bool) -> None:
    c = await raw(conn)
    await c.execute("insert into pii_audit (client_id, request_id, subject_kind, subject_id, fields, unmasked) "
                    "values ($1, $2, $3, $4, $5, $6)", client_id, request_id, kind, subject, fields, unmasked)


async def institution_region(conn: AsyncConnection, code: str) -> str | None:
    c = await raw(conn)
    return await c.fetchval("select region_code from institution where code = $1", code)  # type: ignore[no-any-return]


async def get_marriage(conn: AsyncConnection, source: str, registration_id: str) -> Any:
    c = await raw(conn)
    return await c.fetchrow("select * from marriage where source = $1 and registration_id = $2 for update",
                            source, registration_id)


async def save_marriage(conn: AsyncConnection, m: dict[str, Any], reason: str | None = None) -> None:
    c = await raw(conn)
    pids = [uuid.UUID(p) for p in m["person_ids"]]
    await c.execute(
        "insert into marriage (source, registration_id, version, registered_on, region_code, person_ids, content_hash, "
        "voided, void_reason) values ($1, $2, $3, $4, $5, $6, $7, $8, $9) on conflict (source, registration_id) do "
        "update set version = excluded.version, registered_on = excluded.registered_on, region_code = "
        "excluded.region_code, person_ids = excluded.person_ids, content_hash = excluded.content_hash, voided = "
        "excluded.voided, void_reason = excluded.void_reason, updated_at = now()",
        m["source"], m["registration_id"], m["version"], m["registered_on"], m["region_code"], pids,
        m["content_hash"], m["voided"], m.get("void_reason"))
    await c.execute(
        "insert into marriage_history (source, registration_id, version, registered_on, region_code, person_ids, "
        "voided, reason) values ($1, $2, $3, $4, $5, $6, $7, $8)", m["source"], m["registration_id"], m["version"],
        m["registered_on"], m["region_code"], pids, m["voided"], reason)


async def void_pregnancy(conn: AsyncConnection, pregnancy_id: str, version: int, reason: str, actor: str) -> None:
    c = await raw(conn)
    await c.execute("update pregnancy set voided = true, void_reason = $3, version = $2, voided_by = $4 "
                    "where pregnancy_id = $1", pregnancy_id, version, reason, actor)


async def active_encounter_count(conn: AsyncConnection, pregnancy_id: str) -> int:
    c = await raw(conn)
    return int(await c.fetchval("select count(*) from encounter where pregnancy_id = $1 and not voided", pregnancy_id))


_VOIDED_BY = {
    "encounter": "update encounter set voided_by = $3 where source = $1 and encounter_id = $2",
    "marriage": "update marriage set voided_by = $3 where source = $1 and registration_id = $2",
}


async def set_voided_by(conn: AsyncConnection, kind: str, source: str, key: str, actor: str) -> None:
    """Who voided a record (the token's account), kept beside it: a void is rare, so a statement of its own."""
    c = await raw(conn)
    await c.execute(_VOIDED_BY[kind], source, key, actor)


# ---------------------------------------------------------------- documents and person search (issue 19)
async def person_by_document(conn: AsyncConnection, kind: str, number: str) -> Any:
    c = await raw(conn)
    return await c.fetchrow("select * from person where document_type = $1 and document_number = $2", kind, number)


async def person_by_document_number(conn: AsyncConnection, number: str) -> Any:
    """A person by a document number of any kind (two kinds sharing a number: the first registered)."""
    c = await raw(conn)
    return await c.fetchrow("select * from person where document_number = $1 order by created_at, person_id "
                            "limit 1", number)


async def set_person_search_keys(conn: AsyncConnection, person_id: str, document_type: str | None,
                                 document_number: str | None, name_pinyin: str) -> None:
    """The document and the name's pinyin of a new person (a statement of its own: the insert stays as it was)."""
    c = await raw(conn)
    await c.execute("update person set document_type = $2, document_number = $3, name_pinyin = $4 "
                    "where person_id = $1", uuid.UUID(person_id), document_type, document_number, name_pinyin or None)


def _search_where(q: PersonSearch, mother_id: str | None) -> tuple[list[str], list[Any], str]:
    """The search's conditions as SQL with numbered parameters ($1 is the region prefix), each one an indexed
    lookup (r0005_h3), and the ordering that puts the name written exactly as searched first."""
    conds: list[str] = []
    args: list[Any] = []
    first = ""

    def arg(v: Any) -> str:
        args.append(v)
        return f"${len(args) + 1}"

    if q.name:
        if q.name_exact:
            first = f"p.name = {arg(q.name_exact)}"
        conds.append(f"({first + ' or ' if first else ''}p.name_pinyin = {arg(q.name_key)})")
    if q.pinyin_prefix:
        conds.append(f"p.name_pinyin like {arg(q.pinyin_prefix + '%')}")
    if q.document_key:
        conds.append(f"p.document_number = {arg(q.document_key)}")
    if q.birth_date:
        conds.append(f"p.birth_date = {arg(q.birth_date)}")
    if q.phone_key:
        conds.append(f"p.phone = {arg(q.phone_key)}")
    if q.mother:
        conds.append(f"p.mother_id = {arg(uuid.UUID(mother_id) if mother_id else None)}")
    return conds, args, first


async def search_persons(conn: AsyncConnection, q: PersonSearch, region_prefix: str,
                         mother_id: str | None) -> list[Any]:
    """The persons matching every criterion whose current residence lies under `region_prefix`, the name written
    exactly as searched first."""
    conds, args, exact = _search_where(q, mother_id)
    c = await raw(conn)
    return list(await c.fetch(
        "select p.person_id, p.name, p.sex, p.birth_date, p.id_number, p.document_type, p.document_number, p.phone, "
        "p.mother_id, p.died_on, r.region_code as residence_code from person p cross join lateral (select "
        "region_code from person_residence r where r.person_id = p.person_id order by since desc limit 1) r "
        f"where {' and '.join(conds)} and r.region_code like $1 "
        f"order by {'(' + exact + ') desc, ' if exact else ''}p.birth_date, p.person_id limit {int(q.limit)}",
        region_prefix + "%", *args))


async def deliveries_at(conn: AsyncConnection, code: str, q: str | None, born_on: date | None,
                        limit: int = 200) -> list[dict[str, Any]]:
    """Active deliveries at an institution, oldest first, with the mother's name and ID number: those whose
    mother's name or ID number, or whose record number (the HIS's encounter id, 住院号), is exactly `q`."""
    c = await raw(conn)
    rows = await c.fetch(
        "select e.encounter_id, e.occurred_on, e.body, m.person_id::text as mother_id, m.name, m.id_number "
        "from encounter e join pregnancy p using (pregnancy_id) join person m on m.person_id = p.mother_id "
        "where e.institution_code = $1 and e.type = 'delivery' and not e.voided "
        "and ($2::text is null or m.name = $2 or m.id_number = upper($2) or e.encounter_id = $2) "
        "and ($3::date is null or e.occurred_on = $3) order by e.occurred_on, e.encounter_id limit $4",
        code, q, born_on, limit)
    return [{**dict(r), "body": from_json(r["body"])} for r in rows]
