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
from dataclasses import dataclass

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from shared import db
from shared.consumer import LANE_PAUSE
from shared.events import dlq_topic
from shared.kafka import ensure_topics
from tests.support import probe_worker
from tests.support.dblink import DbLink
from tests.support.eventually import eventually
from tests.support.probes import (
    applied_in_order,
    assigned_gauge,
    checkin_event,
    metered_probe,
    readyz,
    send,
)
from tests.support.stack import KAFKA, delete_topics

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


@dataclass
class Gated:
    """A topic of the test's own and a consumer group, with the probe's gate closed for
    the run's ``stall-`` subject (held by ``conn``)."""

    topic: str
    group: str
    run: str
    conn: asyncpg.Connection
    stalled: str


async def gated(dsn: str, kind: str, partitions: int) -> Gated:
    topic = f"test.probe.{kind}.{uuid.uuid4().hex[:8]}"
    await ensure_topics([KAFKA], [topic, dlq_topic(topic)], partitions=partitions)
    run = uuid.uuid4().hex[:6]
    conn = await asyncpg.connect(dsn)
    stalled = f"stall-{run}"
    await conn.execute("INSERT INTO probe.gate (subject) VALUES ($1)", stalled)
    return Gated(topic, f"probe-{uuid.uuid4().hex[:8]}", run, conn, stalled)


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
        status = await eventually(
            lambda: readyz(worker),
            lambda s: s[0] in (200, 503),
            timeout=60,
            what="the worker's readyz",
        )
        await eventually(
            lambda: asyncio.sleep(0.2, worker.logs()),
            lambda logs: "Ignoring missing topic" in logs or "Setting newly assigned" in logs,
            timeout=60,
            what="the worker's first assignment",
        )
        assert await assigned_gauge(worker) == 0, status
        await ensure_topics([KAFKA], [topic, dlq_topic(topic)], partitions=3)
        created = time.monotonic()
        for i in range(3):
            await send(producer, topic, f"s-{run}-{i}", partition=i)
        await eventually(
            lambda: applied_in_order(probe_db, f"s-{run}-"),
            lambda rows: len(rows) == 3,
            timeout=10,
            what="the three events applied",
        )
        took = time.monotonic() - created
        assert took < 10, took
        await eventually(
            lambda: assigned_gauge(worker), lambda n: n == 3, timeout=3, what="3 assigned"
        )
        _, body = await eventually(
            lambda: readyz(worker),
            lambda s: s[0] == 200,
            timeout=5,
            what="readyz 200 once assigned",
        )
        assert body["assigned_partitions"] == 3
        print(f"\nconsumed {took:.1f} s after the topic was created")
    finally:
        worker.kill(signal.SIGTERM)
        await delete_topics([topic, dlq_topic(topic)])


async def test_a_worker_whose_database_refuses_it_at_start_waits_and_then_consumes(
    probe_db: str, producer: AIOKafkaProducer
) -> None:
    """A worker used to exit when PostgreSQL refused it at start (restarting, or out of
    connection slots: seen in CI as a worker gone mid-test), first in its migrations,
    then in its pool's first connection, which crashed the faust app. It now waits,
    says why on /readyz, and consumes once the database lets it in."""
    topic = f"test.probe.nodb.{uuid.uuid4().hex[:8]}"
    await ensure_topics([KAFKA], [topic, dlq_topic(topic)], partitions=1)
    group = f"probe-{uuid.uuid4().hex[:8]}"
    run = uuid.uuid4().hex[:6]
    link = DbLink(probe_db)
    worker = metered_probe(await link.start(), topic, group)
    link.cut()  # every connection refused
    worker.start()
    try:
        for i in range(3):
            await send(producer, topic, f"s-{run}-{i}")
        _, body = await eventually(
            lambda: readyz(worker),
            lambda s: s[0] == 503 and link.refused >= 2,
            timeout=30,
            what="readyz 503 while its migrations are refused, twice",
        )
        assert body["reason"] == "waiting for the database", body
        assert worker.proc is not None
        assert worker.proc.poll() is None, "the worker exited"

        link.admit(1)  # the migrations' connection only: its pool's are refused
        refused = link.refused
        await eventually(
            lambda: asyncio.sleep(0.2, worker.logs()),
            lambda logs: "worker_waiting_for_dependencies" in logs and link.refused >= refused + 2,
            timeout=30,
            what="the pool's connections refused, twice",
        )
        assert worker.proc.poll() is None, "the worker exited"
        assert (await readyz(worker))[0] == 503

        link.mend()
        rows = await eventually(
            lambda: applied_in_order(probe_db, f"s-{run}-"),
            lambda r: len(r) == 3,
            timeout=30,
            what="the events applied once the database lets it in",
        )
        assert [s for s, _ in rows] == [f"s-{run}-{i}" for i in range(3)]
        await eventually(
            lambda: readyz(worker), lambda s: s[0] == 200, timeout=15, what="readyz 200"
        )
    finally:
        worker.kill(signal.SIGTERM)
        await link.close()
        await delete_topics([topic, dlq_topic(topic)])


async def test_a_worker_with_nothing_assigned_while_its_group_lags_is_not_ready(
    probe_db: str, producer: AIOKafkaProducer
) -> None:
    g = await gated(probe_db, "one", partitions=1)
    topic, group, run, conn, stalled = g.topic, g.group, g.run, g.conn, g.stalled
    first = metered_probe(probe_db, topic, group)
    second = metered_probe(probe_db, topic, group)
    first.start()
    try:
        await eventually(
            lambda: readyz(first), lambda s: s[0] == 200, timeout=60, what="the first worker ready"
        )
        assert (await readyz(first))[1]["assigned_partitions"] == 1
        second.start()
        # one partition, two members: one of them has nothing; with no lag it is ready
        await eventually(
            lambda: readyz(second), lambda s: s[0] == 200, timeout=60, what="the second ready"
        )
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
        _, body = await eventually(
            lambda: readyz(idle),
            lambda s: s[0] == 503,
            timeout=10,
            what="readyz 503 on the idle worker",
        )
        assert time.monotonic() - t0 < 5
        assert body["reason"] == "no partitions assigned while the group's topics have lag"
        assert body["group_lag"] >= 4, body
        assert (await readyz(busy))[0] == 200  # it has its partition: it is not the stall
        await conn.execute("DELETE FROM probe.gate WHERE subject = $1", stalled)
        await eventually(
            lambda: applied_in_order(probe_db, f"s-{run}-"),
            lambda r: len(r) == 3,
            timeout=30,
            what="applied",
        )
        await eventually(
            lambda: readyz(idle),
            lambda s: s[0] == 200,
            timeout=15,
            what="readyz 200 after catch-up",
        )
    finally:
        await conn.close()
        for w in (first, second):
            w.kill(signal.SIGTERM)
        await delete_topics([topic, dlq_topic(topic)])


async def test_a_message_retried_on_one_partition_does_not_delay_another_partition(
    probe_db: str, producer: AIOKafkaProducer
) -> None:
    g = await gated(probe_db, "lanes", partitions=3)
    topic, group, run, conn, stalled = g.topic, g.group, g.run, g.conn, g.stalled
    worker = metered_probe(probe_db, topic, group)
    worker.start()
    try:
        await eventually(
            lambda: readyz(worker), lambda s: s[0] == 200, timeout=60, what="the worker ready"
        )
        # partition 0: the stalled event, then one behind it (same partition: must wait)
        await send(producer, topic, stalled, partition=0)
        await send(producer, topic, f"s-{run}-p0-after", partition=0)
        await eventually(
            lambda: conn.fetchval(
                "SELECT count(*) FROM probe.applied WHERE subject LIKE $1", f"s-{run}-%"
            ),
            lambda n: n == 0,
            timeout=1,
            what="nothing yet",
        )
        await asyncio.sleep(1.0)  # the stalled event is being retried by now
        sent_at = time.time()
        t0 = time.monotonic()
        for i in range(5):
            await send(producer, topic, f"s-{run}-p1-{i}", partition=1)
        rows = await eventually(
            lambda: applied_in_order(probe_db, f"s-{run}-p1-"),
            lambda r: len(r) == 5,
            timeout=5,
            what="partition 1's events applied while partition 0 retries",
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
        rows = await eventually(
            lambda: applied_in_order(probe_db, stalled),
            lambda r: len(r) == 1,
            timeout=15,
            what="the stalled event applied once the gate opens",
        )
        rows = await eventually(
            lambda: applied_in_order(probe_db, f"s-{run}-p0-"),
            lambda r: len(r) == 1,
            timeout=15,
            what="the event behind it",
        )
        stalled_at = (await applied_in_order(probe_db, stalled))[0][1]
        assert stalled_at <= rows[0][1]
        await eventually(
            lambda: committed_offsets(group, topic),
            lambda o: o.get(0) == 2,
            timeout=10,
            what="partition 0 committed after both",
        )
        print(f"\npartition 1 applied {took:.2f} s after sending while partition 0 retried")
    finally:
        await conn.close()
        worker.kill(signal.SIGTERM)
        await delete_topics([topic, dlq_topic(topic)])


async def test_a_lane_paused_behind_a_retried_event_loses_nothing_when_it_resumes(
    probe_db: str, producer: AIOKafkaProducer
) -> None:
    """A partition whose lane backs up past LANE_PAUSE is paused at the fetcher. faust
    then drops the records of that partition it had already fetched (they are not in its
    active set any more), and on resume it takes the jump in offsets for a gap it treats
    as acked: without a seek back, those records were never applied and the partition's
    offset was committed past them."""
    g = await gated(probe_db, "pause", partitions=1)
    topic, group, run, conn, stalled = g.topic, g.group, g.run, g.conn, g.stalled
    total = LANE_PAUSE * 4
    worker = metered_probe(probe_db, topic, group)
    worker.start()
    try:
        await eventually(
            lambda: readyz(worker), lambda s: s[0] == 200, timeout=60, what="the worker ready"
        )
        await send(producer, topic, stalled)
        batch = [checkin_event(f"s-{run}-{i:04d}") for i in range(total)]
        for e in batch:
            await producer.send(topic, e.to_bytes(), key=e.key.encode(), partition=0)
        await producer.flush()
        await eventually(
            lambda: asyncio.sleep(0.2, worker.logs()),
            lambda logs: "lane_paused" in logs,
            timeout=30,
            what="the lane paused behind the retried event",
        )
        await conn.execute("DELETE FROM probe.gate WHERE subject = $1", stalled)
        await eventually(
            lambda: committed_offsets(group, topic),
            lambda o: o.get(0) == total + 1,
            timeout=60,
            what="everything committed",
        )
        rows = await applied_in_order(probe_db, f"s-{run}-")
        assert [s for s, _ in rows] == [f"s-{run}-{i:04d}" for i in range(total)], (
            f"{len(rows)} of {total} applied, in order"
        )
        assert "lane_resumed" in worker.logs()
    finally:
        await conn.close()
        worker.kill(signal.SIGTERM)
        await delete_topics([topic, dlq_topic(topic)])
