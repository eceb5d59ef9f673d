"""The one-statement write of an unlocked unit of work (single posts): it writes only while what was read still
holds, all or nothing (state, history and outbox together). Real Postgres: the test stack's registry database."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import devstack
import pytest
from kit import outbox
from kit.db import Database, raw
from kit.events import NewEvent
from kit.settings import Settings
from mch.events.v1 import registry_pb2 as pb

from registry.store import sql

SPEC = devstack.STACKS["test"]


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    d = Database.for_service(Settings(db_prefix=SPEC.db_prefix), "registry", pool_size=1)
    try:
        async with d.connect() as conn:
            await conn.exec_driver_sql("select 1 from encounter limit 1")
    except Exception:
        await d.dispose()
        pytest.skip("the test stack's registry database is not there (make test prepares it)")
    yield d
    await d.dispose()


async def _pregnancy(d: Database) -> tuple[str, str, str]:
    """An institution, a mother and her pregnancy; returns (institution code, mother id, pregnancy id)."""
    code, mother, preg = f"HT{uuid.uuid4().hex[:10]}", uuid.uuid4(), f"P-{uuid.uuid4().hex[:12]}"
    async with d.begin() as conn:
        c = await raw(conn)
        await c.execute("insert into institution (code, name, region_code, kind, midwifery_licensed) "
                        "values ($1, 'h', '320582001001', 'hospital', true)", code)
        await c.execute("insert into person (person_id, name, sex, birth_date) values ($1, 'm', 'F', '1994-01-01')",
                        mother)
        await c.execute("insert into pregnancy (pregnancy_id, source, mother_id, lmp_date, registered_on, "
                        "institution_code, residence_code, content_hash) values ($1, 'his-t', $2, '2025-01-01', "
                        "'2025-03-01', $3, '320582001001', 'h')", preg, mother, code)
    return code, str(mother), preg


def _row(code: str, mother: str, preg: str, encounter_id: str, version: int = 1) -> dict[str, Any]:
    return {"source": "his-t", "encounter_id": encounter_id, "version": version, "type": "prenatal_visit",
            "subject_id": preg, "pregnancy_id": preg, "person_id": mother, "occurred_on": date(2025, 4, 1),
            "institution_code": code, "body": {"gestational_days": 90}, "content_hash": f"h{version}",
            "voided": False}


def _events(key: str) -> outbox.OutboxColumns:
    return outbox.columns([NewEvent("test.written", pb.PersonUpserted(person_id=key), subject_key=key)], "registry")


async def _written(d: Database, encounter_id: str, key: str) -> tuple[int, int, int]:
    async with d.connect() as conn:
        c = await raw(conn)
        return (await c.fetchval("select count(*) from encounter where encounter_id = $1", encounter_id),
                await c.fetchval("select count(*) from encounter_history where encounter_id = $1", encounter_id),
                await c.fetchval("select count(*) from outbox where key = $1", key))


async def test_a_premise_that_changed_writes_nothing(db: Database) -> None:
    code, mother, preg = await _pregnancy(db)
    async with db.begin() as conn:  # a delivery recorded after the unlocked read
        await (await raw(conn)).execute("update pregnancy set delivered_on = '2025-09-01' where pregnancy_id = $1",
                                        preg)
    eid, key = f"E-{uuid.uuid4().hex[:12]}", f"k-{uuid.uuid4().hex}"
    async with db.autocommit() as conn:
        done = await sql.write_encounters(conn, [], [(_row(code, mother, preg, eid), None)], {}, {}, _events(key),
                                          sql.Premises([], [(preg, 1, None)]))
    assert done is False
    assert await _written(db, eid, key) == (0, 0, 0)


async def test_premises_that_hold_write_everything_at_once(db: Database) -> None:
    code, mother, preg = await _pregnancy(db)
    eid, key = f"E-{uuid.uuid4().hex[:12]}", f"k-{uuid.uuid4().hex}"
    async with db.autocommit() as conn:
        done = await sql.write_encounters(conn, [], [(_row(code, mother, preg, eid), None)], {}, {}, _events(key),
                                          sql.Premises([], [(preg, 1, None)]))
    assert done is True
    assert await _written(db, eid, key) == (1, 1, 1)
    # a correction read at version 1, while version 2 was stored meanwhile: refused, nothing written
    async with db.begin() as conn:
        await sql.write_encounters(conn, [], [(_row(code, mother, preg, eid, 2), "correction")], {}, {},
                                   _events(key))
    async with db.autocommit() as conn:
        done = await sql.write_encounters(conn, [], [(_row(code, mother, preg, eid, 2), "correction")], {}, {},
                                          _events(key), sql.Premises([("his-t", eid, 1)], [(preg, 1, None)]))
    assert done is False
    assert await _written(db, eid, key) == (1, 2, 2)
