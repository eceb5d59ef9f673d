"""The outbox relay: publishes a service's outbox to its topic, keyed by subject, in id order.

Guarantees: every committed outbox row reaches the broker at least once (a crash between the broker's ack
and the mark republishes; consumers dedupe on event id); rows of one subject keep their order (id order, one
in-flight request per connection). When the broker has lost its log (memory-only Tansu restarted, seen as
a new topic id), every row is marked unpublished and sent again, so consumers that had not applied an
event get it; those that had skip it.

An idle relay costs nothing: it waits on LISTEN `outbox` (a trigger notifies when an outbox insert commits)
and, in case a notification was missed while its listening connection was down, looks anyway every
`relay_idle_poll_s`.

Run: `python -m kit.relay` with MCH_SERVICE set.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Any

import asyncpg
from kafka import KafkaProducer
from kafka.errors import KafkaError
from prometheus_client import start_http_server
from sqlalchemy import text

from kit import logs
from kit.broker import TopicAdmin
from kit.db import Database, is_unavailable
from kit.metrics import EVENTS_PUBLISHED, RELAY_BACKLOG, RELAY_REPUBLISH
from kit.settings import Settings, get_settings

log = logging.getLogger("kit.relay")


class Relay:
    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self.service = settings.service
        self.topic = settings.topic()
        # one connection: the loop's statements run one after another (the listener is a second, its own)
        self.db = db or Database.for_service(settings, pool_size=1)
        self.admin = TopicAdmin(settings.kafka_bootstrap, f"{self.service}-relay")
        self._producer: KafkaProducer | None = None
        self._topic_checked_at = 0.0
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None

    # --- database side: a dedicated connection LISTENs for committed outbox inserts ---
    async def _listen(self) -> None:
        """(Re)open the listening connection if it is down; a wake is set so nothing missed meanwhile waits."""
        if self._listener is not None and not self._listener.is_closed():
            return
        url = self.db.engine.url.set(drivername="postgresql")
        self._listener = await asyncpg.connect(
            url.render_as_string(hide_password=False), timeout=3,
            server_settings={"application_name": f"{self.settings.process_name}-listen"[:63]})
        await self._listener.add_listener("outbox", lambda *_: self._wake.set())
        self._wake.set()

    async def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                await self._listener.close(timeout=1)
            except Exception:
                pass
            self._listener = None

    async def _idle(self) -> None:
        """Until an outbox insert commits (or `relay_idle_poll_s`, or stop); then a short pause so a burst of
        commits goes out as one batch."""
        stop = asyncio.ensure_future(self._stop.wait())
        wake = asyncio.ensure_future(self._wake.wait())
        await asyncio.wait({stop, wake}, timeout=self.settings.relay_idle_poll_s,
                           return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        wake.cancel()
        if self._wake.is_set() and self.settings.relay_coalesce_s:
            await asyncio.sleep(self.settings.relay_coalesce_s)

    # --- broker side (blocking kafka-python calls run in a worker thread) ---
    def _get_producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self.settings.kafka_bootstrap,
                client_id=f"{self.service}-relay",
                acks="all",
                retries=3,
                max_in_flight_requests_per_connection=1,  # keeps a partition's order through retries
                linger_ms=2,
                batch_size=512 * 1024,
                request_timeout_ms=10_000,
                max_block_ms=10_000,
            )
        return self._producer

    def _drop_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:
                pass
            self._producer = None

    def _send(self, rows: list[Any]) -> int:
        """Send rows in id order; return how many from the start were acknowledged."""
        producer = self._get_producer()
        futures = [
            producer.send(self.topic, key=r.key.encode(), value=bytes(r.envelope),
                          headers=[("event_type", r.event_type.encode())])
            for r in rows
        ]
        producer.flush(timeout=15)
        acked = 0
        for f in futures:
            try:
                f.get(timeout=0)
            except Exception as e:
                log.warning("broker did not acknowledge event: %s", e)
                self._drop_producer()
                break
            acked += 1
        return acked

    # --- the loop ---
    async def check_topic(self, force: bool = False) -> None:
        """Detect a recreated topic (the broker lost its log) and schedule a full republish."""
        now = time.monotonic()
        if not force and now - self._topic_checked_at < self.settings.topic_check_interval_s:
            return
        info = await asyncio.to_thread(self.admin.ensure, self.topic, self.settings.partitions)
        self._topic_checked_at = now
        async with self.db.begin() as conn:
            known = (await conn.execute(text("select topic_id from relay_state where topic = :t for update"),
                                        {"t": self.topic})).scalar_one_or_none()
            if known == info.topic_id:
                return
            n = (await conn.execute(text(
                "update outbox set published_at = null where topic = :t and published_at is not null"),
                {"t": self.topic})).rowcount
            await conn.execute(text(
                "insert into relay_state (topic, topic_id, resets) values (:t, :id, 0) "
                "on conflict (topic) do update set topic_id = excluded.topic_id, "
                "resets = relay_state.resets + 1, updated_at = now()"), {"t": self.topic, "id": info.topic_id})
        if known is not None:
            RELAY_REPUBLISH.labels(self.service, self.topic).inc()
            log.warning("topic %s is a new log (id %s -> %s): the broker lost its messages; "
                        "republishing %d events", self.topic, known, info.topic_id, n)
            self._drop_producer()

    async def publish_batch(self) -> int:
        async with self.db.connect() as conn:
            rows = (await conn.execute(text(
                "select id, key, event_type, envelope from outbox where published_at is null "
                "order by id limit :n"), {"n": self.settings.relay_batch})).all()
        if not rows:
            return 0
        acked = await asyncio.to_thread(self._send, list(rows))
        if acked:
            async with self.db.begin() as conn:
                await conn.execute(text("update outbox set published_at = now() where id = any(:ids)"),
                                   {"ids": [r.id for r in rows[:acked]]})
            EVENTS_PUBLISHED.labels(self.service, self.topic).inc(acked)
        if acked < len(rows):
            raise KafkaError(f"{len(rows) - acked} events not acknowledged")
        return acked

    async def update_backlog(self) -> None:
        async with self.db.connect() as conn:
            n = (await conn.execute(text("select count(*) from outbox where published_at is null"))).scalar_one()
        RELAY_BACKLOG.labels(self.service).set(n)

    async def run(self) -> None:
        backoff = 0.2
        last_backlog = 0.0
        log.info("relay for %s -> %s starting", self.service, self.topic)
        while not self._stop.is_set():
            try:
                await self.check_topic()
                await self._listen()
                self._wake.clear()  # before reading: a commit after the read wakes the next round
                n = await self.publish_batch()
                if time.monotonic() - last_backlog > 2:
                    await self.update_backlog()
                    last_backlog = time.monotonic()
                backoff = 0.2
                if n < self.settings.relay_batch:  # drained: wait for the next commit
                    await self._idle()
            except Exception as e:
                kind = "database" if is_unavailable(e) else "broker" if isinstance(e, KafkaError) else "error"
                log.warning("relay %s: %s unavailable or failing (%s); retrying in %.1fs", self.service, kind, e,
                            backoff)
                self._drop_producer()
                await self._close_listener()
                self._topic_checked_at = 0.0
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        self._drop_producer()
        await self._close_listener()
        self.admin.close()

    def stop(self) -> None:
        self._stop.set()


async def main() -> None:
    settings = get_settings()
    logs.setup(f"{settings.service}-relay", settings.log_level)
    port = int(os.environ.get("MCH_METRICS_PORT", "0"))
    if port:
        start_http_server(port, addr=settings.metrics_addr)
    relay = Relay(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, relay.stop)
    await relay.run()
    await relay.db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
