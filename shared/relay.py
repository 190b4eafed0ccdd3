"""The outbox relay: publishes a service's outbox to Kafka.

Delivery guarantee: at least once, in order per patient. The relay publishes
unpublished rows in id order (in two lanes: the safety lane's rows, and the routine
rest; see URGENT below) with an idempotent acks=all producer, and takes them out
of the outbox (a record of each stays in ``outbox_published`` for 7 days) only
after the broker acknowledged them; a crash in between re-publishes (same event
id), which consumers drop through their inbox. One relay per service publishes
at a time (a PostgreSQL advisory lock elects it), which keeps the per-patient
order even when several instances run; the others wait as hot standbys. It is
woken by LISTEN/NOTIFY on commit, with a slow poll as the safety net, and
survives database and broker outages by retrying.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import signal
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge, start_http_server

from shared import db, devclock
from shared.db import DATABASE_ERRORS, Conn, connect_kwargs
from shared.events import TOPICS, kafka_headers
from shared.heap import freeze_startup
from shared.kafka import idempotent_producer, send_in_order
from shared.logging import get_logger
from shared.retry import Backoff, pause, until_done
from shared.settings import CommonSettings

log = get_logger(__name__)

# every relayed message's headers (structured mode, shared/events.py kafka_headers)
_HEADERS = kafka_headers()

PUBLISHED = Counter("outbox_published_total", "Events published by the outbox relay", ["topic"])
RELAY_LEADER = Gauge("outbox_relay_leader", "1 when this relay holds the publishing lock")
PRODUCERS_REPLACED = Counter(
    "outbox_relay_producers_replaced_total",
    "Kafka producers the relay replaced after a non-retriable error (e.g. OutOfOrderSequence)",
)


# Two lanes, each with its own database connection and its own Kafka producer (so its
# own broker connection): the safety lane (shared/outbox.py SAFETY, priority > 0) never
# waits behind a routine batch in flight, at the database or at the broker. Topics of
# the two lanes are disjoint (the safety lane has its own), so the order per key holds.
URGENT = (
    "SELECT id, topic, key, value FROM outbox WHERE published_at IS NULL "
    "AND priority > 0 ORDER BY priority DESC, id LIMIT $1"
)
ROUTINE = (
    "SELECT id, topic, key, value FROM outbox WHERE published_at IS NULL "
    "AND priority = 0 ORDER BY id LIMIT $1"
)
# The one lane of a relay without a safety lane (RelayConfig.safety_lane): every row,
# safety-lane rows first should one ever be written: the two lanes' fetches one after
# the other, each on its own partial index, which the append returns in this order (an
# ORDER BY priority DESC, id over the whole outbox has no index to walk, so it would
# sort every unpublished row).
EVERY = f"({URGENT}) UNION ALL ({ROUTINE}) LIMIT $1"

# A published round leaves the outbox, and a narrow record of each of its events (not
# the event: that is on Kafka) goes to outbox_published, in one statement: deleting a
# row writes a few bytes, where marking it published in place wrote a new version of
# the whole row and its index entries (shared/migrations/0000_outbox_published.sql).
_PUBLISHED = """
    WITH gone AS (
        DELETE FROM outbox WHERE id = ANY($1::bigint[])
        RETURNING id, event_id, topic, key, priority, created_at
    )
    INSERT INTO outbox_published (id, event_id, topic, key, priority, created_at, published_at)
    SELECT id, event_id, topic, key, priority, created_at, clock_timestamp() FROM gone
"""


def _leader_key(schema: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"relay:{schema}".encode()).digest()[:8], "big", signed=True
    )


@dataclass
class RelayConfig:
    dsn: str
    schema: str
    batch_size: int = 200
    poll_interval_s: float = 5.0
    retention_days: int = 7
    topic_prefix: str = ""
    retry_initial_s: float = 0.5
    retry_max_s: float = 5.0
    # The routine lane's batching under load: when its last batch ended less than this
    # long ago, it waits this long before the next one, so one fetch, one produce
    # request per partition and one update carry what arrived meanwhile rather than one
    # event each. Idle (the last batch longer ago), an event goes out at once. The
    # safety lane never waits.
    linger_s: float = 0.02
    # Whether the service writes safety-lane rows (shared/outbox.py SAFETY; only intake
    # does). Without, the relay runs one lane that publishes every row: one database
    # session and one producer fewer, and above all one listener fewer. PostgreSQL 15
    # signals every listening session of the database at each NOTIFY whatever its
    # channel, ~30 us of its CPU per listener per notification (docs/performance.md), and
    # an idle safety lane of scheduling or alerts was signalled for every check-in and
    # intake of the whole stack to wait for rows its service never writes.
    safety_lane: bool = True


@dataclass
class _Lane:
    name: str
    query: str
    producer: AIOKafkaProducer
    # the outbox's NOTIFY channel this lane listens on, after the schema: the safety
    # lane's is notified only by statements that wrote a safety-lane row, so no routine
    # write's notification is sent to it (shared/migrations/0000_outbox_wake_safety_channel.sql)
    channel: str = "_outbox"
    # under load, wait this long before a batch so that it carries more events
    linger_s: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def notified(self, _conn: object, _pid: int, _channel: str, _payload: object) -> None:
        self.wake.set()


class OutboxRelay:
    """Publishes a service's outbox to Kafka (see the module docstring for guarantees)."""

    def __init__(
        self,
        config: RelayConfig,
        producer: AIOKafkaProducer,
        new_producer: Callable[[str], AIOKafkaProducer] | None = None,
        urgent_producer: AIOKafkaProducer | None = None,
    ) -> None:
        self.config = config
        if config.safety_lane:
            self.lanes: tuple[_Lane, ...] = (
                _Lane("safety", URGENT, urgent_producer or producer, channel="_outbox_safety"),
                _Lane("routine", ROUTINE, producer, linger_s=config.linger_s),
            )
        else:
            self.lanes = (_Lane("routine", EVERY, producer, linger_s=config.linger_s),)
        # makes a fresh producer for a lane (by name) when its own is broken for good
        # (see _replace_producer)
        self.new_producer = new_producer
        self._stopping = asyncio.Event()
        self._last_cleanup: float | None = None  # the first idle pass cleans up

    @property
    def producers(self) -> list[AIOKafkaProducer]:
        """The producers in use (replaced ones after a fatal error), each once."""
        return list({id(lane.producer): lane.producer for lane in self.lanes}.values())

    async def run(self) -> None:
        """Run until ``stop``; survives database and broker outages by retrying."""
        backoff = Backoff(self.config.retry_initial_s, self.config.retry_max_s)
        while not self._stopping.is_set():
            try:
                await self._run_once()
                backoff.reset()
            except (*DATABASE_ERRORS, KafkaError) as exc:
                delay = backoff.delay()
                log.warning("outbox_relay_retry", error=repr(exc), retry_in_s=delay)
                RELAY_LEADER.set(0)
                await pause(delay, self._stopping)

    def stop(self) -> None:
        self._stopping.set()
        for lane in self.lanes:
            lane.wake.set()

    async def _replace_producer(self, lane: _Lane, cause: KafkaError) -> None:
        """A non-retriable error leaves an idempotent producer broken for good: after a
        broker restart the broker may no longer know its producer id and answers every
        send with OutOfOrderSequenceNumber (aiokafka does not reset the sequence, KIP-360),
        so the same producer would retry forever and nothing would be published again.
        A new producer (a new producer id) starts its sequences afresh. Rows still
        leave the outbox only after their acknowledgement: a batch that did land under
        the old producer is sent again, with the same event ids, and consumers drop the
        repeat."""
        if self.new_producer is None:
            return
        old = lane.producer
        with contextlib.suppress(Exception):
            await asyncio.wait_for(old.stop(), 5)
        fresh = self.new_producer(lane.name)
        try:
            await fresh.start()
        except KafkaError as exc:
            with contextlib.suppress(Exception):
                await fresh.stop()
            log.warning("outbox_relay_producer_not_replaced", lane=lane.name, error=repr(exc))
            # the stopped one stays: its next send fails (retriable) and we come back here
            return
        for other in self.lanes:  # one producer shared by both lanes is replaced for both
            if other.producer is old:
                other.producer = fresh
        PRODUCERS_REPLACED.inc()
        log.warning("outbox_relay_producer_replaced", lane=lane.name, cause=repr(cause))

    async def _connect(self, lane: str) -> asyncpg.Connection:
        options = connect_kwargs(self.config.dsn, self.config.schema)
        options["server_settings"]["application_name"] = f"relay-{self.config.schema}-{lane}"
        return await asyncpg.connect(self.config.dsn, **options)

    async def _run_once(self) -> None:
        conn = await self._connect("leader")
        try:
            # Block (politely) until we are the one relay of this service that publishes.
            while not await conn.fetchval(
                "SELECT pg_try_advisory_lock($1)", _leader_key(self.config.schema)
            ):
                if self._stopping.is_set():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.config.poll_interval_s)
            RELAY_LEADER.set(1)
            log.info("outbox_relay_leader", schema=self.config.schema)
            # The routine lane publishes on the connection that holds the lock (a lost
            # connection is lost leadership); the safety lane on a connection of its own.
            # The routine lane starts once the safety lane has published what was waiting
            # (after an outage or a takeover the signals go out before the backlog).
            first_pass = asyncio.Event()
            if self.config.safety_lane:
                safety, routine = self.lanes
                tasks = [
                    asyncio.create_task(self._lane(safety, None, first_pass)),
                    asyncio.create_task(self._lane(routine, conn, first_pass, wait=True)),
                ]
            else:
                (only,) = self.lanes
                tasks = [asyncio.create_task(self._lane(only, conn, first_pass))]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for t in done:
                    t.result()  # a lane that failed: both stop, and run() starts over
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            RELAY_LEADER.set(0)
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def _lane(
        self,
        lane: _Lane,
        leader: asyncpg.Connection | None,
        first_pass: asyncio.Event,
        *,
        wait: bool = False,
    ) -> None:
        if wait:
            await first_pass.wait()
        conn = leader or await self._connect(lane.name)
        try:
            await conn.add_listener(f"{self.config.schema}{lane.channel}", lane.notified)
            loop = asyncio.get_running_loop()
            last_batch = float("-inf")
            while not self._stopping.is_set():
                lane.wake.clear()
                try:
                    published = await self._drain(conn, lane)
                except KafkaError as exc:
                    if not exc.retriable:
                        await self._replace_producer(lane, exc)
                    raise
                if published:
                    last_batch = loop.time()
                if published >= self.config.batch_size:
                    continue  # more is waiting
                first_pass.set()
                if published == 0 and leader is not None:
                    await self._cleanup(conn)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lane.wake.wait(), self.config.poll_interval_s)
                # busy (a batch went out a moment ago): at most one batch per linger_s,
                # so the next one carries what arrives meanwhile
                rest = last_batch + lane.linger_s - loop.time()
                if rest > 0:
                    await asyncio.sleep(rest)
        finally:
            if not wait:
                # this lane is done (stopped, even before its first pass): the lane
                # waiting for its first pass must not wait for ever (a relay stopped just
                # after it started hung its shutdown so, in fresh-clone CI)
                first_pass.set()
            if leader is None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)

    async def _drain(self, conn: Conn, lane: _Lane) -> int:
        rows = await conn.fetch(lane.query, self.config.batch_size)
        if not rows:
            return 0
        # The whole round in record batches, then wait: each key's events in id order
        # (shared/kafka.py send_in_order); rows leave the outbox once all are acknowledged.
        prefix = self.config.topic_prefix
        await send_in_order(
            lane.producer,
            [(prefix + r["topic"], r["key"].encode(), r["value"]) for r in rows],
            _HEADERS,  # structured mode: no ce_ header
        )
        await conn.execute(_PUBLISHED, [r["id"] for r in rows])
        for topic, n in collections.Counter(r["topic"] for r in rows).items():
            PUBLISHED.labels(topic).inc(n)
        return len(rows)

    async def _cleanup(self, conn: Conn) -> None:
        """Records of published events older than the retention, once an hour (the
        first idle pass after a start included: the loop's clock starts near the
        machine's boot, so ``0`` as the last time skipped the first hour after one)."""
        now = asyncio.get_running_loop().time()
        if self._last_cleanup is not None and now - self._last_cleanup < 3600:
            return
        self._last_cleanup = now
        await conn.execute(
            "DELETE FROM outbox_published WHERE published_at < now() - make_interval(days => $1)",
            self.config.retention_days,
        )


async def warm_topics(
    producers: Sequence[AIOKafkaProducer], topics: Sequence[str], timeout_s: float = 5.0
) -> None:
    """Fetch the partitions of ``topics`` for each producer before the first event: a
    producer otherwise asks the broker for a topic's metadata on its first send there.
    Best effort: a topic missing or a slow broker only leaves it to the first send."""
    with contextlib.suppress(KafkaError, TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*(p.partitions_for(t) for p in producers for t in topics)), timeout_s
        )


# A service's own periodic work beside its relay (e.g. intake's pipeline heartbeat,
# services/intake/heartbeat.py): started with the relay, stopped (cancelled) with it.
RelayTask = Callable[[], Coroutine[Any, Any, None]]


async def serve_relay(
    settings: CommonSettings,
    schema: str,
    migrations: Path,
    tasks: Sequence[RelayTask] = (),
    *,
    safety_lane: bool = True,
) -> None:
    """The service's relay until SIGTERM. ``safety_lane``: whether the service writes
    safety-lane rows (RelayConfig.safety_lane)."""
    devclock.refuse_unless_loopback(settings, f"{schema} relay")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # start even while the database or broker is still coming up
    await db.migrate_when_up(settings.database_url, schema, migrations, "relay")
    relay = await _start_relay(settings, schema, stop, safety_lane)
    task = asyncio.create_task(relay.run())
    extra = [asyncio.create_task(t()) for t in tasks]
    freeze_startup()  # started: what exists now leaves the collector's walks
    log.info("relay_started", schema=schema)
    await stop.wait()
    relay.stop()
    for t in extra:
        t.cancel()
    await asyncio.gather(*extra, return_exceptions=True)
    await task
    for p in relay.producers:  # the ones in use (replaced after a fatal error)
        await p.stop()
    await devclock.unwatch()
    log.info("relay_stopped", schema=schema)


async def _start_relay(
    settings: CommonSettings, schema: str, stop: asyncio.Event, safety_lane: bool
) -> OutboxRelay:
    """The relay with its producers started (waiting for the broker), its metrics port
    open and, with DEV_CLOCK=1, the stack's time known (else a no-op)."""
    backoff = settings.backoff()

    def new_producer(lane: str) -> AIOKafkaProducer:
        return idempotent_producer(
            settings.kafka_servers,
            f"{schema}-relay-{lane}",
            settings.kafka_request_timeout_ms,
            settings.outbox_producer_batch_bytes,
        )

    def waiting(event: str) -> Callable[[BaseException, float], None]:
        return lambda exc, delay: log.warning(event, error=repr(exc), retry_in_s=delay)

    producer = new_producer("routine")
    urgent_producer = new_producer("safety") if safety_lane else None
    started = [p for p in (producer, urgent_producer) if p is not None]
    for p in started:
        await until_done(
            p.start,
            retry_on=(KafkaError,),
            backoff=backoff,
            on_retry=waiting("relay_waiting_for_kafka"),
            stop=stop,
        )
    # the first events after a start do not wait for their topic's metadata
    await warm_topics(started, [settings.topic(t) for t in TOPICS])
    if settings.relay_metrics_port:
        start_http_server(settings.relay_metrics_port, addr=settings.http_host)
    await until_done(
        lambda: devclock.watch(settings, f"{schema}-relay"),
        retry_on=DATABASE_ERRORS,
        backoff=backoff,
        on_retry=waiting("relay_waiting_for_clock"),
    )
    config = RelayConfig(
        dsn=settings.database_url,
        schema=schema,
        batch_size=settings.outbox_batch_size,
        poll_interval_s=settings.outbox_poll_interval_s,
        linger_s=settings.outbox_linger_s,
        topic_prefix=settings.kafka_topic_prefix,
        retry_initial_s=settings.retry_initial_s,
        retry_max_s=settings.retry_max_s,
        safety_lane=safety_lane,
    )
    return OutboxRelay(config, producer, new_producer, urgent_producer)
