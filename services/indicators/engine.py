"""The incremental engine: facts in, exact counter deltas out, one transaction per batch.

For each batch: store the facts that are newer than what is stored; find the units touched (a subject that
is itself a unit, or units that depend on it); recompute those units' contributions from their facts (pure
domain code); apply only the difference to the counters, pre-aggregated and in sorted key order.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from functools import lru_cache
from typing import Any, NamedTuple

from kit.consumer import Consumed
from kit.db import Database
from kit.settings import SERVICES, get_settings
from sqlalchemy.ext.asyncio import AsyncConnection

from indicators.clock import china_today
from indicators.domain import merges, periods, regions, units
from indicators.domain.catalogue import Catalogue, by_measure
from indicators.domain.facts import Fact
from indicators.events.translate import to_facts
from indicators.store import aliases, sql
from indicators.store import filings as filings_store
from indicators.store.sql import CounterKey


class Origin(NamedTuple):
    """Where a changed fact came from: its record, the request that posted it and who (the token's actor)."""

    record: str
    request_id: str
    actor: str

#: unit kinds whose changes are not late corrections of records (an adjustment of a locked filing lists the
#: records that moved its figures): the quality service's scores, re-evaluated on its own schedule
NOT_RECORDS = ("qscore",)
#: units recomputed per round trip (bounded memory whatever the history)
CHUNK = 2000
#: units per back-fill transaction: short enough that live batches wait well under a second between chunks
BACKFILL_CHUNK = 500


@lru_cache(maxsize=8192)
def _places(region: str, inst: str) -> tuple[tuple[str, str], ...]:
    """(region prefix, institution) of every tally a contribution in `region` at `inst` adds to: the 6 region
    levels × (all institutions, its institution). Cached: a batch has few distinct regions × institutions."""
    out = []
    for r in dict.fromkeys(regions.prefixes(region)):
        out.append((r, ""))
        if inst:
            out.append((r, inst))
    return tuple(out)


def expand(c: Sequence[Any]) -> list[CounterKey]:
    """Every stored tally one measured contribution (measure, when, region, institution, weight) adds to: its
    month (or its one period, `@<key>`, or standing month `^<month>`) × the 6 region levels × (all
    institutions, its institution). Quarters, halves and years are sums of months, taken at read time."""
    measure, when, region, inst = c[:4]
    return [(periods.stored_key(when), r, i, measure) for r, i in _places(region, inst)]


def add_contributions(into: Counter[tuple[str, ...]], contribs: Iterable[Sequence[Any]], sign: int) -> None:
    """Net measured contributions (measure, when, region, institution) → weight; many units share them, so
    the batch expands each distinct one once."""
    for x in contribs:
        into[(x[0], x[1], x[2], x[3])] += sign * int(x[4])


def stored_contributions(diff: Counter[tuple[str, ...]]) -> dict[tuple[str, str, str, str], int]:
    """Net contributions by stored period (contributions dated within one month are stored together):
    (measure, stored period, region, institution) → weight, for the store to expand to every region level and
    institution."""
    out: dict[tuple[str, str, str, str], int] = {}
    for (m, w, r, i), k in diff.items():
        if k:
            key = (m, periods.stored_key(w), r, i)
            out[key] = out.get(key, 0) + k
    return {key: v for key, v in out.items() if v}


def expand_all(diff: Counter[tuple[str, ...]]) -> dict[CounterKey, int]:
    """The same expansion in Python (the reconciliation's independent side of the store's SQL expansion)."""
    out: dict[CounterKey, int] = {}
    for (measure, p, region, inst), k in stored_contributions(diff).items():
        for r, i in _places(region, inst):
            key = (p, r, i, measure)
            out[key] = out.get(key, 0) + k
    return {key: v for key, v in out.items() if v}


def counter_delta(old: Iterable[Sequence[Any]], new: Iterable[Sequence[Any]]) -> dict[CounterKey, int]:
    diff: Counter[tuple[str, ...]] = Counter()
    add_contributions(diff, new, 1)
    add_contributions(diff, old, -1)
    return expand_all(diff)


def adjustments(unit: str, old: Iterable[Sequence[Any]], new: Iterable[Sequence[Any]],
                locked: Sequence[tuple[str, str, str]], records: Sequence[Origin],
                today: date) -> list[tuple[str, str, str, str, str, int, list[str], list[str], list[str]]]:
    """The changes of one unit's contributions that fall in an approved (locked) filing — its unit's region and
    its period — as adjustment rows: (report, period, filing unit, engine unit, measure, delta, record keys,
    request ids, actors). The filed snapshot stays; these rows say which records moved its live figures, and who
    posted them."""
    diff: Counter[tuple[str, ...]] = Counter()
    add_contributions(diff, new, 1)
    add_contributions(diff, old, -1)
    out = []
    for report, period, funit in locked:
        by_measure: Counter[str] = Counter()
        inst = funit[5:] if funit.startswith("inst:") else None  # an institution's filing: its own counts
        for (measure, when, region, i), k in diff.items():
            if k and (i == inst if inst is not None else region.startswith(funit)) \
                    and periods.counts_in(when, period, today):
                by_measure[measure] += k
        for measure, k in sorted(by_measure.items()):
            if k:
                out.append((report, period, funit, unit, measure, k, [o.record for o in records],
                            sorted({o.request_id for o in records if o.request_id}),
                            sorted({o.actor for o in records if o.actor})))
    return out


def newest(facts: Iterable[Fact]) -> list[Fact]:
    best: dict[str, Fact] = {}
    for f in facts:
        cur = best.get(f.record_key)
        if cur is None or f.version > cur.version:
            best[f.record_key] = f
    return list(best.values())


class Engine:
    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    async def apply_facts(self, conn: AsyncConnection, facts: Sequence[Fact],
                          origins: Mapping[str, tuple[str, str]] | None = None) -> int:
        """`origins`: record key → (the request that posted it, who) — for the adjustments of locked filings."""
        # one engine transaction at a time (consumer instances, the clock tick, rebuilds): two transactions
        # recomputing the same unit from the same old contributions would apply its delta twice
        await sql.lock_engine(conn)
        fresh = newest(facts)
        changed = await sql.upsert_facts(conn, fresh)
        if not changed:
            return 0
        # a merge or unmerge (合并) changes how subjects are read: theirs, and the subjects they were or are read
        # as, are recomputed; a fact of a merged-away subject is its canonical subject's
        subjects = changed | await aliases.realias(conn, sorted(s for s in changed if merges.is_merge(s)))
        canon = await aliases.canonical(conn, subjects)
        subjects |= set(canon.values())
        touched = {s for s in subjects if units.unit_kind(s)} | await sql.units_linked_to(conn, subjects)
        records: dict[str, list[Origin]] = {}
        for f in fresh:
            if f.subject_key in changed:
                rid, who = (origins or {}).get(f.record_key, ("", ""))
                records.setdefault(canon.get(f.subject_key, f.subject_key), []).append(Origin(f.record_key, rid, who))
        await self.recompute(conn, touched, records)
        return len(touched)

    async def tick(self, conn: AsyncConnection, today: date) -> int:
        """Advance the clock to today's month: children age, so every unit depending on the clock (persons)
        is recomputed once a month. Returns the units touched (0 when the month did not change)."""
        month = today.strftime("%Y-%m")
        return await self.apply_facts(conn, [Fact(units.CLOCK, units.CLOCK, today.year * 100 + today.month,
                                                   False, {"month": month})])

    async def backfill_if_changed(self, conn: AsyncConnection) -> int:
        """After a catalogue change, recompute every unit computed under another definition, in one transaction
        (tests and small stores; the consumer and the CLI use `backfill`, in chunks)."""
        await sql.lock_engine(conn)
        await sql.save_parts(conn, self.catalogue.parts())
        stale = await sql.stale_units(conn, self.catalogue.digest)
        await self.recompute(conn, stale)
        await sql.mark_current(conn, stale, self.catalogue.digest)
        return len(stale)

    async def backfill(self, db: Database, chunk: int = BACKFILL_CHUNK,
                       progress: Callable[[int, int], None] | None = None) -> int:
        """Back-fill a catalogue change (补算历史): recompute every unit computed under another definition, `chunk`
        units per transaction in key order, while the live pipeline keeps applying events between the chunks
        (each chunk takes the engine lock for its own short transaction only). The stored contributions are
        exactly what was counted, so applying each unit's difference is exact whenever it runs; a unit a live
        event recomputes meanwhile is computed under the new definition and no longer stale. A last pass from
        the start picks up any unit an older instance recomputed under the old catalogue. Progress: the
        `backfill` row (done of total) and `progress(done, total)`. Returns the units recomputed."""
        digest = self.catalogue.digest
        async with db.begin() as conn:
            await sql.lock_engine(conn)
            await sql.save_parts(conn, self.catalogue.parts())
            total = await sql.start_backfill(conn, digest)
        done, after = 0, ""
        while True:
            async with db.begin() as conn:
                await sql.lock_engine(conn)
                keys = await sql.stale_units(conn, digest, after, chunk)
                if not keys and after == "":
                    await sql.backfill_progress(conn, digest, 0, finished=True)
                    return done
                if keys:
                    await self.recompute(conn, keys)
                    await sql.mark_current(conn, keys, digest)
                    await sql.backfill_progress(conn, digest, len(keys))
            done, after = done + len(keys), keys[-1] if keys else ""
            if progress is not None:
                progress(done, max(total, done))

    async def compute(self, conn: AsyncConnection,
                      keys: Sequence[str]) -> dict[str, tuple[list[units.Measured], list[str]]]:
        """Each unit's contributions and dependencies. Merged subjects (合并): a unit merged away contributes
        nothing; a canonical unit reads its own facts and those of every subject merged into it, and depends on
        the canonical subjects of what its facts name."""
        alias = await aliases.related(conn, keys)
        live = [k for k in keys if k not in alias]
        by_subject = await self._facts_by_subject(conn, [*live, *(s for s, c in alias.items() if c in live)], alias)
        named = {k: units.dependencies(k, by_subject.get(k, []), alias) for k in live}
        named_deps = {d for ds in named.values() for d in ds}
        dep_alias = await aliases.related(conn, named_deps)
        if merged_away := {c for d, c in dep_alias.items() if d in named_deps}:  # their canonicals' other members
            dep_alias |= await aliases.members(conn, merged_away)
        alias |= dep_alias
        deps = {k: sorted({alias.get(d, d) for d in ds} - {k}) for k, ds in named.items()}
        needed = {d for ds in deps.values() for d in ds} - set(by_subject)
        more = [s for s, c in dep_alias.items() if c in needed]
        for subject, fs in (await self._facts_by_subject(conn, [*needed, *more], alias)).items():
            by_subject.setdefault(subject, []).extend(fs)
        out: dict[str, tuple[list[units.Measured], list[str]]] = {k: ([], []) for k in keys if k not in live}
        for k in live:
            facts = list(by_subject.get(k, []))
            for d in deps[k]:
                facts.extend(by_subject.get(d, []))
            out[k] = (units.compute_measured(k, facts, self.catalogue, alias), deps[k])
        return out

    @staticmethod
    async def _facts_by_subject(conn: AsyncConnection, subjects: Sequence[str],
                                alias: Mapping[str, str]) -> dict[str, list[Fact]]:
        """The facts of these subjects, grouped by the subject each is read as."""
        out: dict[str, list[Fact]] = {}
        for f in await sql.facts_of(conn, subjects) if subjects else []:
            out.setdefault(alias.get(f.subject_key, f.subject_key), []).append(f)
        return out

    async def recompute(self, conn: AsyncConnection, keys: Iterable[str],
                        records: Mapping[str, list[Origin]] | None = None) -> None:
        """`records`: subject → the origins (record key, request id, actor) of the facts that changed. Given
        (changed records, not a rebuild or a catalogue back-fill), changes falling in an approved filing are listed
        as its adjustments."""
        keys = sorted(keys)
        locked = await filings_store.locked(conn) if records is not None else []
        for i in range(0, len(keys), CHUNK):
            await self._recompute(conn, keys[i:i + CHUNK], locked, records or {})

    async def _recompute(self, conn: AsyncConnection, keys: list[str], locked: Sequence[tuple[str, str, str]],
                         records: Mapping[str, list[Origin]]) -> None:
        old = await sql.load_units(conn, keys)
        new = await self.compute(conn, keys)
        diff: Counter[tuple[str, ...]] = Counter()
        saves = []
        links = []
        adjusted: list[tuple[str, str, str, str, str, int, list[str], list[str], list[str]]] = []
        today = china_today()
        for k in keys:
            old_c, old_d = old.get(k, ([], []))
            new_c, new_d = new[k]
            listed = [list(x) for x in new_c]
            if listed != old_c or new_d != old_d or k not in old:
                add_contributions(diff, new_c, 1)
                add_contributions(diff, old_c, -1)
                saves.append((k, listed, new_d))
                links.append((k, old_d, new_d))
                if locked and units.unit_kind(k) not in NOT_RECORDS:
                    recs = [r for s in dict.fromkeys([k, *old_d, *new_d]) for r in records.get(s, [])]
                    adjusted += adjustments(k, old_c, new_c, locked, recs, today)
        await sql.apply_contributions(conn, stored_contributions(diff))
        await filings_store.add_adjustments(conn, adjusted)
        await sql.save_units(conn, saves, self.catalogue.digest)
        await sql.relink(conn, links)

    async def recompute_from_facts(self, conn: AsyncConnection) -> dict[CounterKey, int]:
        """What every counter should be, from the stored facts alone (reconciliation / rebuild)."""
        keys = [k for k in await sql.candidate_units(conn) if units.unit_kind(k)]
        diff: Counter[tuple[str, ...]] = Counter()
        for i in range(0, len(keys), CHUNK):
            for contribs, _ in (await self.compute(conn, keys[i:i + CHUNK])).values():
                add_contributions(diff, contribs, 1)
        return expand_all(diff)

    async def reconcile(self, conn: AsyncConnection) -> list[dict[str, object]]:
        """Every counter that differs from its recomputation from the stored facts. Run on a fresh connection:
        it reads one snapshot (repeatable read), so batches the consumer commits meanwhile cannot show as
        differences."""
        if not conn.in_transaction():
            await conn.execution_options(isolation_level="REPEATABLE READ")
            await conn.exec_driver_sql("select 1")  # begin the snapshot before the raw reads
        expected = await self.recompute_from_facts(conn)
        stored = await sql.all_counters(conn)
        counted_by = by_measure(self.catalogue.parts())
        diffs = []
        for k in sorted(set(expected) | set(stored)):
            if expected.get(k, 0) != stored.get(k, 0):
                diffs.append({"period": k[0], "region": k[1], "institution": k[2], "measure": k[3],
                              "indicators": [f"{c}.{p}" for c, p in counted_by.get(k[3], [])],
                              "stored": stored.get(k, 0), "recomputed": expected.get(k, 0)})
        return diffs

    async def rebuild(self, conn: AsyncConnection) -> int:
        """Disaster recovery / catalogue change: recompute every unit and replace the counters."""
        await sql.lock_engine(conn)
        await sql.save_parts(conn, self.catalogue.parts())
        keys = [k for k in await sql.candidate_units(conn) if units.unit_kind(k)]
        await aliases.rederive(conn)
        await conn.exec_driver_sql("delete from unit_link")
        await conn.exec_driver_sql("delete from unit")
        await conn.exec_driver_sql("delete from tally")
        await conn.exec_driver_sql("delete from standing")
        await self.recompute(conn, keys)
        return len(keys)


class IndicatorsHandler:
    """Plugs the engine into the consumer loop: every other service's topic."""

    name = "indicators"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        s = get_settings()
        self.topics: Sequence[str] = [s.topic(svc) for svc in SERVICES if svc != "indicators"]

    async def apply(self, conn: AsyncConnection, events: Sequence[Consumed]) -> None:
        facts: list[Fact] = []
        origins: dict[str, tuple[str, str]] = {}
        for c in events:
            for f in to_facts(c.envelope):
                facts.append(f)
                origins[f.record_key] = (c.envelope.request_id, c.envelope.actor)
        await self.engine.apply_facts(conn, facts, origins)
