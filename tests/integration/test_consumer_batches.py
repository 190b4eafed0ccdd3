"""A partition's queued events applied together (shared/processing.py
``EventProcessor.process_batch``) on the real database and broker: one transaction for
what may share one, every event's outcome what it would have been alone, the partition's
order kept through poison, refusals and transient failures.

The processor is the probe worker's (tests/support/probe_worker.py): it records each
applied event with its transaction id, refuses ``reject-`` subjects, fails ``stall-``
subjects transiently while they have a row in ``probe.gate``, and lets every event but
``alone-`` ones share a transaction."""

from __future__ import annotations

import asyncio
import random
import string
import uuid
from collections.abc import AsyncIterator

import asyncpg
import orjson
import pytest
from prometheus_client import REGISTRY

from shared import db
from shared.events import CloudEvent, dlq_topic
from shared.kafka import ensure_topics
from shared.processing import EventProcessor, Message
from shared.settings import CommonSettings
from tests.support import probe_worker
from tests.support.eventually import eventually
from tests.support.probes import checkin_event, read_topic
from tests.support.stack import KAFKA, delete_topics

pytestmark = pytest.mark.integration


@pytest.fixture
async def topic() -> AsyncIterator[str]:
    name = f"test.batch.{uuid.uuid4().hex[:8]}"
    await ensure_topics([KAFKA], [name, dlq_topic(name)], partitions=1)
    yield name
    await delete_topics([name, dlq_topic(name)])


@pytest.fixture
async def processor(database: str, topic: str) -> AsyncIterator[EventProcessor]:
    await db.migrate(database, "probe", db.migration_files(probe_worker.MIGRATIONS))
    settings = CommonSettings(
        database_url=database,
        kafka_bootstrap_servers=KAFKA,
        consumer_retry_initial_s=0.05,
        consumer_retry_max_s=0.2,
    )
    p = probe_worker.processor(settings, topic, "checkin.recorded", f"batch-{uuid.uuid4().hex[:6]}")
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(database)
    yield c
    await c.close()


class Partition:
    """Messages of one partition, offsets counting up."""

    def __init__(self, topic: str) -> None:
        self.topic, self.offset = topic, 0

    def message(self, value: bytes | CloudEvent) -> Message:
        raw = value.to_bytes() if isinstance(value, CloudEvent) else value
        self.offset += 1
        return Message(self.topic, 0, self.offset, b"k", raw, {})


def retries(topic: str) -> float:
    return REGISTRY.get_sample_value("consumer_retries_total", {"topic": topic}) or 0.0


async def applied(conn: asyncpg.Connection, run: str) -> list[tuple[str, int]]:
    """(subject, transaction id) of what the run's events applied, in commit order."""
    rows = await conn.fetch(
        "SELECT subject, txid FROM probe.applied WHERE subject LIKE $1 ORDER BY seq", f"%{run}%"
    )
    return [(r["subject"], r["txid"]) for r in rows]


async def test_queued_events_share_one_transaction_and_keep_their_order(
    processor: EventProcessor, topic: str, conn: asyncpg.Connection
) -> None:
    run = uuid.uuid4().hex[:6]
    part = Partition(topic)
    subjects = [f"s{i}-{run}" for i in range(10)]
    outcomes = await processor.process_batch([part.message(checkin_event(s)) for s in subjects])
    assert outcomes == ["applied"] * 10
    rows = await applied(conn, run)
    assert [s for s, _ in rows] == subjects
    assert len({tx for _, tx in rows}) == 1, "the batch took more than one transaction"


async def test_a_redelivered_batch_and_an_event_twice_in_one_apply_once(
    processor: EventProcessor, topic: str, conn: asyncpg.Connection
) -> None:
    run = uuid.uuid4().hex[:6]
    part = Partition(topic)
    events = [checkin_event(f"s{i}-{run}") for i in range(4)]
    first = await processor.process_batch([part.message(e) for e in events])
    assert first == ["applied"] * 4
    # the relay published the batch again after a crash, and one event twice within it
    again = await processor.process_batch(
        [part.message(e) for e in [*events, events[0]]]
        + [part.message(checkin_event(f"new-{run}"))]
    )
    assert again == ["duplicate"] * 5 + ["applied"]
    twice = checkin_event(f"twice-{run}")
    assert await processor.process_batch([part.message(twice), part.message(twice)]) == [
        "applied",
        "duplicate",
    ]
    subjects = [s for s, _ in await applied(conn, run)]
    assert sorted(subjects) == sorted(
        [f"s{i}-{run}" for i in range(4)] + [f"new-{run}", f"twice-{run}"]
    )


async def test_poison_and_a_refused_event_are_dead_lettered_in_place_and_the_rest_applied(
    processor: EventProcessor, topic: str, conn: asyncpg.Connection
) -> None:
    run = uuid.uuid4().hex[:6]
    part = Partition(topic)
    refused = checkin_event(f"reject-{run}")
    batch = [
        part.message(checkin_event(f"a-{run}")),
        part.message(checkin_event(f"b-{run}")),
        part.message(b"this is not json"),
        part.message(checkin_event(f"c-{run}")),
        part.message(refused),
        part.message(checkin_event(f"d-{run}")),
    ]
    outcomes = await processor.process_batch(batch)
    assert outcomes == [
        "applied",
        "applied",
        "dead_lettered",
        "applied",
        "dead_lettered",
        "applied",
    ]
    rows = await applied(conn, run)
    assert [s for s, _ in rows] == [f"a-{run}", f"b-{run}", f"c-{run}", f"d-{run}"]
    # a and b together; c and d were split off the refused event's batch, alone
    assert rows[0][1] == rows[1][1]
    assert len({tx for _, tx in rows}) == 3
    records = await read_topic(dlq_topic(topic), expected=2)
    assert sorted(r.headers["dlq.reason"].decode() for r in records) == [
        "invalid_cloudevent",
        "rejected",
    ]


async def test_a_transient_failure_inside_a_batch_is_retried_in_its_place(
    processor: EventProcessor, topic: str, conn: asyncpg.Connection
) -> None:
    run = uuid.uuid4().hex[:6]
    stalled = f"stall-{run}"
    await conn.execute("INSERT INTO probe.gate (subject) VALUES ($1)", stalled)
    part = Partition(topic)
    subjects = [f"a-{run}", stalled, f"b-{run}", f"c-{run}"]
    before = retries(topic)
    task = asyncio.create_task(
        processor.process_batch([part.message(checkin_event(s)) for s in subjects])
    )
    # the batch rolled back; a went alone, and b and c wait behind the stalled event
    # while it is retried (three retries seen)
    await eventually(lambda: retries(topic), lambda n: n >= before + 3, what="3 retries")
    assert [s for s, _ in await applied(conn, run)] == [f"a-{run}"]
    assert not task.done()
    await conn.execute("DELETE FROM probe.gate WHERE subject = $1", stalled)
    assert await asyncio.wait_for(task, 10) == ["applied"] * 4
    assert [s for s, _ in await applied(conn, run)] == subjects


async def test_events_that_may_not_share_a_transaction_go_alone(
    processor: EventProcessor, topic: str, conn: asyncpg.Connection
) -> None:
    run = uuid.uuid4().hex[:6]
    part = Partition(topic)
    subjects = [f"a-{run}", f"b-{run}", f"alone-{run}", f"c-{run}", f"d-{run}"]
    outcomes = await processor.process_batch([part.message(checkin_event(s)) for s in subjects])
    assert outcomes == ["applied"] * 5
    rows = await applied(conn, run)
    assert [s for s, _ in rows] == subjects
    tx = [t for _, t in rows]
    assert tx[0] == tx[1]
    assert tx[3] == tx[4]
    assert len({tx[0], tx[2], tx[3]}) == 3


async def test_a_failure_outside_the_handler_is_retried_and_only_a_handler_bug_dead_letters(
    processor: EventProcessor, topic: str, conn: asyncpg.Connection
) -> None:
    """What fails around the handler (taking a connection, BEGIN, the inbox row, COMMIT)
    is never the message's fault: it waits until that is mended, here the inbox table
    renamed away from under the worker. A bug in the handler itself dead-letters."""
    run = uuid.uuid4().hex[:6]
    part = Partition(topic)
    kept = checkin_event(f"kept-{run}")
    before = retries(topic)
    await conn.execute("ALTER TABLE probe.inbox RENAME TO inbox_away")
    try:
        task = asyncio.create_task(processor.process(part.message(kept)))
        await eventually(
            lambda: asyncio.sleep(0.05, retries(topic)),
            lambda n: n >= before + 2,
            timeout=10,
            what="the event retried while the inbox is away",
        )
        assert not task.done()
    finally:
        await conn.execute("ALTER TABLE probe.inbox_away RENAME TO inbox")
    assert await asyncio.wait_for(task, 10) == "applied"
    assert [s for s, _ in await applied(conn, run)] == [f"kept-{run}"]

    crash = part.message(checkin_event(f"crash-{run}"))
    assert await processor.process(crash) == "dead_lettered"
    (record,) = await read_topic(dlq_topic(topic), expected=1)
    assert record.headers["dlq.reason"] == b"handler_error"
    assert b"RuntimeError" in record.headers["dlq.detail"]
    assert [s for s, _ in await applied(conn, run)] == [f"kept-{run}"]


async def test_an_ignored_event_writes_nothing_and_never_waits_on_its_handlers_locks(
    processor: EventProcessor, topic: str, conn: asyncpg.Connection
) -> None:
    """An event the service has nothing to do with (Route.ignore: a calm check-in for
    scheduling) costs no statement: while another transaction holds the table its handler
    writes to, and the inbox too, it is still taken at once; the handler never runs for
    it; a redelivery is ignored again; in a batch it does not split the others' one
    transaction, and its outcome keeps its place."""
    run = uuid.uuid4().hex[:6]
    part = Partition(topic)
    skipped = checkin_event(f"skip-{run}")
    async with conn.transaction():
        await conn.execute("LOCK TABLE probe.applied, probe.inbox IN EXCLUSIVE MODE")
        outcome = await asyncio.wait_for(processor.process(part.message(skipped)), 5)
        again = await asyncio.wait_for(processor.process(part.message(skipped)), 5)
    assert (outcome, again) == ("ignored", "ignored")
    assert not await conn.fetchval(
        "SELECT count(*) FROM probe.inbox WHERE event_id = $1", skipped.id
    )

    subjects = [f"a-{run}", f"skip-b-{run}", f"c-{run}", f"skip-d-{run}"]
    batch = [checkin_event(s) for s in subjects]
    outcomes = await processor.process_batch([part.message(e) for e in batch])
    assert outcomes == ["applied", "ignored", "applied", "ignored"]
    rows = await applied(conn, run)
    assert [s for s, _ in rows] == [f"a-{run}", f"c-{run}"]
    assert rows[0][1] == rows[1][1], "the batch took more than one transaction"
    seen = await conn.fetch(
        "SELECT event_id FROM probe.inbox WHERE event_id = ANY($1::text[])", [e.id for e in batch]
    )
    assert {r["event_id"] for r in seen} == {batch[0].id, batch[2].id}


async def test_an_ignore_predicate_that_raises_leaves_the_event_to_its_handler(
    processor: EventProcessor, topic: str, conn: asyncpg.Connection
) -> None:
    run = uuid.uuid4().hex[:6]
    part = Partition(topic)
    assert await processor.process(part.message(checkin_event(f"oops-{run}"))) == "applied"
    assert [s for s, _ in await applied(conn, run)] == [f"oops-{run}"]


@pytest.mark.parametrize(
    "bad_id",
    [
        "bad\u0000id",  # PostgreSQL's text holds no NUL character
        # text past what one btree index entry holds (about 2,700 bytes), random so that
        # PostgreSQL's compression cannot bring it under that; the same on every run
        "".join(random.Random(15).choices(string.ascii_letters + string.digits, k=4000)),
    ],
    ids=["nul", "too-long"],
)
async def test_an_event_id_the_database_cannot_store_is_dead_lettered_not_retried_forever(
    processor: EventProcessor, topic: str, conn: asyncpg.Connection, bad_id: str
) -> None:
    """A CloudEvent id the inbox cannot store (a NUL character; longer than an index
    entry can be) is the message's fault, not the database's: it is dead-lettered at
    once (in a batch too) and its partition goes on. Retried as if the database were
    away, it would hold the partition for good."""
    run = uuid.uuid4().hex[:6]
    part = Partition(topic)
    raw = orjson.loads(checkin_event(f"bad-{run}").to_bytes())
    raw["id"] = f"{bad_id}-{run}"
    poison = orjson.dumps(raw)
    outcome = await asyncio.wait_for(processor.process(part.message(poison)), 10)
    assert outcome == "dead_lettered"
    batch = [
        part.message(checkin_event(f"a-{run}")),
        part.message(poison),
        part.message(checkin_event(f"b-{run}")),
    ]
    outcomes = await asyncio.wait_for(processor.process_batch(batch), 10)
    assert outcomes == ["applied", "dead_lettered", "applied"]
    assert [s for s, _ in await applied(conn, run)] == [f"a-{run}", f"b-{run}"]
    records = await read_topic(dlq_topic(topic), expected=2)
    assert [r.headers["dlq.reason"].decode() for r in records] == ["invalid_cloudevent"] * 2
