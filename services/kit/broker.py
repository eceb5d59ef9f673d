"""Topic administration against Kafka (or the local memory-only Tansu broker).

A topic's `topic_id` (a UUID the broker gives it at creation) identifies one life of its log: when the
local broker restarts it forgets every topic and message, and the recreated topic gets a new id. Relays and
consumers compare ids to detect that the log went back to 0. (Tansu's end_offsets are not reliable and a
fetch past the end answers empty instead of OffsetOutOfRange, so offsets alone cannot tell.)
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger("kit.broker")


@dataclass(frozen=True)
class TopicInfo:
    name: str
    topic_id: str
    partitions: int


class TopicAdmin:
    def __init__(self, bootstrap: str, client_id: str) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self._admin: KafkaAdminClient | None = None

    def _client(self) -> KafkaAdminClient:
        if self._admin is None:
            self._admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id=self.client_id,
                                           request_timeout_ms=5000)
        return self._admin

    def close(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:
                pass
            self._admin = None

    def describe(self, topic: str) -> TopicInfo | None:
        """The topic as the broker knows it now, or None if it does not exist."""
        try:
            if topic not in self._client().list_topics():
                return None
            (d,) = self._client().describe_topics([topic])
        except KafkaError:
            self.close()
            raise
        except Exception as e:  # connection reset etc. surface as plain errors in kafka-python
            self.close()
            raise KafkaError(str(e)) from e
        if d.get("error_code"):
            return None
        return TopicInfo(topic, str(d.get("topic_id")), len(d.get("partitions", [])))

    def ensure(self, topic: str, partitions: int) -> TopicInfo:
        """Create the topic explicitly (never rely on auto-creation) and return what the broker has.

        A topic auto-created by a stray produce has the broker's default partition count; it is dropped
        and recreated with ours (its new id makes everyone treat it as a fresh log).
        """
        for _ in range(20):
            info = self.describe(topic)
            if info is not None and info.partitions == partitions:
                return info
            try:
                if info is not None:
                    log.warning("topic %s has %d partitions, want %d: recreating", topic, info.partitions,
                                partitions)
                    self._client().delete_topics([topic])
                    time.sleep(0.2)
                self._client().create_topics([NewTopic(topic, partitions, 1)])
            except TopicAlreadyExistsError:
                pass
            except KafkaError:
                self.close()
                raise
            time.sleep(0.05)
        raise KafkaError(f"could not create topic {topic}")
