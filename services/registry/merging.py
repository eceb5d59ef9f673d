"""Merge and unmerge of person records (合并 / 撤销合并重复档案, issue 19): the use cases.

A reviewer (or the probabilistic matcher's review queue, on confirmation) says two person records are one woman
or one child. The duplicate then points to the survivor: her pregnancies, encounters, marriages, child links,
screenings and certificates are read as the survivor's, and the duplicate's registrations of the survivor's
pregnancies (the same episode, registry.domain.merging.same_episodes) as those pregnancies. Nothing recorded is
rewritten: the merge is a row (who, when, why) and an event (`registry.person.merged`) every service follows, so
an unmerge restores exactly what was before. The survivor's demographic record (name, ID, birth date, residence
history) is the one read.

Each use case owns one unit of work; both records are checked against the caller's region in one place
(registry.access.require_merge_pair) before anything is written or returned.
"""
from __future__ import annotations

from typing import Any

from kit.db import Database
from kit.scope import Scope, UnitOfWork

from registry import access
from registry.domain import merging
from registry.domain.model import fail
from registry.events import publish
from registry.store import merges as store
from registry.store import sql


async def _residence(uow: UnitOfWork, row: Any) -> str | None:
    if row is None:
        return None
    hist = await sql.residence_history(uow.conn, str(row["person_id"]))
    return hist[-1][1] if hist else None


def _record(row: Any) -> merging.PersonRecord:
    return merging.PersonRecord(str(row["person_id"]), row["sex"], row["birth_date"])


async def merge_persons(uow: UnitOfWork, survivor_id: str, duplicate_id: str, reason: str) -> dict[str, Any]:
    """Merge `duplicate_id` into `survivor_id` within the caller's unit of work (also what the review queue's
    "confirm" calls). Returns the merge (with the pregnancies found to be one episode)."""
    if not reason.strip():
        raise fail("reason", "a merge needs a reason")
    rows = await store.lock_persons(uow.conn, [survivor_id, duplicate_id])
    surv, dup = rows.get(survivor_id), rows.get(duplicate_id)
    access.require_merge_pair(uow.scope, (survivor_id, await _residence(uow, surv)),
                              (duplicate_id, await _residence(uow, dup)))
    merging.check_mergeable(
        _record(surv), _record(dup),
        survivor_is_duplicate=await store.active_as_duplicate(uow.conn, survivor_id) is not None,
        duplicate_is_merged=await store.active_as_duplicate(uow.conn, duplicate_id) is not None,
        duplicate_has_duplicates=bool(await store.active_duplicates(uow.conn, duplicate_id)))
    pairs = merging.same_episodes(await store.pregnancies_of(uow.conn, survivor_id),
                                  await store.pregnancies_of(uow.conn, duplicate_id))
    m = await store.insert_merge(uow.conn, survivor_id, duplicate_id, pairs, reason, uow.scope.actor)
    uow.emit(publish.person_merged(m, uow.today()))
    return m


async def unmerge_person(uow: UnitOfWork, duplicate_id: str, reason: str) -> dict[str, Any]:
    """Undo the active merge of `duplicate_id`: every record is read as its own person's again."""
    if not reason.strip():
        raise fail("reason", "an unmerge needs a reason")
    found = await store.active_as_duplicate(uow.conn, duplicate_id, lock=False)
    survivor_id = str(found["survivor_id"]) if found else duplicate_id
    rows = await store.lock_persons(uow.conn, [survivor_id, duplicate_id])
    dup = (duplicate_id, await _residence(uow, rows.get(duplicate_id)))
    surv = (survivor_id, await _residence(uow, rows.get(survivor_id))) if found else dup
    access.require_merge_pair(uow.scope, surv, dup)
    active = await store.active_as_duplicate(uow.conn, duplicate_id)  # again, under the persons' locks
    if active is None:
        raise fail("person_id", "the record is not merged into another", 409)
    m = await store.close_merge(uow.conn, str(active["merge_id"]), reason, uow.scope.actor)
    uow.emit(publish.person_merged(m, uow.today()))
    return m


async def merge(db: Database, scope: Scope, survivor_id: str, duplicate_id: str, reason: str) -> dict[str, Any]:
    async with UnitOfWork(db, scope) as uow:
        return await merge_persons(uow, survivor_id, duplicate_id, reason)


async def unmerge(db: Database, scope: Scope, duplicate_id: str, reason: str) -> dict[str, Any]:
    async with UnitOfWork(db, scope) as uow:
        return await unmerge_person(uow, duplicate_id, reason)


async def history(db: Database, scope: Scope, person_id: str) -> list[dict[str, Any]]:
    """The merges a record took part in (who, when, why), for a caller who sees the record in full."""
    async with db.connect() as conn:
        row = await sql.get_person(conn, person_id)
        hist = await sql.residence_history(conn, person_id) if row else []
        scope.require_object([hist[-1][1] if hist else None], "person", person_id)
        return await store.history_of(conn, person_id)


async def members(conn: Any, person_id: str) -> tuple[str | None, list[str]]:
    """(the survivor this record is merged into or None, the records merged into this one): how a read of a
    person shows the merge."""
    active = await store.active_as_duplicate(conn, person_id)
    return (str(active["survivor_id"]) if active else None), await store.active_duplicates(conn, person_id)


async def pregnancy_members(conn: Any, pregnancy_id: str) -> tuple[str | None, list[str]]:
    """(the registration this one is read as or None, the registrations read as this one): how a read of a
    pregnancy shows the merge of its woman's records."""
    return await store.pregnancy_survivor(conn, pregnancy_id), await store.pregnancy_duplicates(conn, pregnancy_id)
