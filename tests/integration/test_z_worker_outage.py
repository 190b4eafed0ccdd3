"""A worker started while the broker is down consumes within 10 s of its return.

Stops the shared local broker for a few seconds (as test_z_broker_outage.py does), so
it runs late in the session (file name). TEST_BROKER_CTL=<script taking stop|start>
runs it against another broker of one's own instead (KAFKA_BOOTSTRAP_SERVERS there).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from shared import db
from shared.events import dlq_topic
from shared.kafka import ensure_topics
from shared.settings import DEFAULT_KAFKA
from tests.integration import probe_worker
from tests.integration.conftest import KAFKA, ROOT, delete_topics
from tests.integration.test_worker_liveness import (
    applied_in_order,
    assigned_gauge,
    metered_probe,
    poll,
    readyz,
    send,
)

pytestmark = pytest.mark.integration

BROKER_CTL = os.environ.get("TEST_BROKER_CTL") or str(ROOT / "deploy" / "bin" / "kafka.sh")


async def broker(action: str) -> None:
    proc = await asyncio.create_subprocess_exec(BROKER_CTL, action)
    assert await asyncio.wait_for(proc.wait(), 300) == 0, f"{BROKER_CTL} {action} failed"


async def test_a_worker_started_while_the_broker_is_down_consumes_within_10s_of_its_return(
    database: str,
) -> None:
    if KAFKA not in (DEFAULT_KAFKA, "localhost:9092") and not os.environ.get("TEST_BROKER_CTL"):
        pytest.skip("the broker is external (KAFKA_BOOTSTRAP_SERVERS): not ours to stop")
    await db.migrate(database, probe_worker.SCHEMA, db.migration_files(probe_worker.MIGRATIONS))
    topic = f"test.probe.outage.{uuid.uuid4().hex[:8]}"
    await ensure_topics([KAFKA], [topic, dlq_topic(topic)], partitions=3)
    group = f"probe-{uuid.uuid4().hex[:8]}"
    run = uuid.uuid4().hex[:6]
    worker = metered_probe(database, topic, group)
    await broker("stop")
    try:
        worker.start()
        _, body = await poll(
            lambda: readyz(worker), lambda s: s[0] == 503, 30, "readyz 503 without a broker"
        )
        assert body["reason"] == "waiting for the broker", body
        await asyncio.sleep(3)  # it has been up a while with no broker; still running
        assert worker.proc is not None
        assert worker.proc.poll() is None, worker.logs()[-3000:]
        assert (await readyz(worker))[0] == 503
    finally:
        await broker("start")
    back = time.monotonic()
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all")
    await producer.start()
    try:
        for i in range(3):
            await send(producer, topic, f"s-{run}-{i}", partition=i)
        await poll(
            lambda: applied_in_order(database, f"s-{run}-"),
            lambda rows: len(rows) == 3,
            10,
            "the events applied within 10 s of the broker's return",
        )
        took = time.monotonic() - back
        assert took < 10, took
        await poll(lambda: assigned_gauge(worker), lambda n: n == 3, 3, "3 assigned")
        await poll(lambda: readyz(worker), lambda s: s[0] == 200, 5, "readyz 200")
        print(f"\nconsumed {took:.1f} s after the broker was back")
    finally:
        await producer.stop()
        worker.kill(signal.SIGTERM)
        await delete_topics([topic, dlq_topic(topic)])
