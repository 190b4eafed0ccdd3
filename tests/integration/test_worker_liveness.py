"""No silent stalls (issue 13): a worker consumes as soon as its topics are there, says
it is not ready when it consumes nothing while its group lags, and a message being
retried holds back its own partition only. Real broker and database, probe workers.

The worker started while the broker is down is in test_z_worker_outage.py (it stops
the shared broker, so it runs late).
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from shared import db
from shared.events import dlq_topic
from shared.kafka import ensure_topics
from tests.integration import probe_worker
from tests.integration.conftest import KAFKA, ServiceProcess, delete_topics
from tests.integration.test_consumer_and_relay import checkin_event, probe

pytestmark = pytest.mark.integration


@pytest.fixture
async def producer() -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all")
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def probe_db(database: str) -> str:
    await db.migrate(database, probe_worker.SCHEMA, db.migration_files(probe_worker.MIGRATIONS))
    return database


def metered_probe(database: str, topic: str, group: str) -> ServiceProcess:
    return probe(database, topic, group).with_metrics("WORKER_METRICS_PORT")


async def send(
    producer: AIOKafkaProducer, topic: str, subject: str, partition: int | None = None
) -> None:
    e = checkin_event(subject)
    await producer.send_and_wait(topic, e.to_bytes(), key=e.key.encode(), partition=partition)


async def applied_in_order(dsn: str, prefix: str) -> list[tuple[str, float]]:
    """(subject, seconds since the epoch) of what the probe applied, in commit order."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT subject, extract(epoch FROM applied_at)::float8 AS at FROM probe.applied "
            "WHERE subject LIKE $1 ORDER BY seq",
            prefix + "%",
        )
        return [(r["subject"], r["at"]) for r in rows]
    finally:
        await conn.close()


async def readyz(worker: ServiceProcess) -> tuple[int, dict[str, Any]]:
    url = worker.metrics_url.replace("/metrics", "/readyz")
    async with httpx.AsyncClient(timeout=5) as http:
        try:
            r = await http.get(url)
        except httpx.HTTPError as exc:
            return 0, {"error": repr(exc)}
        return r.status_code, r.json()


async def assigned_gauge(worker: ServiceProcess) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(worker.metrics_url)).text
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("consumer_assigned_partitions{")
        )
    )


async def poll(fetch: Any, done: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {value!r}")
        await asyncio.sleep(0.1)


async def committed_offsets(group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp.partition: m.offset for tp, m in offsets.items() if tp.topic == topic}
    finally:
        await admin.close()


async def test_a_worker_started_before_its_topic_exists_consumes_within_10s_of_it_appearing(
    probe_db: str, producer: AIOKafkaProducer
) -> None:
    """The leader assigned nothing (its metadata had no such topic); aiokafka alone would
    look again only at its next metadata refresh, 5 minutes later."""
    topic = f"test.probe.late.{uuid.uuid4().hex[:8]}"
    group = f"probe-{uuid.uuid4().hex[:8]}"
    run = uuid.uuid4().hex[:6]
    worker = metered_probe(probe_db, topic, group)
    worker.start()
    try:
        status = await poll(
            lambda: readyz(worker), lambda s: s[0] in (200, 503), 60, "the worker's readyz"
        )
        await poll(
            lambda: asyncio.sleep(0.2, worker.logs()),
            lambda logs: "Ignoring missing topic" in logs or "Setting newly assigned" in logs,
            60,
            "the worker's first assignment",
        )
        assert await assigned_gauge(worker) == 0, status
        await ensure_topics([KAFKA], [topic, dlq_topic(topic)], partitions=3)
        created = time.monotonic()
        for i in range(3):
            await send(producer, topic, f"s-{run}-{i}", partition=i)
        await poll(
            lambda: applied_in_order(probe_db, f"s-{run}-"),
            lambda rows: len(rows) == 3,
            10,
            "the three events applied",
        )
        took = time.monotonic() - created
        assert took < 10, took
        await poll(lambda: assigned_gauge(worker), lambda n: n == 3, 3, "3 assigned")
        _, body = await poll(
            lambda: readyz(worker), lambda s: s[0] == 200, 5, "readyz 200 once assigned"
        )
        assert body["assigned_partitions"] == 3
        print(f"\nconsumed {took:.1f} s after the topic was created")
    finally:
        worker.kill(signal.SIGTERM)
        await delete_topics([topic, dlq_topic(topic)])


async def test_a_worker_with_nothing_assigned_while_its_group_lags_is_not_ready(
    probe_db: str, producer: AIOKafkaProducer
) -> None:
    topic = f"test.probe.one.{uuid.uuid4().hex[:8]}"
    await ensure_topics([KAFKA], [topic, dlq_topic(topic)], partitions=1)
    group = f"probe-{uuid.uuid4().hex[:8]}"
    run = uuid.uuid4().hex[:6]
    first = metered_probe(probe_db, topic, group)
    second = metered_probe(probe_db, topic, group)
    conn = await asyncpg.connect(probe_db)
    stalled = f"stall-{run}"
    await conn.execute("INSERT INTO probe.gate (subject) VALUES ($1)", stalled)
    first.start()
    try:
        await poll(lambda: readyz(first), lambda s: s[0] == 200, 60, "the first worker ready")
        assert (await readyz(first))[1]["assigned_partitions"] == 1
        second.start()
        # one partition, two members: one of them has nothing; with no lag it is ready
        await poll(lambda: readyz(second), lambda s: s[0] == 200, 60, "the second ready")
        workers = [first, second]
        counts = [await assigned_gauge(w) for w in workers]
        assert sorted(counts) == [0, 1], counts
        idle, busy = (first, second) if counts[0] == 0 else (second, first)
        assert (await readyz(idle))[1] == {"ready": True, "assigned_partitions": 0, "group_lag": 0}
        # the busy one is held up by a retried message: the group lags
        await send(producer, topic, stalled)
        for i in range(3):
            await send(producer, topic, f"s-{run}-{i}")
        t0 = time.monotonic()
        _, body = await poll(
            lambda: readyz(idle), lambda s: s[0] == 503, 10, "readyz 503 on the idle worker"
        )
        assert time.monotonic() - t0 < 5
        assert body["reason"] == "no partitions assigned while the group's topics have lag"
        assert body["group_lag"] >= 4, body
        assert (await readyz(busy))[0] == 200  # it has its partition: it is not the stall
        await conn.execute("DELETE FROM probe.gate WHERE subject = $1", stalled)
        await poll(
            lambda: applied_in_order(probe_db, f"s-{run}-"), lambda r: len(r) == 3, 30, "applied"
        )
        await poll(lambda: readyz(idle), lambda s: s[0] == 200, 15, "readyz 200 after catch-up")
    finally:
        await conn.close()
        for w in (first, second):
            w.kill(signal.SIGTERM)
        await delete_topics([topic, dlq_topic(topic)])


async def test_a_message_retried_on_one_partition_does_not_delay_another_partition(
    probe_db: str, producer: AIOKafkaProducer
) -> None:
    topic = f"test.probe.lanes.{uuid.uuid4().hex[:8]}"
    await ensure_topics([KAFKA], [topic, dlq_topic(topic)], partitions=3)
    group = f"probe-{uuid.uuid4().hex[:8]}"
    run = uuid.uuid4().hex[:6]
    worker = metered_probe(probe_db, topic, group)
    conn = await asyncpg.connect(probe_db)
    stalled = f"stall-{run}"
    await conn.execute("INSERT INTO probe.gate (subject) VALUES ($1)", stalled)
    worker.start()
    try:
        await poll(lambda: readyz(worker), lambda s: s[0] == 200, 60, "the worker ready")
        # partition 0: the stalled event, then one behind it (same partition: must wait)
        await send(producer, topic, stalled, partition=0)
        await send(producer, topic, f"s-{run}-p0-after", partition=0)
        await poll(
            lambda: conn.fetchval(
                "SELECT count(*) FROM probe.applied WHERE subject LIKE $1", f"s-{run}-%"
            ),
            lambda n: n == 0,
            1,
            "nothing yet",
        )
        await asyncio.sleep(1.0)  # the stalled event is being retried by now
        sent_at = time.time()
        t0 = time.monotonic()
        for i in range(5):
            await send(producer, topic, f"s-{run}-p1-{i}", partition=1)
        rows = await poll(
            lambda: applied_in_order(probe_db, f"s-{run}-p1-"),
            lambda r: len(r) == 5,
            5,
            "partition 1's events applied while partition 0 retries",
        )
        took = time.monotonic() - t0
        assert took < 3, took
        assert [s for s, _ in rows] == [f"s-{run}-p1-{i}" for i in range(5)]
        assert max(at for _, at in rows) - sent_at < 3
        # partition 0 holds its order: the event behind the stalled one waits
        assert await applied_in_order(probe_db, f"s-{run}-p0-") == []
        await asyncio.sleep(2.5)  # two commit intervals
        offsets = await committed_offsets(group, topic)
        assert offsets.get(0, -1) <= 0, offsets  # never past the unprocessed event (offset 0)
        assert offsets.get(1) == 5, offsets
        await conn.execute("DELETE FROM probe.gate WHERE subject = $1", stalled)
        rows = await poll(
            lambda: applied_in_order(probe_db, stalled),
            lambda r: len(r) == 1,
            15,
            "the stalled event applied once the gate opens",
        )
        rows = await poll(
            lambda: applied_in_order(probe_db, f"s-{run}-p0-"),
            lambda r: len(r) == 1,
            15,
            "the event behind it",
        )
        stalled_at = (await applied_in_order(probe_db, stalled))[0][1]
        assert stalled_at <= rows[0][1]
        await poll(
            lambda: committed_offsets(group, topic),
            lambda o: o.get(0) == 2,
            10,
            "partition 0 committed after both",
        )
        print(f"\npartition 1 applied {took:.2f} s after sending while partition 0 retried")
    finally:
        await conn.close()
        worker.kill(signal.SIGTERM)
        await delete_topics([topic, dlq_topic(topic)])
