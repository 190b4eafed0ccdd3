"""The relay under load, on the real database and broker (shared/relay.py): routine
events that arrive while a batch is out go in the next batch, at most one per
``linger_s``; an event arriving idle goes at once; the safety lane never waits, and a
routine write does not even wake it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import pytest

from shared import db, outbox
from shared.kafka import ensure_topics, idempotent_producer
from shared.relay import ROUTINE, OutboxRelay, RelayConfig
from tests.support import probe_worker
from tests.support.eventually import eventually
from tests.support.probes import checkin_event
from tools.stack import KAFKA, Space, create_space, drop_space

pytestmark = pytest.mark.integration

LINGER_S = 0.5


@dataclass
class Probe:
    dsn: str
    conn: asyncpg.Connection

    async def enqueue(self, *, priority: int = outbox.ROUTINE) -> str:
        event = checkin_event(f"p-{uuid.uuid4().hex[:8]}")
        await outbox.enqueue(self.conn, event, priority=priority)  # autocommit: one commit
        return event.id

    async def published(self, event_ids: list[str]) -> list[datetime]:
        rows = await self.conn.fetch(
            "SELECT event_id::text AS id, published_at FROM outbox_published "
            "WHERE event_id = ANY($1::uuid[])",
            event_ids,
        )
        at = {r["id"]: r["published_at"] for r in rows}
        assert all(at.get(i) for i in event_ids), "not all published yet"
        return [at[i] for i in event_ids]

    async def when_published(self, event_ids: list[str]) -> list[datetime]:
        async def check() -> list[datetime] | None:
            try:
                return await self.published(event_ids)
            except AssertionError:
                return None

        got: list[datetime] = await eventually(check, what=f"{len(event_ids)} published")
        return got


@contextlib.asynccontextmanager
async def migrated_space(
    name: str, files: list[tuple[str, str]] | None = None
) -> AsyncIterator[tuple[Space, asyncpg.Connection]]:
    """A database of its own with the probe worker's migrations (``files``: only these),
    and a connection to it: (the space, the connection)."""
    space = await create_space(name)
    try:
        await db.migrate(
            space.dsn,
            probe_worker.SCHEMA,
            db.migration_files(probe_worker.MIGRATIONS) if files is None else files,
        )
        conn = await asyncpg.connect(space.dsn, **db.connect_kwargs(space.dsn, probe_worker.SCHEMA))
        try:
            yield space, conn
        finally:
            await conn.close()
    finally:
        await drop_space(space)


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    async with migrated_space("relay") as (space, conn):
        await ensure_topics([KAFKA], [space.prefix + "checkin.recorded"])
        config = RelayConfig(
            dsn=space.dsn, schema=probe_worker.SCHEMA, topic_prefix=space.prefix, linger_s=LINGER_S
        )
        producers = [idempotent_producer([KAFKA], f"relay-test-{lane}") for lane in ("r", "s")]
        for p in producers:
            await p.start()
        relay = OutboxRelay(config, producers[0], urgent_producer=producers[1])
        task = asyncio.create_task(relay.run())
        try:
            yield Probe(space.dsn, conn)
        finally:
            relay.stop()
            await task
            for p in producers:
                await p.stop()


async def test_events_arriving_while_busy_go_together_after_the_linger(probe: Probe) -> None:
    (first,) = await probe.when_published([await probe.enqueue()])
    later = [await probe.enqueue() for _ in range(5)]  # five commits, right after a batch
    times = await probe.when_published(later)
    assert (min(times) - first).total_seconds() >= LINGER_S * 0.9, "the batch did not wait"
    spread = (max(times) - min(times)).total_seconds()
    assert spread < 0.1, f"five events in {spread:.3f} s: not one batch"


async def test_an_event_arriving_idle_goes_at_once(probe: Probe) -> None:
    await probe.when_published([await probe.enqueue()])
    await asyncio.sleep(LINGER_S * 1.5)  # idle: longer than the linger since the last batch
    t0 = asyncio.get_running_loop().time()
    await probe.when_published([await probe.enqueue()])
    assert asyncio.get_running_loop().time() - t0 < LINGER_S * 0.6


async def test_the_safety_lane_never_waits_for_the_linger(probe: Probe) -> None:
    # the safety lane's producer has sent to this new topic once (its first send may meet
    # a partition whose leader the broker is still announcing: NotLeaderForPartition and
    # a retry, seen in fresh-clone CI, which is not what this test measures)
    await probe.when_published([await probe.enqueue(priority=outbox.SAFETY)])
    await probe.when_published([await probe.enqueue()])  # the routine lane is now busy
    t0 = asyncio.get_running_loop().time()
    await probe.enqueue()  # routine, lingering
    await probe.when_published([await probe.enqueue(priority=outbox.SAFETY)])
    assert asyncio.get_running_loop().time() - t0 < LINGER_S * 0.6


async def test_a_routine_write_notifies_the_routine_lane_only(probe: Probe) -> None:
    """A routine write notifies '<schema>_outbox' only, so the safety lane's session,
    listening on '<schema>_outbox_safety', is never woken by one; a safety-lane write
    notifies both (the routine payload 'safety' too, for a relay from before the
    migration, whose safety lane still listens on '<schema>_outbox')."""
    got: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    listener = await asyncpg.connect(probe.dsn)
    try:
        for channel in ("_outbox", "_outbox_safety"):
            await listener.add_listener(
                f"{probe_worker.SCHEMA}{channel}",
                lambda _c, _p, ch, payload: got.put_nowait((ch, payload)),
            )
        await probe.enqueue()
        await probe.enqueue(priority=outbox.SAFETY)
        await probe.enqueue()  # delivered after the safety write's two: nothing between
        seen = [await asyncio.wait_for(got.get(), 10) for _ in range(4)]
        routine, safety = f"{probe_worker.SCHEMA}_outbox", f"{probe_worker.SCHEMA}_outbox_safety"
        assert seen[0] == (routine, "routine")
        assert sorted(seen[1:3]) == [(routine, "safety"), (safety, "")]
        assert seen[3] == (routine, "routine")
    finally:
        await listener.close()


async def test_a_relay_without_a_safety_lane_publishes_every_row_from_one_session() -> None:
    """Scheduling's and alerts' relays (RelayConfig.safety_lane False): one lane on one
    database session, so one listener fewer signalled at every NOTIFY of the database.
    A safety-lane row, which neither service writes, is published all the same, and a
    write wakes the lane at once (the poll here is 30 s)."""
    async with migrated_space("relay-one-lane") as (space, conn):
        await ensure_topics([KAFKA], [space.prefix + "checkin.recorded"])
        probe = Probe(space.dsn, conn)
        waiting = [await probe.enqueue() for _ in range(3)]
        waiting.append(await probe.enqueue(priority=outbox.SAFETY))
        config = RelayConfig(
            dsn=space.dsn,
            schema=probe_worker.SCHEMA,
            topic_prefix=space.prefix,
            poll_interval_s=30,
            safety_lane=False,
        )
        producer = idempotent_producer([KAFKA], "relay-test-one-lane")
        await producer.start()
        relay = OutboxRelay(config, producer)
        task = asyncio.create_task(relay.run())
        try:
            await probe.when_published(waiting)
            sessions = await conn.fetch(
                "SELECT application_name FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE 'relay-%'"
            )
            assert [r["application_name"] for r in sessions] == [
                f"relay-{probe_worker.SCHEMA}-leader"
            ]
            for priority in (outbox.ROUTINE, outbox.SAFETY):
                t0 = asyncio.get_running_loop().time()
                await probe.when_published([await probe.enqueue(priority=priority)])
                assert asyncio.get_running_loop().time() - t0 < 5, "not woken by the write"
        finally:
            relay.stop()
            await task
            await producer.stop()


async def test_a_relay_stopped_before_its_safety_lane_connected_stops() -> None:
    """Stopped while its safety lane is still connecting (a SIGTERM right after a start):
    the routine lane waits for the safety lane's first pass, which never comes, and must
    not wait for ever (it did: the shutdown hung)."""
    connecting = asyncio.Event()

    class SlowSafetyLane(OutboxRelay):
        async def _connect(self, lane: str) -> asyncpg.Connection:
            if lane == "safety":
                connecting.set()
                await self._stopping.wait()  # still connecting when the relay is stopped
            return await super()._connect(lane)

    async with migrated_space("relay") as (space, _):
        config = RelayConfig(dsn=space.dsn, schema=probe_worker.SCHEMA, topic_prefix=space.prefix)
        producer = idempotent_producer([KAFKA], "relay-test-stop")
        await producer.start()
        relay = SlowSafetyLane(config, producer)
        task = asyncio.create_task(relay.run())
        try:
            await asyncio.wait_for(connecting.wait(), 10)
            relay.stop()
            await asyncio.wait_for(task, 10)
        finally:
            task.cancel()
            await producer.stop()


async def test_the_routine_fetch_reads_only_unpublished_rows_however_many_were_published() -> None:
    """The routine lane's fetch (shared/relay.py ROUTINE) walks its own partial index in id
    order and stops at its batch. Through the older index of every unpublished row, whose
    entries for published rows stay until a vacuum, the planner chose a bitmap scan that
    visited every row published since the last vacuum, on every fetch: 2-6 ms a fetch
    after a minute of load (docs/performance.md)."""
    async with migrated_space("fetch") as (_, conn):
        await conn.execute(
            "INSERT INTO outbox (event_id, topic, key, value) "
            "SELECT gen_random_uuid(), 'checkin.recorded', 'k', '\\x00' "
            "FROM generate_series(1, 20000)"
        )
        # published as the relay does, by delete: their entries stay in the indexes
        # until a vacuum (as they did when it marked them published in place)
        await conn.execute("DELETE FROM outbox WHERE id <= 19990")
        await conn.execute("ANALYZE outbox")
        await conn.execute("SET plan_cache_mode = force_generic_plan")  # as prepared
        await conn.execute(f"PREPARE routine(int) AS {ROUTINE}")
        for _ in range(2):  # the first pass marks the dead entries it meets
            (plan,) = json.loads(
                await conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE routine(200)")
            )
        top = plan["Plan"]
        scan = top["Plans"][0]
        assert (scan["Node Type"], scan.get("Index Name")) == (
            "Index Scan",
            "outbox_unpublished_routine",
        ), plan
        assert top["Actual Rows"] == 10
        assert top["Shared Hit Blocks"] + top.get("Shared Read Blocks", 0) < 100, plan


async def test_a_published_event_leaves_the_outbox_and_a_record_of_it_stays(probe: Probe) -> None:
    """Once acknowledged, an event's row leaves the outbox (which holds only what is still
    to be published) and a record of it (ids, topic, key, lane, when written and when
    published; not the event, which is on Kafka) stays in ``outbox_published``."""
    routine = await probe.enqueue()
    urgent = await probe.enqueue(priority=outbox.SAFETY)
    await probe.when_published([routine, urgent])
    ids = [routine, urgent]
    assert (
        await probe.conn.fetchval(
            "SELECT count(*) FROM outbox WHERE event_id = ANY($1::uuid[])", ids
        )
        == 0
    )
    records = {
        r["event_id"]: r
        for r in await probe.conn.fetch(
            "SELECT event_id::text, topic, key, priority, created_at, published_at "
            "FROM outbox_published WHERE event_id = ANY($1::uuid[])",
            ids,
        )
    }
    assert set(records) == set(ids)
    assert (records[routine]["priority"], records[urgent]["priority"]) == (
        outbox.ROUTINE,
        outbox.SAFETY,
    )
    for r in records.values():
        assert r["topic"] == "checkin.recorded"
        assert r["key"].startswith("p-")
        assert r["created_at"] <= r["published_at"]
    # the view of every event written, published or not: each once
    assert (
        await probe.conn.fetchval(
            "SELECT count(*) FROM outbox_events WHERE event_id = ANY($1::uuid[])", ids
        )
        == 2
    )


async def test_records_of_published_events_are_kept_for_the_retention_and_no_longer() -> None:
    """The relay's first idle pass after its start deletes records older than the
    retention (7 days by default), and only those."""
    async with migrated_space("retention") as (space, conn):
        await conn.execute(
            "INSERT INTO outbox_published "
            "(id, event_id, topic, key, priority, created_at, published_at) "
            "SELECT g, gen_random_uuid(), 'checkin.recorded', 'k', 0, t, t FROM "
            "generate_series(1, 4) g, LATERAL (SELECT now() - make_interval(days => g * 3)) x(t)"
        )  # published 3, 6, 9 and 12 days ago
        producer = idempotent_producer([KAFKA], "relay-test-retention")
        await producer.start()
        relay = OutboxRelay(RelayConfig(dsn=space.dsn, schema=probe_worker.SCHEMA), producer)
        task = asyncio.create_task(relay.run())
        try:
            kept = await eventually(
                lambda: conn.fetch("SELECT id FROM outbox_published ORDER BY id"),
                lambda rows: len(rows) < 4,
                what="the old records deleted",
            )
        finally:
            relay.stop()
            await task
            await producer.stop()
    assert [r["id"] for r in kept] == [1, 2]


async def test_the_migration_moves_rows_published_before_it_to_the_record() -> None:
    """A database whose relay marked rows published in place: the migration moves those
    to ``outbox_published`` (published time kept) and leaves the unpublished ones to be
    published."""
    files = db.migration_files(probe_worker.MIGRATIONS)
    before = [f for f in files if f[0] != "0000_outbox_published"]
    assert len(before) == len(files) - 1
    async with migrated_space("migrate", before) as (space, conn):
        await conn.execute(
            "INSERT INTO outbox (event_id, topic, key, value, priority, published_at) "
            "SELECT gen_random_uuid(), 'checkin.recorded', 'k' || g, '\\x00', g % 2, "
            "CASE WHEN g <= 3 THEN now() - make_interval(hours => g) END "
            "FROM generate_series(1, 5) g"
        )
        marked = await conn.fetch(
            "SELECT event_id, published_at FROM outbox WHERE published_at IS NOT NULL"
        )
        await db.migrate(space.dsn, probe_worker.SCHEMA, files)
        left = await conn.fetch("SELECT key, published_at FROM outbox ORDER BY id")
        moved = await conn.fetch("SELECT event_id, published_at, priority FROM outbox_published")
    assert [(r["key"], r["published_at"]) for r in left] == [("k4", None), ("k5", None)]
    assert {(r["event_id"], r["published_at"]) for r in moved} == {
        (r["event_id"], r["published_at"]) for r in marked
    }
    assert len(moved) == 3
    assert {r["priority"] for r in moved} == {0, 1}
