"""The safety lane's consumer: ``python -m services.alerts safety``.

docs/domain.md ("Safety signals first"): a suicide-risk signal pages tier 1 within a
second, even while the rest of the system is overloaded. Every stage of its path is its
own: intake writes a ``safety.signal`` event in the transaction of the check-in or
intake (outbox priority SAFETY, published before any routine row: shared/relay.py); it
has its own topic; this process, apart from the routine worker and its backlog, consumes
only that topic (one task per partition, so a retrying message holds only its partition);
the alert is raised in one short transaction (the claim in
``signal_claims`` makes the signal's ordinary event a no-op for it, whichever comes
first); its pages are inserted by that transaction already leased to this process, and
their first delivery attempt is made here straight after the commit, rather than waiting
for the timers process (which retries what fails, as for any page, and takes over a page
whose lease ran out because this process died before its POST). When the routine event
of the same check-in was handled first (its transaction raised the alert and holds the
patient's lock until it commits), the lane, having waited for that lock, POSTs the
pages that transaction queued just the same.

Every lane consumes every partition, by assignment rather than as a member of a consumer
group: a lane that joins, leaves, dies or freezes never pauses the others for a rebalance
or a session timeout. With two lanes running, each signal is handled by both; the event
id (the inbox) and the signal claim make the second one's transaction a no-op, and only
the lane whose transaction applied the signal POSTs its pages. The group id
(``<ALERTS_CONSUMER_GROUP>-safety``) holds only the committed offsets, which the lanes
share: a lane (re)starts where the lanes have got to, and the lag exporter and watchdog
watch them there.

Guarantees: at least once per signal, in order per partition (the offset is committed
only after the message was applied or dead-lettered), one alert occurrence per signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from contextvars import ContextVar
from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from services.alerts import repository as repo
from services.alerts.alerting import make_deps
from services.alerts.alerting.delivery import Deliverer
from services.alerts.deps import Deps
from services.alerts.reactions import SAFETY_REACTIONS
from services.alerts.rows import ClaimedPage
from services.alerts.settings import SCHEMA, AlertsSettings
from shared import db, devclock, events
from shared.clock import utcnow
from shared.heap import freeze_startup
from shared.logging import get_logger
from shared.processing import TRANSIENT, EventProcessor, Message, service_processor
from shared.retry import until_done

log = get_logger(__name__)

SIGNALS = Counter("safety_signals_total", "Safety-lane messages, by outcome", ["outcome"])
HEARTBEATS = Counter(
    "pipeline_heartbeats_total", "Pipeline heartbeats consumed by the lane, by outcome", ["outcome"]
)
ASSIGNED = Gauge(
    "safety_lane_assigned_partitions", "Partitions of safety.signal this process consumes"
)
FIRST_ATTEMPT = Histogram(
    "safety_first_page_seconds",
    "From a safety signal's event time (intake's commit) to the end of its first page POST",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


# The pages the message being handled queued, leased to this process by its transaction
# and handed over once it committed (Deps.first_attempt): one list per handled message.
_LEASED: ContextVar[list[ClaimedPage] | None] = ContextVar("safety_leased", default=None)


def _hand_over(rows: list[ClaimedPage]) -> None:
    leased = _LEASED.get()
    if leased is None:  # not inside SafetyLane.handle: the timers POST them at lease end
        log.warning("safety_pages_not_handed_over", pages=len(rows))
        return
    leased.extend(rows)


def create_safety_processor(settings: AlertsSettings) -> EventProcessor:
    def deps(pool: asyncpg.Pool) -> Deps:
        return replace(
            make_deps(settings, pool, utcnow),
            first_attempt=_hand_over,
            first_attempt_lease=timedelta(seconds=settings.page_lease_s),
        )

    return service_processor(
        settings=settings,
        schema=SCHEMA,
        group=f"{settings.alerts_consumer_group}-safety",
        make_deps=deps,
        reactions=SAFETY_REACTIONS,
    )


class SafetyLane:
    """Consumes safety.signal partition by partition and pages straight after commit."""

    def __init__(self, settings: AlertsSettings, processor: EventProcessor) -> None:
        self.settings = settings
        self.processor = processor
        self.topic = settings.topic(events.SafetySignal.topic)
        self.heartbeat_topic = settings.topic(events.PipelineHeartbeat.topic)
        self.delivery: Deliverer | None = None

    async def first_attempts(self, rows: list[ClaimedPage]) -> None:
        """The first POST of each page the signal's transaction queued, concurrently."""
        assert self.delivery is not None
        await asyncio.gather(*(self.delivery.deliver(row) for row in rows))

    async def due_pages(self, patient_id: str) -> list[ClaimedPage]:
        """The patient's pages due now, leased to this process: those of the signal when
        the routine path of the same check-in raised it first (the lane then waited for
        that transaction's patient lock, and found the signal claimed), rather than
        leaving them to the timers process, which a loaded machine may run late."""
        assert self.delivery is not None
        now = utcnow()
        lease = now + timedelta(seconds=self.settings.page_lease_s)
        async with self.delivery.pool.acquire() as conn:
            return await repo.claim_patient_pages(conn, patient_id, now, lease)

    async def handle(self, m: ConsumerRecord[bytes, bytes]) -> None:
        msg = Message(
            topic=m.topic,
            partition=m.partition,
            offset=m.offset,
            key=m.key,
            value=m.value or b"",
            headers={k: bytes(v) for k, v in (m.headers or [])},
        )
        leased: list[ClaimedPage] = []
        token = _LEASED.set(leased)
        try:
            outcome = await self.processor.process(msg)
        finally:
            _LEASED.reset(token)
        if m.topic == self.heartbeat_topic:  # recorded; never a signal, never a page
            HEARTBEATS.labels(outcome).inc()
            return
        SIGNALS.labels(outcome).inc()
        if outcome != "applied" or not msg.key:
            return
        try:
            # ``leased`` is only ever filled by a transaction that committed
            pages = leased or await self.due_pages(msg.key.decode())
            if pages:
                await self.first_attempts(pages)
                if m.timestamp:
                    FIRST_ATTEMPT.observe(max(time.time() - m.timestamp / 1000, 0.0))
        except TRANSIENT as exc:  # the timers process delivers them (at the lease's end)
            log.warning("safety_first_attempt_failed", error=repr(exc))

    async def partition(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        msgs: list[ConsumerRecord[bytes, bytes]],
    ) -> None:
        """One partition's batch in order; the partition is paused meanwhile (the others
        go on being fetched and handled), its offset committed after the last one."""
        try:
            for m in msgs:
                await self.handle(m)
            with contextlib.suppress(KafkaError):  # not committed: re-read, inbox drops it
                await consumer.commit({tp: msgs[-1].offset + 1})
        finally:
            with contextlib.suppress(Exception):  # revoked meanwhile: nothing to resume
                consumer.resume(tp)

    def wanted(self, consumer: AIOKafkaConsumer) -> set[TopicPartition] | None:
        """Every partition of the signal and heartbeat topics, as the consumer's metadata
        knows them; None while it does not know both topics yet."""
        out: set[TopicPartition] = set()
        for topic in (self.topic, self.heartbeat_topic):
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                return None
            out.update(TopicPartition(topic, p) for p in parts)
        return out

    def assign(
        self,
        consumer: AIOKafkaConsumer,
        want: set[TopicPartition],
        busy: dict[TopicPartition, asyncio.Task[None]],
    ) -> None:
        """Consume ``want``: every partition, each from the lanes' committed offset. A
        partition whose batch is still being handled stays paused until that batch is
        committed (``partition`` resumes it), so nothing is handled out of its order."""
        consumer.assign(sorted(want))
        for tp in busy:
            if tp in want:
                consumer.pause(tp)
        ASSIGNED.set(sum(tp.topic == self.topic for tp in want))
        log.info("safety_lane_assigned", partitions=len(want), topic=self.topic)

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_servers,
            # the lanes' shared committed offsets; never joined as a member (module doc)
            group_id=self.processor.group,
            client_id=f"{self.processor.group}-{id(self)}",
            enable_auto_commit=False,
            auto_offset_reset=self.settings.consumer_offset_reset,
            # a lane started while the broker was away, or before the topics existed,
            # learns their partitions (and partitions added later) within seconds
            metadata_max_age_ms=3000,
            fetch_max_wait_ms=100,
        )
        # partition 0 of each topic until the metadata gives them all: tracking the
        # topics is what makes the consumer fetch their metadata
        consumer.assign([TopicPartition(self.topic, 0), TopicPartition(self.heartbeat_topic, 0)])
        # at most RECONNECT_MAX_S (1 s) between tries: the lane must be consuming within
        # seconds of the broker's return (a connection attempt costs nothing)
        await until_done(
            consumer.start,
            retry_on=(KafkaError,),
            backoff=self.settings.backoff(max_s=self.settings.reconnect_max_s),
            on_retry=lambda exc, delay: log.warning(
                "safety_waiting_for_kafka", error=repr(exc), retry_in_s=delay
            ),
            stop=stop,
        )
        if stop.is_set():
            with contextlib.suppress(Exception):
                await consumer.stop()
            return
        log.info("safety_lane_started", topic=self.topic, group=self.processor.group)
        busy: dict[TopicPartition, asyncio.Task[None]] = {}
        try:
            while not stop.is_set():
                want = self.wanted(consumer)
                if want is not None and want != consumer.assignment():
                    self.assign(consumer, want, busy)
                try:
                    batch = await consumer.getmany(timeout_ms=200, max_records=500)
                except KafkaError as exc:
                    log.warning("safety_fetch_retry", error=repr(exc))
                    await asyncio.sleep(0.5)
                    continue
                for tp, msgs in batch.items():
                    # one task per partition: a retrying message holds only its own
                    consumer.pause(tp)
                    task = asyncio.create_task(self.partition(consumer, tp, list(msgs)))
                    busy[tp] = task
                    task.add_done_callback(partial(_forget, busy, tp))
        finally:
            if busy:
                await asyncio.wait(set(busy.values()), timeout=10)
            for task in list(busy.values()):
                task.cancel()
            with contextlib.suppress(Exception):
                await consumer.stop()


def _forget(busy: dict[TopicPartition, asyncio.Task[None]], tp: TopicPartition, _: object) -> None:
    busy.pop(tp, None)


async def serve_safety(settings: AlertsSettings, migrations: Path) -> None:
    devclock.refuse_unless_loopback(settings, "alerts safety lane")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # start even while the database is still coming up
    await db.migrate_when_up(settings.database_url, SCHEMA, migrations, "safety", stop)
    processor = create_safety_processor(settings)
    await until_done(
        processor.start,  # the pool, the DLQ producer, the dev clock
        retry_on=(*TRANSIENT, ConnectionError),
        backoff=settings.backoff(),
        on_retry=lambda exc, delay: log.warning(
            "safety_waiting_to_start", error=repr(exc), retry_in_s=delay
        ),
        stop=stop,
    )
    if stop.is_set():
        return
    if settings.alerts_safety_metrics_port:
        start_http_server(settings.alerts_safety_metrics_port, addr=settings.http_host)
    assert processor.pool is not None
    limits = httpx.Limits(max_connections=settings.page_concurrency, max_keepalive_connections=32)
    lane = SafetyLane(settings, processor)
    freeze_startup()  # started: what exists now leaves the collector's walks
    async with httpx.AsyncClient(
        timeout=settings.page_timeout_s, limits=limits, follow_redirects=False
    ) as http:
        lane.delivery = Deliverer(settings, processor.pool, http)
        try:
            await lane.run(stop)
        finally:
            await processor.stop()
