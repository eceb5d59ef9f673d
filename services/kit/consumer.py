"""The consumer loop: explicit partition assignment, exactly-once effect through the consumer's own database.

Each batch is applied in ONE transaction that also records the batch's event ids (dedup) and the next
offset of every partition (checkpoint). Kafka's own offset commits are not used: the database is the truth,
so a crash anywhere replays from the last committed batch and duplicates are skipped.

A checkpoint remembers the topic id it was taken on. If the topic's id changed (the local broker restarted
and the relay republished into a fresh log), the consumer starts that topic again from offset 0; the dedup
table makes the replay change nothing that was already applied.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition
from mch.events.v1.envelope_pb2 import Envelope
from prometheus_client import start_http_server
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from kit import logs
from kit.broker import TopicAdmin
from kit.db import Database, is_unavailable
from kit.events import parse
from kit.metrics import APPLY_SECONDS, CONSUMER_LAG, DEAD_LETTERS, EVENTS_CONSUMED, EVENTS_DUPLICATE
from kit.settings import Settings

log = logging.getLogger("kit.consumer")


@dataclass(frozen=True)
class Consumed:
    topic: str
    partition: int
    offset: int
    envelope: Envelope


class Handler(Protocol):
    """What a service plugs into the loop: applies fresh (never seen) events inside the given transaction."""

    name: str
    topics: Sequence[str]

    async def apply(self, conn: AsyncConnection, events: Sequence[Consumed]) -> None: ...


class ConsumerLoop:
    def __init__(self, settings: Settings, handler: Handler, db: Database) -> None:
        self.settings = settings
        self.handler = handler
        self.db = db
        self.admin = TopicAdmin(settings.kafka_bootstrap, f"{handler.name}-consumer")
        self.topic_ids: dict[str, str] = {}
        self.positions: dict[TopicPartition, int] = {}
        self._consumer: KafkaConsumer | None = None
        self._checked_at = 0.0
        self._stop = asyncio.Event()

    def _mine(self, partitions: int) -> list[int]:
        n, i = self.settings.consumer_instances, self.settings.consumer_instance
        return [p for p in range(partitions) if p % n == i]

    async def _assign(self) -> None:
        infos = {t: await asyncio.to_thread(self.admin.ensure, t, self.settings.partitions)
                 for t in self.handler.topics}
        async with self.db.connect() as conn:
            rows = (await conn.execute(text(
                "select topic, partition, topic_id, next_offset from consumer_offset where consumer = :c"),
                {"c": self.handler.name})).all()
        saved = {(r.topic, r.partition): r for r in rows}
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self.settings.kafka_bootstrap,
                client_id=f"{self.handler.name}-consumer",
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
                max_partition_fetch_bytes=4 * 1024 * 1024,
            )
        tps = []
        self.positions.clear()
        for t, info in infos.items():
            self.topic_ids[t] = info.topic_id
            for p in self._mine(info.partitions):
                tp = TopicPartition(t, p)
                tps.append(tp)
                cp = saved.get((t, p))
                self.positions[tp] = cp.next_offset if cp is not None and cp.topic_id == info.topic_id else 0
        self._consumer.assign(tps)
        for tp, off in self.positions.items():
            self._consumer.seek(tp, off)
        log.info("%s assigned %s", self.handler.name, {f"{tp.topic}[{tp.partition}]": o
                                                       for tp, o in self.positions.items()})

    async def _check_topics(self) -> bool:
        """Start a topic again from 0 when its log was recreated (new topic id). True when it re-assigned."""
        if time.monotonic() - self._checked_at < self.settings.topic_check_interval_s:
            return False
        self._checked_at = time.monotonic()
        for t in self.handler.topics:
            info = await asyncio.to_thread(self.admin.ensure, t, self.settings.partitions)
            if info.topic_id != self.topic_ids.get(t):
                log.warning("topic %s is a new log (id %s -> %s): reading it again from offset 0",
                            t, self.topic_ids.get(t), info.topic_id)
                await self._assign()
                return True
        return False

    def _poll(self) -> list[Consumed]:
        assert self._consumer is not None
        batch = self._consumer.poll(timeout_ms=500, max_records=self.settings.consumer_batch)
        out = []
        for tp, msgs in batch.items():
            for m in msgs:
                out.append(Consumed(tp.topic, tp.partition, m.offset, parse(m.value)))
        for tp in self.positions:
            hw = self._consumer.highwater(tp)
            if hw is not None:
                CONSUMER_LAG.labels(self.handler.name, tp.topic, str(tp.partition)).set(
                    max(0, hw - self.positions[tp]))
        return out

    async def _apply_in_tx(self, conn: AsyncConnection, batch: Sequence[Consumed]) -> int:
        ids = [uuid.UUID(c.envelope.event_id) for c in batch]
        fresh_ids = set((await conn.execute(text(
            "insert into consumed_event (event_id) select unnest(cast(:ids as uuid[])) "
            "on conflict do nothing returning event_id"), {"ids": ids})).scalars())
        fresh: list[Consumed] = []
        for c, eid in zip(batch, ids, strict=True):
            if eid in fresh_ids:
                fresh.append(c)
                fresh_ids.discard(eid)  # the same event twice in one batch counts once
        if fresh:
            await self.handler.apply(conn, fresh)
        nexts: dict[tuple[str, int], int] = {}
        for c in batch:
            nexts[(c.topic, c.partition)] = max(nexts.get((c.topic, c.partition), 0), c.offset + 1)
        for (t, p), off in nexts.items():
            await conn.execute(text(
                "insert into consumer_offset (consumer, topic, partition, topic_id, next_offset) "
                "values (:c, :t, :p, :tid, :o) on conflict (consumer, topic, partition) do update set "
                "topic_id = excluded.topic_id, next_offset = excluded.next_offset, updated_at = now()"),
                {"c": self.handler.name, "t": t, "p": p, "tid": self.topic_ids.get(t, ""), "o": off})
        return len(fresh)

    async def apply(self, batch: Sequence[Consumed]) -> None:
        t0 = time.perf_counter()
        try:
            async with self.db.begin() as conn:
                n = await self._apply_in_tx(conn, batch)
        except Exception as e:
            if is_unavailable(e):
                raise
            log.exception("batch of %d failed; applying one by one to isolate the bad event", len(batch))
            n = 0
            for c in batch:
                n += await self._apply_one_or_dead_letter(c)
        APPLY_SECONDS.labels(self.handler.name).observe(time.perf_counter() - t0)
        for c in batch:
            self.positions[TopicPartition(c.topic, c.partition)] = c.offset + 1
        by_topic: dict[str, int] = {}
        for c in batch:
            by_topic[c.topic] = by_topic.get(c.topic, 0) + 1
        for t, k in by_topic.items():
            EVENTS_CONSUMED.labels(self.handler.name, t).inc(k)
        if len(batch) > n:
            EVENTS_DUPLICATE.labels(self.handler.name, batch[0].topic).inc(len(batch) - n)

    async def _apply_one_or_dead_letter(self, c: Consumed) -> int:
        try:
            async with self.db.begin() as conn:
                return await self._apply_in_tx(conn, [c])
        except Exception as e:
            if is_unavailable(e):
                raise
            log.exception("event %s (%s) cannot be applied: dead-lettered", c.envelope.event_id, c.envelope.type)
            DEAD_LETTERS.labels(self.handler.name).inc()
            async with self.db.begin() as conn:
                await conn.execute(text(
                    "insert into dead_letter (event_id, consumer, topic, partition, record_offset, envelope, error) "
                    "values (:e, :c, :t, :p, :o, :env, :err) on conflict do nothing"),
                    {"e": uuid.UUID(c.envelope.event_id), "c": self.handler.name, "t": c.topic, "p": c.partition,
                     "o": c.offset, "env": c.envelope.SerializeToString(), "err": repr(e)[:2000]})
                await self._apply_in_tx_offsets_only(conn, c)
            return 0

    async def _apply_in_tx_offsets_only(self, conn: AsyncConnection, c: Consumed) -> None:
        await conn.execute(text(
            "insert into consumer_offset (consumer, topic, partition, topic_id, next_offset) "
            "values (:c, :t, :p, :tid, :o) on conflict (consumer, topic, partition) do update set "
            "next_offset = excluded.next_offset, updated_at = now()"),
            {"c": self.handler.name, "t": c.topic, "p": c.partition, "tid": self.topic_ids.get(c.topic, ""),
             "o": c.offset + 1})

    async def run(self) -> None:
        """Poll the next batch while the current one is applied (the fetch and parse overlap the database
        work); after any failure, drop what was fetched ahead and re-seek from the database checkpoints."""
        backoff = 0.2
        assigned = False
        ahead: asyncio.Future[list[Consumed]] | None = None
        while not self._stop.is_set():
            try:
                if not assigned:
                    await self._assign()
                    assigned = True
                batch = await (ahead if ahead is not None else asyncio.to_thread(self._poll))
                ahead = None
                if await self._check_topics():  # nothing is in flight here; the batch came from the old log
                    continue
                if batch:
                    ahead = asyncio.ensure_future(asyncio.to_thread(self._poll))
                    await self.apply(batch)
                backoff = 0.2
            except Exception as e:
                if ahead is not None:  # the consumer is not thread-safe: let the poll finish before re-seeking
                    await asyncio.gather(ahead, return_exceptions=True)
                    ahead = None
                log.warning("consumer %s: %s; retrying in %.1fs", self.handler.name, e, backoff)
                assigned = False  # re-seek from the database checkpoints: nothing half-applied survives
                self._checked_at = 0.0
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        if ahead is not None:
            await asyncio.gather(ahead, return_exceptions=True)
        if self._consumer is not None:
            self._consumer.close()
        self.admin.close()

    def stop(self) -> None:
        self._stop.set()


async def serve(settings: Settings, handler: Handler, db: Database) -> None:
    """Process entry point for a service's consumer."""
    logs.setup(f"{handler.name}-consumer", settings.log_level)
    port = int(os.environ.get("MCH_METRICS_PORT", "0"))
    if port:
        start_http_server(port, addr=settings.metrics_addr)
    loop = ConsumerLoop(settings, handler, db)
    ev = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        ev.add_signal_handler(sig, loop.stop)
    await loop.run()
    await db.dispose()
