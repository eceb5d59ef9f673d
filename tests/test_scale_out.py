"""Scale-out stays exact (issue 21): two instances of every consumer (MCH_CONSUMER_INSTANCES=2, instance i taking
the partitions p with p % 2 == i, as deploy/ runs them) in place of the stack's one, and the property test's random
families — duplicates, reordering, corrections, voids, moves — give figures equal to the independent reference."""
from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator

import devstack
import httpx
import pytest

from tests import test_property
from tests.conftest import Stack

INSTANCES = 2


@pytest.fixture
def two_instances(stack: Stack) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Stop the stack's consumers and run two instances of each (their offsets are the stack's: they carry on
    where it stopped); afterwards stop them and start the stack's again."""
    consumers = [svc for svc in devstack.CONSUMERS]
    started: list[subprocess.Popen[bytes]] = []
    for svc in consumers:
        devstack.ctl(stack.spec, "stop", f"{svc}-consumer")
    logs = stack.spec.run_dir / "logs"
    try:
        for svc in consumers:
            for name, (cmd, extra) in devstack.consumer_programs(svc, INSTANCES).items():
                env = {**os.environ, **stack.spec.base_env(), **extra, "MCH_PROCESS_NAME": f"{name}-of-{INSTANCES}",
                       "PYTHONUNBUFFERED": "1"}
                with open(logs / f"scale-out-{name}.log", "ab") as log:
                    started.append(subprocess.Popen(shlex.split(cmd), env=env, cwd=devstack.ROOT, stdout=log,
                                                    stderr=subprocess.STDOUT))
        yield started
    finally:
        for p in started:
            p.terminate()
        for p in started:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for svc in consumers:
            devstack.ctl(stack.spec, "start", f"{svc}-consumer")


async def test_two_instances_of_every_consumer_equal_the_reference(
        http: httpx.AsyncClient, stack: Stack, two_instances: list[subprocess.Popen[bytes]]) -> None:
    assert len(two_instances) == INSTANCES * len(devstack.CONSUMERS)
    await test_property.test_incremental_counts_equal_the_reference(http, stack, 3)
    assert all(p.poll() is None for p in two_instances)  # both instances of each ran throughout
