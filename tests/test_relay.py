"""kit.relay: an idle relay is woken by the commit of an outbox insert (LISTEN/NOTIFY), not by polling."""
from __future__ import annotations

import asyncio
import time
import uuid

from kafka import KafkaConsumer, TopicPartition
from kit import outbox
from kit.db import Database
from kit.events import NewEvent, parse
from kit.migrate import SERVICES_DIR, _admin, _alembic, create_databases
from kit.relay import Relay
from kit.settings import Settings
from mch.events.v1 import registry_pb2

from tests.conftest import Stack


def _received(settings: Settings, topic: str, event_ids: set[str], timeout: float) -> set[str]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    try:
        seen: set[str] = set()
        assigned: set[int] = set()
        deadline = time.monotonic() + timeout
        while not event_ids <= seen and time.monotonic() < deadline:
            parts = consumer.partitions_for_topic(topic) or set()  # known once the broker has the topic
            if parts != assigned:
                consumer.assign([TopicPartition(topic, p) for p in parts])
                consumer.seek_to_beginning()
                assigned, seen = set(parts), set()
            for msgs in consumer.poll(timeout_ms=200).values():
                seen |= {parse(m.value).event_id for m in msgs}
        return seen
    finally:
        consumer.close()


async def test_an_idle_relay_publishes_a_commit_without_polling(stack: Stack) -> None:
    # its own database and topic, and a poll interval far longer than the test: only the notification wakes it
    tag = uuid.uuid4().hex[:6]
    settings = Settings(db_prefix=f"kitrelay_{tag}_", topic_prefix=f"kitrelay{tag}.", service="registry",
                        kafka_bootstrap=stack.settings.kafka_bootstrap, relay_idle_poll_s=3600,
                        topic_check_interval_s=3600, partitions=1)
    await create_databases(settings, ("registry",), drop=True)
    await asyncio.to_thread(_alembic, settings, "registry", SERVICES_DIR / "kit" / "migrations", "kit_alembic_version")
    db = Database.for_service(settings, pool_size=2)
    relay = Relay(settings, db)
    task = asyncio.create_task(relay.run())
    try:
        for _ in range(300):  # until it has drained the (empty) outbox and listens
            if relay._listener is not None and not relay._wake.is_set():
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        ids = []
        for i in range(3):  # three separate commits
            async with db.begin() as conn:
                ev = NewEvent("registry.institution.upserted",
                              registry_pb2.InstitutionUpserted(institution_code=f"HB{tag}{i}"), f"HB{tag}{i}")
                ids += await outbox.append(conn, [ev])
        got = await asyncio.to_thread(_received, settings, settings.topic(), {str(i) for i in ids}, 30)
        assert {str(i) for i in ids} <= got
    finally:
        relay.stop()
        await asyncio.wait_for(task, 10)
        await db.dispose()
        await drop_scratch(settings)


async def drop_scratch(settings: Settings) -> None:
    conn = await _admin(settings)
    try:
        for name in (settings.database("registry"), settings.auth_database):
            await conn.execute(f'drop database if exists "{name}" with (force)')
        await conn.execute(f'drop role if exists "{settings.role("registry")}"')
    finally:
        await conn.close()
