"""Readiness tells the truth: 503 while the broker is down, 200 once it is back; and an
outage longer than the producers' request timeout (KAFKA_REQUEST_TIMEOUT_MS, 3 s for the
session's intake relay) with sends in flight (the pipeline heartbeat every second) does
not leave the relay's idempotent producer broken for good (shared/relay.py
_replace_producer).

Runs last in the session (tests/conftest.py FAULT_ORDER) because it stops the broker
every test shares: the local one, or the session's container (tests/support/servers.py).
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.support import servers
from tests.support.eventually import eventually
from tests.support.stack import EventLog, IntakeStack
from tools.factories import intake_body

pytestmark = [pytest.mark.integration, pytest.mark.faults]


async def test_readyz_is_503_while_the_broker_is_down_and_nothing_accepted_is_lost(
    intake: IntakeStack, event_log: EventLog
) -> None:
    if not servers.broker_is_ours():
        pytest.skip("the broker is external (KAFKA_BOOTSTRAP_SERVERS): not ours to stop")
    async with httpx.AsyncClient(base_url=intake.url, timeout=10) as http:
        assert (await http.get("/readyz")).status_code == 200
        # the relay is connected and publishing before the broker goes
        before = intake_body()
        assert (await http.post("/v1/intakes", json=before)).status_code == 201
        key = before["patient"]["patient_id"].encode()
        await eventually(
            lambda: any(r.key == key for r in event_log.on("intake.screened")),
            timeout=30,
            what="an intake published before the outage",
        )
        stopped = time.monotonic()
        await servers.broker("stop")
        try:

            async def readyz() -> int:
                return (await http.get("/readyz")).status_code

            await eventually(readyz, lambda code: code == 503, what="readyz 503", every=0.2)
            # Intakes are still accepted while the broker is away: the outbox keeps them.
            body = intake_body()
            assert (await http.post("/v1/intakes", json=body)).status_code == 201
            # down for longer than the relay's request timeout (3 s): its heartbeat sends
            # in flight expire, which broke the producer's sequence numbers for good
            await asyncio.sleep(max(0.0, 6.0 - (time.monotonic() - stopped)))
        finally:
            await servers.broker("start")
        await eventually(readyz, lambda code: code == 200, what="readyz 200", every=0.2)
        pid = body["patient"]["patient_id"].encode()
        await eventually(
            lambda: any(r.key == pid for r in event_log.on("intake.screened")),
            timeout=60,
            what="the intake accepted during the outage, published",
        )
