"""Person matching's persistence: each person's match keys, the candidates a new record is compared with (the
Splink blocking rules as one indexed query), and the matches found (automatic links, the review queue)."""
from __future__ import annotations

import uuid
from typing import Any

from kit.db import raw, to_json
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.domain.matching import Features

#: at most this many candidates are scored (the blocking keys make far fewer the rule)
CANDIDATE_LIMIT = 300


async def insert_match_key(conn: AsyncConnection, person_id: str, f: Features) -> None:
    c = await raw(conn)
    await c.execute(
        "insert into person_match_key (person_id, name, name_py, surname_py, given_py, birth_date, birth_year, sex, "
        "phone, residence, mother_id, document) values ($1, $2, $3, $4, $5, to_date($6, 'YYYYMMDD'), $7, $8, $9, "
        "$10, $11, $12) on conflict (person_id) do nothing",
        uuid.UUID(person_id), f.name, f.name_py, f.surname_py, f.given_py, f.birth_date, f.birth_year, f.sex,
        f.phone, f.residence, uuid.UUID(f.mother_id) if f.mother_id else None, f.document)


# one branch per blocking rule of registry.domain.matching.BLOCKING_RULES, each served by an index
_CANDIDATES = f"""
select k.* from person_match_key k where k.person_id in (
    select person_id from person_match_key where name_py = $1 and birth_year = $2
    union select person_id from person_match_key where name_py = $1 and substr(residence, 1, 6) = $3
    union select person_id from person_match_key where birth_date = to_date($4, 'YYYYMMDD') and surname_py = $5
    union select person_id from person_match_key where birth_date = to_date($4, 'YYYYMMDD') and given_py = $6
    union select person_id from person_match_key where phone = $7
    union select person_id from person_match_key where document = $8
) limit {CANDIDATE_LIMIT}"""


async def candidates(conn: AsyncConnection, f: Features) -> list[tuple[str, Features]]:
    return await candidates_raw(await raw(conn), f)


async def candidates_raw(c: Any, f: Features) -> list[tuple[str, Features]]:
    """The candidates on a plain asyncpg connection (the bench times the query alone)."""
    rows = await c.fetch(_CANDIDATES, f.name_py, f.birth_year, f.residence[:6], f.birth_date, f.surname_py,
                         f.given_py, f.phone, f.document)
    return [(str(r["person_id"]), _features(r)) for r in rows]


def _features(r: Any) -> Features:
    return Features(r["name"], r["name_py"], r["surname_py"], r["given_py"], f"{r['birth_date']:%Y%m%d}".zfill(8),
                    r["sex"], r["phone"], r["residence"], str(r["mother_id"]) if r["mother_id"] else None,
                    r["document"])


async def record_match(conn: AsyncConnection, *, person_id: str | None, candidate_id: str, region_code: str,
                       weight: float, probability: float, levels: dict[str, str], model_version: str, status: str,
                       actor: str) -> int:
    c = await raw(conn)
    return await c.fetchval(  # type: ignore[no-any-return]
        "insert into person_match (person_id, candidate_id, region_code, match_weight, probability, levels, "
        "model_version, status, created_by) values ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9) returning match_id",
        uuid.UUID(person_id) if person_id else None, uuid.UUID(candidate_id), region_code, weight, probability,
        to_json(levels), model_version, status, actor)


def _side(alias: str, prefix: str) -> str:
    """One record of a pair: its personal fields and current residence."""
    return (f"{alias}.name as {prefix}_name, {alias}.sex as {prefix}_sex, {alias}.birth_date as {prefix}_birth_date, "
            f"{alias}.phone as {prefix}_phone, {alias}.id_number as {prefix}_id_number, (select r.region_code from "
            f"person_residence r where r.person_id = {alias}.person_id order by r.since desc limit 1) "
            f"as {prefix}_residence")


def _pair_sql(where: str) -> str:
    return (f"select m.*, {_side('a', 'person')}, {_side('b', 'candidate')} from person_match m "
            "join person a on a.person_id = m.person_id join person b on b.person_id = m.candidate_id " + where)


async def pending(conn: AsyncConnection, region_prefix: str, limit: int, after: int) -> list[Any]:
    """The review queue of a region (oldest first), with both records."""
    c = await raw(conn)
    return await c.fetch(_pair_sql("where m.status = 'pending' and m.region_code like $1 || '%' and m.match_id > $2 "
                                   "order by m.match_id limit $3"), region_prefix, after, limit)


async def get_match(conn: AsyncConnection, match_id: int, for_update: bool = False) -> Any:
    c = await raw(conn)
    return await c.fetchrow(_pair_sql("where m.match_id = $1" + (" for update of m" if for_update else "")),
                            match_id)


async def decide(conn: AsyncConnection, match_id: int, status: str, actor: str, reason: str | None) -> None:
    c = await raw(conn)
    await c.execute("update person_match set status = $2, decided_by = $3, decided_at = now(), reason = $4 "
                    "where match_id = $1", match_id, status, actor, reason)
