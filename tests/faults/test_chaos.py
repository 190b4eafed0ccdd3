"""Proof under faults, with two instances of every process (scale-out; the machinery, and
the checks listed below, in tests/support/chaos.py).

A steady load of intakes and check-ins (some reporting suicidal ideation) runs while,
in turn, every process of one instance of each service is killed with SIGKILL (and
restarted), the broker restarts, PostgreSQL restarts, and the webhook receiver is down
for a while. Afterwards, on the real broker and database:

- every accepted intake has exactly one decision event (one event id; the relay may
  publish it twice after a kill, and consumers drop the repeat),
- every eligible patient has exactly one induction series, and no room, therapist or
  patient is double-booked,
- every suicidal-ideation check-in has exactly one critical alert whose pages all
  arrived,
- every consumer group has caught up (lag 0).

`make faults` runs it for 10 minutes (FAULT_SECONDS=600); `make test` for 45 s. It runs
last (file name): it restarts the shared local broker and database.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import pytest

from tests.support import servers
from tests.support.chaos import Load, Stack, generate, open_site, summary, two_of_everything, verify
from tools.page_receiver import PageReceiver

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SECONDS = float(os.environ.get("FAULT_SECONDS", "45"))
RATE = float(os.environ.get("FAULT_RATE", "4"))  # intakes per second; as many check-ins
# the broker and database are restarted only when they are this checkout's local ones,
# or the session's containers (tests/support/servers.py)
LOCAL = servers.broker_is_ours() and servers.database_is_ours()
RESTARTS = LOCAL and os.environ.get("FAULT_RESTARTS", "1") == "1"


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with two_of_everything("fault") as s:
        yield s


async def _faults(stack: Stack, receiver: PageReceiver, load: Load) -> None:
    """One fault at a time, spread over the run."""
    gap = SECONDS / 9
    first = stack.instances[0]
    for service in ("intake", "scheduling", "alerts"):
        await asyncio.sleep(gap)
        # the other instance's workers take the dead one's partitions once its session
        # expires, its relay the outbox lock at its next poll (1 s); the other safety
        # lane consumes every partition already, but a page the dead lane had leased and
        # not yet POSTed waits for its lease (PAGE_TIMEOUT_S + 10 s) and the timers
        async with load.fault(f"kill -9 every {service} process of instance 1", 15.0):
            first.kill(service)
            await asyncio.sleep(1.0)
            first.start(service)
    await asyncio.sleep(gap)
    down = min(60.0, 2 * gap)
    # back by the next retry (PAGE_RETRY_MAX_S 4)
    async with load.fault(f"webhook receiver answers 503 for {down:.0f} s", 6.0):
        receiver.down(None)
        await asyncio.sleep(down)
        receiver.up(None)
    if RESTARTS:
        await asyncio.sleep(gap)
        async with load.fault("broker restarted", 10.0):  # back within 10 s: issue 13
            await servers.broker("restart")
        await asyncio.sleep(gap)
        async with load.fault("PostgreSQL restarted", 10.0):
            await servers.database("restart")


async def test_nothing_lost_nothing_duplicated_under_faults_with_two_of_everything(
    stack: Stack,
) -> None:
    async with PageReceiver() as receiver:
        site_id = await open_site(stack, receiver)
        load = Load()
        until = time.monotonic() + SECONDS
        await asyncio.gather(
            generate(stack, site_id, load, until, RATE), _faults(stack, receiver, load)
        )
        outcome = await verify(stack, load, receiver)
    print(summary(f"faults over {SECONDS:.0f} s", load, RATE, outcome))
