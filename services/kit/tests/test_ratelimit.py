"""kit.ratelimit: a token bucket per client."""
from __future__ import annotations

import pytest

from kit.errors import Problem
from kit.ratelimit import RateLimit


def test_a_burst_is_allowed_then_the_sustained_rate_and_clients_are_apart() -> None:
    now = [100.0]
    limit = RateLimit(per_second=2, burst=3, clock=lambda: now[0])
    assert [limit.wait_s("a") for _ in range(3)] == [0, 0, 0]
    assert limit.wait_s("a") == pytest.approx(0.5)     # empty: one token comes back every half second
    assert limit.wait_s("b") == 0                       # another client has its own bucket
    now[0] += 0.5
    assert limit.wait_s("a") == 0 and limit.wait_s("a") == pytest.approx(0.5)
    now[0] += 10                                        # a long pause refills to the burst, not beyond
    assert [limit.wait_s("a") for _ in range(4)][-1] == pytest.approx(0.5)


def test_over_the_limit_is_a_429_problem_with_retry_after() -> None:
    limit = RateLimit(per_second=0.5, burst=1, clock=lambda: 0.0)
    limit.check("a", "verifications")
    with pytest.raises(Problem) as e:
        limit.check("a", "verifications")
    assert e.value.status == 429 and e.value.headers == {"Retry-After": "2"}
