"""The event plumbing on the real broker: faust workers, dead letters, the relay's crash window."""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from shared import db
from shared.events import CloudEvent, dlq_topic
from shared.kafka import ensure_topics, round_trip
from shared.processing import EventProcessor, Message, Route
from shared.settings import CommonSettings
from tests.support import probe_worker
from tests.support.eventually import eventually
from tests.support.probes import checkin_event, probe, read_topic
from tests.support.stack import (
    KAFKA,
    EventLog,
    IntakeStack,
    delete_topics,
)
from tools.factories import intake_body

pytestmark = pytest.mark.integration


async def applied(dsn: str, prefix: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT subject FROM probe.applied WHERE subject LIKE $1", prefix + "%"
        )
        return [r["subject"] for r in rows]
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()


async def committed(group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic)
    finally:
        await admin.close()


@pytest.fixture
async def producer() -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all")
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def probe_topic() -> AsyncIterator[str]:
    topic = f"test.probe.{uuid.uuid4().hex[:8]}"
    await ensure_topics([KAFKA], [topic, dlq_topic(topic)], partitions=3)
    yield topic
    await delete_topics([topic, dlq_topic(topic)])


async def test_aiokafka_round_trip_on_the_real_broker() -> None:
    await round_trip([KAFKA], timeout=30)


async def test_faust_worker_consumes_in_a_group_and_resumes_after_restart(
    database: str, producer: AIOKafkaProducer, probe_topic: str
) -> None:
    group = f"probe-{uuid.uuid4().hex[:8]}"
    run = uuid.uuid4().hex[:6]
    worker = probe(database, probe_topic, group)
    worker.start()
    try:
        for i in range(10):
            e = checkin_event(f"s-{run}-a{i}")
            await producer.send_and_wait(probe_topic, e.to_bytes(), key=e.key.encode())

        async def count() -> int:
            return len(await applied(database, f"s-{run}-"))

        await wait_async(count, 10, timeout=60)
        worker.kill(signal.SIGTERM)  # graceful: offsets are committed on the way out
        assert await committed(group, probe_topic) == 10

        for i in range(10):
            e = checkin_event(f"s-{run}-b{i}")
            await producer.send_and_wait(probe_topic, e.to_bytes(), key=e.key.encode())
        worker.start()
        await wait_async(count, 20, timeout=60)
        await wait_committed(group, probe_topic, 20)

        # kill -9 mid-stream: whatever was not committed is redelivered, applied once.
        for i in range(10):
            e = checkin_event(f"s-{run}-c{i}")
            await producer.send_and_wait(probe_topic, e.to_bytes(), key=e.key.encode())
        await wait_async(count, 30, timeout=60)
        worker.kill(signal.SIGKILL)
        worker.start()
        for i in range(5):
            e = checkin_event(f"s-{run}-d{i}")
            await producer.send_and_wait(probe_topic, e.to_bytes(), key=e.key.encode())
        await wait_async(count, 35, timeout=60)
        subjects = await applied(database, f"s-{run}-")
        assert len(subjects) == len(set(subjects)) == 35
    finally:
        worker.kill(signal.SIGTERM)


async def test_poison_messages_are_dead_lettered_with_a_reason_and_the_consumer_keeps_going(
    database: str, producer: AIOKafkaProducer, probe_topic: str, event_log: EventLog
) -> None:
    group = f"probe-{uuid.uuid4().hex[:8]}"
    run = uuid.uuid4().hex[:6]
    good = checkin_event(f"s-{run}-good")
    wrong_type = good.model_copy(update={"id": str(uuid.uuid4()), "type": "intake.screened"})
    bad_payload = good.model_copy(update={"id": str(uuid.uuid4()), "data": {"phq9_total": 99}})
    rejected = checkin_event(f"reject-{run}")
    poison = [
        b"this is not json",
        b'{"specversion": "1.0"}',
        wrong_type.to_bytes(),
        bad_payload.to_bytes(),
        rejected.to_bytes(),
    ]
    key = f"s-{run}".encode()
    # as relays before issue 17 sent them: a ce_id header beside the structured event
    old_relay = [("content-type", b"application/cloudevents+json"), ("ce_id", b"old-relay")]
    for raw in poison:
        await producer.send_and_wait(probe_topic, raw, key=key, headers=old_relay)
    await producer.send_and_wait(probe_topic, good.to_bytes(), key=key)
    worker = probe(database, probe_topic, group)
    worker.start()
    try:

        async def count() -> int:
            return len(await applied(database, f"s-{run}-good"))

        await wait_async(count, 1, timeout=60)
        dlq = dlq_topic(probe_topic)
        consumer_records = await read_topic(dlq, expected=5)
        reasons = sorted(r.headers["dlq.reason"].decode() for r in consumer_records)
        assert reasons == sorted(
            [
                "invalid_cloudevent",
                "invalid_cloudevent",
                "unexpected_type",
                "invalid_payload",
                "rejected",
            ]
        )
        for r in consumer_records:
            assert r.headers["dlq.origin.topic"].decode() == probe_topic
            assert r.headers["dlq.consumer.group"].decode() == group
            assert r.value in poison
            # structured mode: a ce_ header would make a CloudEvents reader read binary mode
            assert r.headers["content-type"] == b"application/cloudevents+json"
            assert not [h for h in r.headers if h.lower().startswith("ce_")], r.headers
    finally:
        worker.kill(signal.SIGTERM)


async def test_relay_killed_between_produce_and_commit_republishes_and_consumer_applies_once(
    intake: IntakeStack, event_log: EventLog, database: str
) -> None:
    intake.relay.kill(signal.SIGTERM)
    body = intake_body()
    pid = body["patient"]["patient_id"]
    async with httpx.AsyncClient(base_url=intake.url) as http:
        assert (await http.post("/v1/intakes", json=body)).status_code == 201

    def published() -> list[bytes]:
        return [r.value for r in event_log.on("intake.screened") if r.key == pid.encode()]

    # Hold the outbox row's lock: the relay can read and publish it but not mark it.
    blocker, watcher = await asyncpg.connect(intake.dsn), await asyncpg.connect(intake.dsn)
    tx = blocker.transaction()
    try:
        await tx.start()
        await blocker.fetch("SELECT id FROM intake.outbox WHERE key = $1 FOR UPDATE", pid)
        intake.relay.start()
        await eventually(lambda: len(published()) == 1, timeout=30, what="first publication")
        intake.relay.kill(signal.SIGKILL)  # dies before it could mark the row published
        # Its database sessions die with it. A backend already blocked on our lock
        # would not notice the dead client until the lock is released, then commit
        # the mark: end every lane's (shared/relay.py names them relay-<schema>-<lane>)
        # and wait until none is left (one that had not sent its UPDATE yet ends by
        # itself when it reads the closed socket). Watched from a session of its own:
        # pg_stat_activity is read once per transaction, and the blocker's stays open.
        await eventually(
            lambda: watcher.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name LIKE 'relay-intake-%' "
                "AND datname = current_database()"
            ),
            lambda n: n == 0,
            timeout=10,
            what="the killed relay's sessions to end",
        )
    finally:
        await tx.rollback()
        await blocker.close()
        await watcher.close()
        if intake.relay.proc is None or intake.relay.proc.poll() is not None:
            intake.relay.start()  # the session's stack, for the tests after this one
    await eventually(lambda: len(published()) == 2, timeout=30, what="re-publication")
    first, second = (CloudEvent.from_bytes(v) for v in published())
    assert first.id == second.id

    settings = CommonSettings(database_url=database, kafka_bootstrap_servers=KAFKA)
    await db.migrate(database, probe_worker.SCHEMA, db.migration_files(probe_worker.MIGRATIONS))
    proc = EventProcessor(
        settings=settings,
        schema=probe_worker.SCHEMA,
        group="relay-test",
        routes=[Route(topic="intake.screened", handler=probe_worker.record)],
    )
    try:
        outcomes = [
            await proc.process(Message("intake.screened", 0, i, pid.encode(), v, {}))
            for i, v in enumerate(published())
        ]
    finally:
        await proc.stop()
    assert outcomes == ["applied", "duplicate"]
    assert await applied(database, pid) == [pid]


# --- helpers -------------------------------------------------------------------


async def wait_async(fetch: Callable[[], Awaitable[int]], expected: int, timeout: float) -> None:
    last = await eventually(fetch, lambda n: n >= expected, timeout=timeout, what=f"{expected}")
    assert last == expected, f"applied {last}, expected {expected}"


async def wait_committed(group: str, topic: str, expected: int, timeout: float = 30) -> None:
    await eventually(
        lambda: committed(group, topic),
        lambda got: got >= expected,
        timeout=timeout,
        what=f"{expected} committed",
    )
