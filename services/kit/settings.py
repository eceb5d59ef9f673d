"""Service settings, from environment variables (prefix MCH_) with development defaults."""
from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICES = ("registry", "screening", "certificates", "indicators", "quality")


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
    #: the most connections one pool opens (a burst); a checkout beyond waits for one (decision 56)
    pool_size: int = 10
    #: connections a pool keeps open however long idle, and how long (s) any other may stay idle before it is
    #: closed: pools grow under load and shrink back, so a stack at rest holds few connections
    pool_min: int = 1
    pool_idle_s: float = 5.0
    #: names this process's database connections (application_name in pg_stat_activity), e.g. "registry-api"
    process_name: str = "mch"
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

    # ---------------------------------------------------------------- identity (kit.auth, kit.login)
    #: how long a resolved token (and a person's "still active" check) is trusted before the database is asked
    #: again: a revoked token or a disabled account stops working within this time
    auth_cache_ttl_s: float = 30.0
    #: HS256 key of the platform's own access tokens; empty: the key kept in the credential database
    jwt_secret: str = ""
    #: access tokens (JWT) of a logged-in person live this long; refresh tokens rotate within one session
    access_token_ttl_s: int = 15 * 60
    refresh_token_ttl_s: int = 12 * 3600
    #: consecutive failed logins that lock an account, and for how long
    login_max_failures: int = 5
    login_lockout_s: int = 15 * 60
    #: machine clients' opaque tokens: lifetime of a new token, and how long the old one lives after a rotation
    system_token_ttl_days: int = 365
    rotation_grace_days: float = 7.0
    #: an external OpenID Connect provider (e.g. Keycloak): all three set = its tokens are accepted too
    oidc_jwks_url: str = ""
    oidc_issuer: str = ""
    oidc_audience: str = ""
    #: where its claims are (dotted paths into the token): roles, the region code, institution, staff id, name
    oidc_roles_claim: str = "realm_access.roles"
    oidc_region_claim: str = "region"
    oidc_institution_claim: str = "institution_code"
    oidc_staff_id_claim: str = "staff_id"
    oidc_name_claim: str = "name"
    oidc_username_claim: str = "preferred_username"
    #: signature algorithms accepted from the provider (never "none", never HS*: its key is public)
    oidc_algorithms: str = "RS256,ES256,PS256"

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_jwks_url and self.oidc_issuer and self.oidc_audience)

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
