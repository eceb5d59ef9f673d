"""Schemathesis against the four services' OpenAPI, on the live test stack with a valid token (issue 15): no
server error, and every 4xx a problem+json (a 422 naming a field).

`make test` runs a small campaign (a few examples per operation, valid and invalid, about a minute); `make fuzz`
a larger one bounded in time (MCH_FUZZ_EXAMPLES, MCH_FUZZ_BUDGET_S) and writes its summary to
MCH_FUZZ_REPORT (bench/results/fuzz.md)."""
from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from kit.auth import SCOPES
from kit.settings import SERVICES
from schemathesis import GenerationMode

from tests.conftest import Stack, make_token

pytestmark = pytest.mark.stack

EXAMPLES = int(os.environ.get("MCH_FUZZ_EXAMPLES", "6"))
BUDGET_S = float(os.environ.get("MCH_FUZZ_BUDGET_S", "60"))
REPORT = os.environ.get("MCH_FUZZ_REPORT", "")
#: `make fuzz` runs on a stack of its own and may receive blank stock; inside `make test` the campaign's token
#: lacks certificates:stock and admin (those operations answer 403/422), so no generated batch of serials can overlap a
#: serial range a later test receives
FULL = bool(REPORT)
SCOPE_NOTE = "every scope" if FULL else "every scope but certificates:stock"
PROBLEM = "application/problem+json"


@dataclass
class Campaign:
    """What the fuzzer sent and what came back: statuses per service, and every answer that broke a rule."""

    deadline: float
    #: operations not yet fuzzed: each gets an equal share of the time left, so every one is reached
    ops_left: int = 0
    op_deadline: float = 0.0
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    operations: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def over(self) -> bool:
        return time.monotonic() > min(self.deadline, self.op_deadline)

    def next_operation(self) -> None:
        now = time.monotonic()
        self.op_deadline = now + max(self.deadline - now, 0) / max(self.ops_left, 1)
        self.ops_left -= 1


def header(r: Any, name: str) -> str:
    """A response header (schemathesis keeps each header's values as a list)."""
    v = r.headers.get(name, "")
    return str(v[0] if isinstance(v, list) and v else v or "")


def broken_rule(r: Any) -> str | None:
    """Why an answer breaks the contract of errors (None if it keeps it)."""
    if r.status_code >= 500:
        return f"server error {r.status_code}"
    if r.status_code < 400:
        return None
    if not header(r, "content-type").startswith(PROBLEM):
        return f"{r.status_code} is {header(r, 'content-type')!r}, not {PROBLEM}"
    try:
        body: Any = r.json()
    except ValueError:
        return f"{r.status_code} body is not JSON"
    if not isinstance(body, dict) or body.get("status") != r.status_code or not body.get("title"):
        return f"{r.status_code} problem without status/title"
    if r.status_code in (400, 413, 415, 422):  # the request itself is wrong: say where
        errs = body.get("errors")
        if not errs or not all(isinstance(e, dict) and e.get("field") for e in errs):
            return f"{r.status_code} without errors naming a field"
    return None


def fuzz_operation(op: Any, mode: GenerationMode, label: str, send: Any, c: Campaign,
                   statuses: Counter[int]) -> None:
    """Up to EXAMPLES generated requests of one operation; every answer checked, every broken rule kept."""

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        if c.over():
            return
        try:
            r = send(case)
        except requests.RequestException as e:  # a dropped connection is a failure too
            c.failures.append(f"{label}: {type(e).__name__} {e}")
            return
        statuses[r.status_code] += 1
        if (why := broken_rule(r)) is not None:
            c.failures.append(f"{label} ({mode.value}): {why}; sent {case.path_parameters} {case.query} "
                              f"{str(case.body)[:200]!r}; got {r.text[:300]!r}")

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (an operation without parameters)
        pass


def operations(stack: Stack, service: str) -> list[Any]:
    raw = httpx.get(f"{stack.url(service)}/openapi.json", timeout=30).json()
    return [r.ok() for r in schemathesis.openapi.from_dict(raw).get_all_operations()]


def fuzz_service(stack: Stack, service: str, ops: list[Any], token: str, c: Campaign) -> None:
    base = stack.url(service)
    auth = {"Authorization": f"Bearer {token}"}
    session = requests.Session()
    statuses = c.statuses.setdefault(service, Counter())

    def send(case: Any) -> Any:
        return case.call(base_url=base, session=session, headers=auth, timeout=30)

    for op in ops:
        label = f"{service} {op.method.upper()} {op.path}"
        c.next_operation()
        t0 = time.monotonic()
        c.operations[service] = c.operations.get(service, 0) + 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(op, mode, label, send, c, statuses)
        c.seconds[label] = time.monotonic() - t0


def write_report(c: Campaign, started: float, path: str) -> None:
    lines = [f"# Fuzzing (schemathesis {schemathesis.__version__})", "",
             f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; up to {EXAMPLES} examples per operation and generation mode "
             f"(valid and invalid), {time.monotonic() - started:.0f} s of a {BUDGET_S:.0f} s budget shared by the "
             f"operations; a valid national token with {SCOPE_NOTE}, against a live test stack.", "",
             "| service | operations | requests | statuses | server errors |", "|---|---|---|---|---|"]
    for svc, st in c.statuses.items():
        fives = sum(n for s, n in st.items() if s >= 500)
        shown = ", ".join(f"{s}: {n}" for s, n in sorted(st.items()))
        lines.append(f"| {svc} | {c.operations.get(svc, 0)} | {sum(st.values())} | {shown} | {fives} |")
    lines += ["", f"Answers that broke the error contract: {len(c.failures)}. (`make fuzz` also posts valid records "
              "with one value replaced by any JSON, tests/test_bad_input.py; a 5xx there fails the target.)"]
    lines += [f"- {f}" for f in c.failures[:50]]
    slow = sorted(c.seconds.items(), key=lambda kv: -kv[1])[:5]
    lines += ["", "Slowest operations: " + ", ".join(f"{k} {v:.1f} s" for k, v in slow) + "."]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_fuzzing_finds_no_server_error_and_every_4xx_is_a_problem(stack: Stack) -> None:
    started = time.monotonic()
    c = Campaign(deadline=started + BUDGET_S)
    scopes = [s for s in SCOPES if FULL or s not in ("certificates:stock", "admin")]  # admin grants every scope
    token = asyncio.run(make_token(stack, scopes))
    ops = {service: operations(stack, service) for service in SERVICES}
    c.ops_left = sum(len(o) for o in ops.values())
    try:
        for service in SERVICES:
            fuzz_service(stack, service, ops[service], token, c)
    finally:
        if REPORT:
            write_report(c, started, REPORT)
    assert sum(sum(s.values()) for s in c.statuses.values()) > 0
    assert not c.failures, "\n".join(c.failures[:30])
