"""Registry persistence (asyncpg through the SQLAlchemy connection of the unit of work)."""
from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from kit.db import from_json, raw, to_json
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.domain.model import Institution, Pregnancy


async def _c(conn: AsyncConnection) -> Any:
    """The raw asyncpg connection; json/jsonb codecs are installed per connection by kit.db."""
    return await raw(conn)


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
                        born_in: str | None = None) -> str:
    c = await raw(conn)
    pid = uuid.uuid4()
    await c.execute(
        "insert into person (person_id, id_number, name, sex, birth_date, phone, mother_id, born_in_pregnancy_id) "
        "values ($1, $2, $3, $4, $5, $6, $7, $8)", pid, id_number, name, sex, birth_date, phone,
        uuid.UUID(mother_id) if mother_id else None, born_in)
    await c.execute("insert into person_residence (person_id, since, region_code) values ($1, $2, $3)",
                    pid, birth_date, residence_code)
    return str(pid)


def _pregnancy(r: Any) -> Pregnancy:
    return Pregnancy(r["pregnancy_id"], r["source"], str(r["mother_id"]), r["lmp_date"], r["registered_on"],
                     r["institution_code"], r["residence_code"], r["version"], r["delivered_on"])


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


async def set_delivered(conn: AsyncConnection, pregnancy_id: str, on: date | None) -> None:
    c = await raw(conn)
    await c.execute("update pregnancy set delivered_on = $2 where pregnancy_id = $1", pregnancy_id, on)


async def get_encounter(conn: AsyncConnection, source: str, encounter_id: str, for_update: bool = False) -> Any:
    c = await _c(conn)
    r = await c.fetchrow("select * from encounter where source = $1 and encounter_id = $2"
                         + (" for update" if for_update else ""), source, encounter_id)
    return _encounter(r) if r else None


def _encounter(r: Any) -> dict[str, Any]:
    d = dict(r)
    d["body"] = from_json(d["body"])
    return d


async def encounters_of_pregnancy(conn: AsyncConnection, pregnancy_id: str) -> list[dict[str, Any]]:
    c = await _c(conn)
    rows = await c.fetch("select * from encounter where pregnancy_id = $1 order by occurred_on, source, encounter_id",
                         pregnancy_id)
    return [_encounter(r) for r in rows]


async def save_encounter(conn: AsyncConnection, row: dict[str, Any], reason: str | None = None) -> None:
    """Insert or replace the current version, and append it to the history (never overwritten)."""
    c = await _c(conn)
    await c.execute(
        "insert into encounter (source, encounter_id, version, type, subject_id, pregnancy_id, person_id, "
        "occurred_on, institution_code, body, content_hash, voided, void_reason) "
        "values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
        "on conflict (source, encounter_id) do update set version = excluded.version, type = excluded.type, "
        "subject_id = excluded.subject_id, pregnancy_id = excluded.pregnancy_id, person_id = excluded.person_id, "
        "occurred_on = excluded.occurred_on, institution_code = excluded.institution_code, body = excluded.body, "
        "content_hash = excluded.content_hash, voided = excluded.voided, void_reason = excluded.void_reason, "
        "updated_at = now()",
        row["source"], row["encounter_id"], row["version"], row["type"], row["subject_id"], row.get("pregnancy_id"),
        uuid.UUID(str(row["person_id"])) if row.get("person_id") else None, row["occurred_on"],
        row["institution_code"], to_json(row["body"]), row["content_hash"], row["voided"], row.get("void_reason"))
    await c.execute(
        "insert into encounter_history (source, encounter_id, version, body, voided, reason) "
        "values ($1, $2, $3, $4, $5, $6)", row["source"], row["encounter_id"], row["version"], to_json(row["body"]),
        row["voided"], reason)


async def encounter_history(conn: AsyncConnection, source: str, encounter_id: str) -> list[dict[str, Any]]:
    c = await _c(conn)
    rows = await c.fetch("select version, body, voided, reason, recorded_at from encounter_history "
                         "where source = $1 and encounter_id = $2 order by version", source, encounter_id)
    return [_encounter(r) for r in rows]
