"""Per-client rate limits (token buckets, in the API process's memory): a client may make `burst` calls at once
and `per_second` sustained; beyond that it is answered 429 with Retry-After (RFC 9457 problem+json).

In memory: one API process per service here; with several workers each would allow its own share."""
from __future__ import annotations

import math
import time
from collections.abc import Callable

from kit.errors import Problem


class RateLimit:
    def __init__(self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, when counted)

    def wait_s(self, key: str) -> float:
        """0 and one call counted when `key` may call now; otherwise how long until it may (nothing counted)."""
        now = self._clock()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.per_second)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.per_second

    def check(self, key: str, what: str) -> None:
        """Raise a 429 problem when `key` is over its limit."""
        wait = self.wait_s(key)
        if wait:
            raise Problem(429, "Too Many Requests", f"more than {self.burst} {what} at once or "
                          f"{self.per_second:g} per second: try again in {math.ceil(wait)} s",
                          kind="rate-limited", headers={"Retry-After": str(math.ceil(wait))})
