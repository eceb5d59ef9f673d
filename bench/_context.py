"""What a benchmark module gets: the running stack, a token with every scope, and a way to record figures."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import devstack


@dataclass
class BenchContext:
    spec: devstack.Stack
    token: str
    notes: list[str] = field(default_factory=list)

    def url(self, service: str) -> str:
        return self.spec.url(service)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def dsn(self, service: str, admin: bool = False) -> str:
        """A plain asyncpg DSN of a service database (admin: as the postgres superuser)."""
        user = "postgres" if admin else f"{self.spec.db_prefix}{service}"
        return f"postgresql://{user}@127.0.0.1:5432/{self.spec.db_prefix}{service}"


Result = dict[str, Any]
