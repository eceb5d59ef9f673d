"""Service settings, from environment variables (prefix MCH_) with development defaults."""
from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("registry", "screening", "certificates", "indicators")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MCH_", extra="ignore")

    service: str = "registry"
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_admin_user: str = "postgres"
    #: database names are "<db_prefix><service>"; tests use another prefix so they never touch a demo
    db_prefix: str = "mch_"
    kafka_bootstrap: str = "127.0.0.1:9092"
    #: topic names are "<topic_prefix><service>.v1"
    topic_prefix: str = "mch."
    partitions: int = 4
    pool_size: int = 10
    log_level: str = "INFO"
    #: where relays and consumers serve /metrics (MCH_METRICS_PORT); 0.0.0.0 in containers so Prometheus reaches it
    metrics_addr: str = "127.0.0.1"
    #: consumer instance i of n takes partitions p with p % n == i (explicit assignment, no group)
    consumer_instance: int = 0
    consumer_instances: int = 1
    relay_batch: int = 2000
    #: an idle relay waits for a commit's notification, looking anyway this often (a missed notification)
    relay_idle_poll_s: float = 1.0
    #: after a wake-up, the relay waits this long so a burst of commits is published as one batch
    relay_coalesce_s: float = 0.01
    #: how long the broker may hold a consumer's fetch when there is nothing new (Tansu answers a waiting
    #: fetch only at intervals within this wait: it bounds the latency an idle consumer adds)
    fetch_max_wait_ms: int = 200
    consumer_batch: int = 2000
    #: rate-limited endpoints (certificate verification): calls per second per client, sustained, and at once
    rate_limit_per_second: float = 10.0
    rate_limit_burst: int = 50
    #: the largest request body an API reads (413 beyond): a full batch of 1000 records is well under 1 MiB
    max_body_bytes: int = 8 * 1024 * 1024
    #: test stacks only: the APIs also serve /__test__/error (an unexpected error on purpose)
    test_routes: bool = False
    #: how often relays and consumers ask the broker whether a topic was recreated (broker restart)
    topic_check_interval_s: float = 1.0

    def database(self, service: str | None = None) -> str:
        return f"{self.db_prefix}{service or self.service}"

    @property
    def auth_database(self) -> str:
        return f"{self.db_prefix}auth"

    def role(self, service: str | None = None) -> str:
        return f"{self.db_prefix}{service or self.service}"

    def dsn(self, database: str | None = None, user: str | None = None) -> str:
        db = database or self.database()
        usr = user or self.role()
        return f"postgresql+asyncpg://{usr}@{self.pg_host}:{self.pg_port}/{db}"

    def topic(self, service: str | None = None) -> str:
        return f"{self.topic_prefix}{service or self.service}.v1"


@lru_cache
def get_settings() -> Settings:
    return Settings()
