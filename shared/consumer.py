"""The faust worker: fetching, per-partition lanes, readiness, lag.

faust acks a message even when its handler raised, so nothing may escape a handler:
each message goes to ``shared.processing.EventProcessor.process``, which applies,
skips, retries or dead-letters it. A retry holds the partition's order, and only that
partition's: each assigned partition has its own lane (PartitionLanes).

A worker never stalls silently: it waits for the broker at start instead of exiting,
looks again at the broker's metadata every second while a subscribed topic is missing
from it (else aiokafka waits up to 5 minutes, with nothing assigned), exports
``consumer_assigned_partitions`` and answers GET /readyz on its metrics port (503 with
the reason while it consumes nothing and its group's topics lag).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import faust
import uvloop
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from prometheus_client import Counter, Gauge

from shared import db, devclock, kafka, metrics
from shared.logging import configure_logging, get_logger
from shared.processing import TRANSIENT, EventProcessor, Message
from shared.readiness import GroupLag, Readiness
from shared.retry import until_done
from shared.settings import CommonSettings
from shared.uncommitted import seek_uncommitted_to_start

log = get_logger(__name__)

LAG = Gauge(
    "consumer_lag",
    "Messages on the partition after the last one this worker processed (highwater - offset - 1)",
    ["group", "topic", "partition"],
)
SKIPS = Counter(
    "consumer_offset_skips_total",
    "Times a partition's next message came past the offset after the last one handed to "
    "its lane (faust skipped some): the partition was fetched again from the first missing",
    ["group", "topic"],
)
ASSIGNED = Gauge(
    "consumer_assigned_partitions",
    "Partitions of the topic assigned to this worker (0 on every topic: it consumes nothing)",
    ["group", "topic"],
)


def _headers(raw: Any) -> dict[str, bytes]:
    items = raw.items() if isinstance(raw, dict) else (raw or [])
    return {str(k): bytes(v) for k, v in items}


def _track_lag(app: faust.App, group: str, topic: str, message: Any) -> None:
    """The partition's lag after this message: its highwater (known from the last fetch,
    no broker round trip) minus the next offset to read."""
    try:
        highwater = app.consumer.highwater(message.tp)
    except Exception:  # not assigned any more (a rebalance), or no fetch answered yet
        return
    if highwater is not None:
        LAG.labels(group, topic, str(message.partition)).set(max(highwater - message.offset - 1, 0))


Timer = tuple[float, Callable[[], Awaitable[None]]]

# A partition's lane holds at most this many fetched messages before the partition is
# paused (fetching from it stops); it is resumed once the lane is down to LANE_RESUME,
# from the offset after the last message it was handed (PartitionLanes.put).
LANE_PAUSE = 200
LANE_RESUME = 50
# How often the worker checks its subscription against the broker's metadata and its
# readiness (its /readyz answers from the last check; a check older than
# shared/readiness.py READY_STALE_S: 503).
WATCH_INTERVAL_S = 1.0


def faust_tp(tp: Any) -> TP:
    """A message's partition as faust's own TP. A message may carry aiokafka's
    TopicPartition, and faust's ``resume_partitions`` adds what it is given to its set
    of active partitions as it is, where the next fetch asserts every member is a faust
    TP: a lane resumed with aiokafka's crashed the whole worker (seen in CI when the
    waitlist retry's burst paused a lane)."""
    return tp if type(tp) is TP else TP(tp.topic, tp.partition)


class PartitionLanes:
    """One ordered lane (a queue and a task) per assigned partition.

    The agent of a topic only hands each message to its partition's lane, so a message
    whose transient failure is retried holds back the rest of its own partition (its
    patient's order is kept) and nothing else. A message is acked once its lane has
    processed it; faust commits a partition's offset only up to its first unacked
    message, so no offset is committed past an unprocessed one. A lane takes what queued
    up while it worked, up to CONSUMER_BATCH_MAX (``EventProcessor.process_batch``). A
    lane that backs up is paused at the fetcher (LANE_PAUSE) instead of growing without
    bound, and resumed by a seek to the offset after the last message it was handed:
    faust drops the paused partition's records it had already fetched, and on resume it
    took the jump in offsets for a gap and counted the dropped records as acked, so the
    partition's offset was committed past messages never applied (a lost event for each;
    tests/integration/test_worker_liveness.py). On revocation the lanes of the revoked
    partitions are cancelled and dropped:
    what they had not acked is read again, from the committed offset, by the partition's
    next owner (the inbox makes a repeat a no-op).
    """

    def __init__(self, app: faust.App, processor: EventProcessor) -> None:
        self.app = app
        self.processor = processor
        self._queues: dict[Any, asyncio.Queue[Any]] = {}
        self._tasks: dict[Any, asyncio.Task[None]] = {}
        self._paused: set[Any] = set()
        self._handed: dict[Any, int] = {}  # the last offset each lane was handed
        # a partition being fetched again after a skip: the offset awaited, and the seek
        self._refetch: dict[Any, tuple[int, asyncio.Task[None]]] = {}

    def put(self, event: Any) -> None:
        tp, offset = event.message.tp, event.message.offset
        if not self._in_sequence(tp, offset):
            return
        self._handed[tp] = max(offset, self._handed.get(tp, -1))
        queue = self._queues.get(tp)
        if queue is None:
            queue = self._queues[tp] = asyncio.Queue()
            self._tasks[tp] = asyncio.get_running_loop().create_task(
                self._run(tp, queue), name=f"lane {tp.topic}[{tp.partition}]"
            )
        queue.put_nowait(event)
        if queue.qsize() >= LANE_PAUSE and tp not in self._paused:
            self._paused.add(tp)
            self.app.consumer.pause_partitions([faust_tp(tp)])
            log.info("lane_paused", topic=tp.topic, partition=tp.partition, queued=queue.qsize())

    async def _run(self, tp: Any, queue: asyncio.Queue[Any]) -> None:
        batch_max = self.processor.settings.consumer_batch_max
        while True:
            batch = [await queue.get()]
            while len(batch) < batch_max and not queue.empty():  # what queued meanwhile
                batch.append(queue.get_nowait())
            await self.processor.process_batch(
                [
                    Message(
                        topic=tp.topic,
                        partition=e.message.partition,
                        offset=e.message.offset,
                        key=e.message.key,
                        value=e.message.value or b"",
                        headers=_headers(e.message.headers),
                    )
                    for e in batch
                ]
            )
            for e in batch:
                e.ack()
            _track_lag(self.app, self.processor.group, tp.topic, batch[-1].message)
            if tp in self._paused and queue.qsize() <= LANE_RESUME:
                await self._resume(tp, queue)

    def _in_sequence(self, tp: Any, offset: int) -> bool:
        """Whether to hand this message to its lane. Our topics' offsets have no gaps (no
        transactions, no compaction), so a message past the one after the last handed
        means faust skipped some: they would never be applied, and their offsets would
        be committed with the next ones. The partition is then paused, sought back to the
        first one missing and resumed; what arrives past it meanwhile (fetched before
        the pause) is dropped, to come again. Still a jump after the seek: the records
        are gone from the broker (retention), and the lane goes on from there."""
        pending = self._refetch.get(tp)
        if pending is not None:
            want, seek = pending
            if offset <= want:
                if offset == want:
                    del self._refetch[tp]
                return True  # the one awaited, or one handed before (the inbox drops it)
            if not seek.done():
                return False
            del self._refetch[tp]
            log.error(
                "consumer_offsets_gone",
                topic=tp.topic,
                partition=tp.partition,
                first=want,
                resumed_at=offset,
            )
            return True
        last = self._handed.get(tp)
        if last is None or offset <= last + 1:
            return True
        SKIPS.labels(self.processor.group, tp.topic).inc()
        log.error(
            "consumer_offset_skip",
            topic=tp.topic,
            partition=tp.partition,
            expected=last + 1,
            got=offset,
        )
        self.app.consumer.pause_partitions([faust_tp(tp)])
        task = asyncio.get_running_loop().create_task(
            self._refetch_from(tp, last + 1), name=f"refetch {tp.topic}[{tp.partition}]"
        )
        self._refetch[tp] = (last + 1, task)
        return False

    async def _refetch_from(self, tp: Any, offset: int) -> None:
        """Seek the partition to ``offset``, then resume it unless its lane is full (its
        lane resumes it once it has room)."""
        backoff = self.processor.settings.backoff()
        while True:  # a partition no longer assigned is revoked, which cancels this task
            try:
                await self.app.consumer.seek(faust_tp(tp), offset)
                break
            except Exception as exc:
                delay = backoff.delay()
                log.warning("lane_seek_failed", topic=tp.topic, error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
        if tp not in self._paused:
            self.app.consumer.resume_partitions([faust_tp(tp)])

    async def _resume(self, tp: Any, queue: asyncio.Queue[Any]) -> None:
        """Fetch the partition again from the offset after the last message this lane was
        handed (what faust dropped while it was paused is fetched again; a message handed
        twice is applied once, the inbox)."""
        offset = self._handed[tp] + 1
        self._paused.discard(tp)
        await self._refetch_from(tp, offset)
        log.info(
            "lane_resumed",
            topic=tp.topic,
            partition=tp.partition,
            offset=offset,
            queued=queue.qsize(),
        )

    async def revoke(self, tps: Iterable[Any]) -> None:
        tasks = []
        for tp in tps:
            self._queues.pop(tp, None)
            self._paused.discard(tp)
            self._handed.pop(tp, None)
            refetch = self._refetch.pop(tp, None)
            for task in (self._tasks.pop(tp, None), refetch[1] if refetch else None):
                if task is not None:
                    task.cancel()
                    tasks.append(task)
        await asyncio.gather(*tasks, return_exceptions=True)


def _subscription_gaps(thread: Any) -> Callable[[], Awaitable[list[str]]]:
    """Run in faust's consumer thread (aiokafka lives there): the subscribed topics the
    client's metadata has no partitions for, asking for fresh metadata when there are.

    aiokafka refreshes metadata only every ``metadata_max_age_ms`` (5 minutes) unless
    something forces it, and the group leader assigns only the partitions its metadata
    knows: a worker that joined while the broker was away (or before a topic existed)
    was assigned nothing and stayed so until the next refresh. Once the fresh metadata
    shows the topics, aiokafka sees its snapshot change and rejoins the group at once.
    """

    async def check() -> list[str]:
        consumer = getattr(thread, "_consumer", None)
        if consumer is None:
            return []
        cluster = consumer._client.cluster
        missing = sorted(t for t in consumer.subscription() if not cluster.partitions_for_topic(t))
        if missing:
            consumer._client.force_metadata_update()
        return missing

    return check


class _FetchingThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer thread, its aiokafka consumer fetching as the settings say
    (``CONSUMER_FETCH_MIN_BYTES``, ``CONSUMER_FETCH_MAX_WAIT_MS``): faust passes neither
    (it fixes the wait at 1.5 s and leaves the minimum at 1 byte). aiokafka reads both
    when the consumer starts, after this."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        settings: CommonSettings = cast(WorkerApp, self.app).fetch_settings
        consumer._fetch_min_bytes = settings.consumer_fetch_min_bytes
        consumer._fetch_max_wait_ms = settings.consumer_fetch_max_wait_ms
        return consumer


class _FetchingConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _FetchingThread:
        return _FetchingThread(self, loop=self.loop, beacon=self.beacon)


class _FetchingTransport(faust_aiokafka.Transport):
    Consumer = _FetchingConsumer


class WorkerApp(faust.App):
    """A worker's faust app, with the readiness its /readyz answers from, consuming
    through ``_FetchingTransport``."""

    readiness: Readiness
    fetch_settings: CommonSettings

    def _new_transport(self) -> Any:
        return _FetchingTransport(self.conf.broker_consumer, self)


def build_faust_app(processor: EventProcessor, timers: Sequence[Timer] = ()) -> WorkerApp:
    """One faust app per worker process, one agent per consumed topic (handing each
    message to its partition's lane, ``PartitionLanes``), plus periodic tasks, a
    subscription watchdog and the readiness check behind the worker's /readyz.

    A periodic task's failure is logged and retried at its next tick.
    """
    settings = processor.settings
    devclock.refuse_unless_loopback(settings, f"{processor.group} worker")
    app = _faust_app(settings, processor.group)
    app.readiness = Readiness()
    app.readiness.set(False, reason="starting")
    lanes = PartitionLanes(app, processor)
    _subscribe(app, processor, lanes)
    watch = _Watch(app, processor, lanes)
    app.on_partitions_revoked.connect(watch.on_revoked)
    app.on_partitions_assigned.connect(watch.on_assigned)

    async def _start() -> None:
        # before the group's first rebalance (it runs as the app starts)
        seek_uncommitted_to_start(app.consumer, settings.consumer_offset_reset)
        # A failure here would crash the whole worker (faust stops the app when a task
        # raises): the database out of connection slots or restarting, the broker gone
        # between _wait_for_broker and the producer's start. Wait them out instead; a
        # message arriving meanwhile waits the same way (EventProcessor._apply).
        await until_done(
            processor.start,
            retry_on=TRANSIENT,
            backoff=settings.backoff(initial_s=0.2, max_s=settings.reconnect_max_s),
            on_retry=lambda exc, delay: log.warning(
                "worker_waiting_for_dependencies", error=repr(exc), retry_in_s=delay
            ),
        )

    app.task(_start)
    app.timer(WATCH_INTERVAL_S)(watch)
    for interval, fn in timers:
        app.timer(interval)(_periodic(fn))
    return app


def _periodic(fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """``fn`` as a faust timer: its failure logged, the next tick tries again. The tick
    takes no parameter: faust calls a timer that takes one with the app (a default
    argument holding ``fn`` got the app instead, and every tick failed)."""

    async def tick() -> None:
        try:
            await fn()
        except Exception:
            log.exception("periodic_task_failed", task=getattr(fn, "__name__", "task"))

    return tick


def _faust_app(settings: CommonSettings, group: str) -> WorkerApp:
    app = WorkerApp(
        group,
        broker=[f"kafka://{s}" for s in settings.kafka_servers],
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset=settings.consumer_offset_reset,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.consumer_session_timeout_s,
        broker_heartbeat_interval=3.0,
        producer_acks=-1,
        # faust's revocation would wait for every unacked message, i.e. also for those
        # queued in the lanes and for a message being retried; PartitionLanes.revoke
        # drops them instead (unacked: read again by the partition's next owner).
        stream_wait_empty=False,
    )
    app.fetch_settings = settings
    return app


def _subscribe(app: faust.App, processor: EventProcessor, lanes: PartitionLanes) -> None:
    """An agent per consumed topic, handing every message to its partition's lane."""
    for topic_name in processor.routes:
        topic = app.topic(
            topic_name,
            value_type=bytes,
            key_type=bytes,
            value_serializer="raw",
            key_serializer="raw",
        )

        async def agent(stream: Any) -> None:
            async for event in stream.noack().events():  # acked by its lane
                lanes.put(event)

        app.agent(topic, name=f"{processor.group}.{topic_name}")(agent)


class _Watch:
    """Every WATCH_INTERVAL_S: the subscription against the broker's metadata, and the
    worker's readiness (its /readyz)."""

    def __init__(self, app: WorkerApp, processor: EventProcessor, lanes: PartitionLanes) -> None:
        self.app, self.processor, self.lanes = app, processor, lanes
        self.group = processor.group
        self.joined = asyncio.Event()
        self.group_lag = GroupLag(processor.settings, self.group, list(processor.routes))

    async def on_revoked(self, *args: Any, **_: Any) -> None:  # (app, revoked, signal=)
        """A revoked partition's lane stops; its lag is reported by its new owner."""
        revoked: set[Any] = args[1] if len(args) > 1 else set()
        await self.lanes.revoke(revoked)
        for tp in revoked:
            with contextlib.suppress(KeyError):
                LAG.remove(self.group, tp.topic, str(tp.partition))

    def on_assigned(self, *_: Any, **__: Any) -> None:
        self.joined.set()

    async def __call__(self) -> None:
        try:
            thread = getattr(self.app.consumer, "_thread", None)
            if thread is not None and self.joined.is_set():
                missing = await thread.call_thread(_subscription_gaps(thread))
                if missing:
                    log.warning("subscribed_topics_missing_from_metadata", topics=missing)
        except Exception as exc:
            log.warning("subscription_watch_failed", error=repr(exc))
        try:
            await self.check_readiness()
        except Exception as exc:
            self.app.readiness.set(False, reason="readiness check failed", error=repr(exc))

    async def check_readiness(self) -> None:
        readiness, settings = self.app.readiness, self.processor.settings
        assigned = _assignment(self.app)
        for t in self.processor.routes:
            ASSIGNED.labels(self.group, t).set(sum(1 for tp in assigned if tp.topic == t))
        if not self.joined.is_set():
            return readiness.set(False, reason="not in the consumer group yet")
        pool = self.processor.pool
        if pool is None:
            return readiness.set(False, reason="database pool not started")
        try:
            await asyncio.wait_for(pool.fetchval("SELECT 1"), settings.readiness_timeout_s)
        except Exception as exc:
            return readiness.set(False, reason="database unreachable", error=repr(exc))
        if assigned:
            return readiness.set(True, assigned_partitions=len(assigned))
        try:
            behind = await asyncio.wait_for(
                self.group_lag.total(), settings.readiness_timeout_s * 2
            )
        except Exception as exc:
            return readiness.set(
                False, reason="no partitions assigned; group lag unknown", error=repr(exc)
            )
        if behind:
            return readiness.set(
                False,
                reason="no partitions assigned while the group's topics have lag",
                assigned_partitions=0,
                group_lag=behind,
            )
        return readiness.set(True, assigned_partitions=0, group_lag=0)


def _assignment(app: faust.App) -> set[Any]:
    try:
        return set(app.consumer.assignment())
    except Exception:  # the consumer not started yet
        return set()


class _Worker(faust.Worker):
    """faust's worker, logging through our structlog JSON setup instead of its own."""

    def __init__(self, app: faust.App, *, service: str, log_json: bool, **kwargs: Any) -> None:
        self.service, self.log_json = service, log_json
        super().__init__(app, **kwargs)

    def on_setup_root_logger(self, logger: Any, level: int) -> None:
        configure_logging(self.service, logging.getLevelName(level), self.log_json)


async def _wait_for_broker(settings: CommonSettings, readiness: Readiness) -> None:
    """faust gives up at start when the broker does not answer (the process exits, and
    supervisord gives up after a few quick exits): wait for it here instead."""
    # at most reconnect_max_s between tries: back in the group within seconds of the
    # broker's return
    backoff, logged = settings.backoff(initial_s=0.2, max_s=settings.reconnect_max_s), 0.0
    while not await kafka.metadata_ok(settings.kafka_servers, settings.readiness_timeout_s):
        readiness.set(False, reason="waiting for the broker")
        if time.monotonic() - logged > 10:
            log.warning("worker_waiting_for_broker", servers=settings.kafka_servers)
            logged = time.monotonic()
        await backoff.sleep()


def run_worker(
    app: WorkerApp,
    service: str,
    settings: CommonSettings,
    *,
    schema: str,
    migrations: Path,
) -> None:
    """Apply the service's migrations (``schema``, ``migrations``: its directory) once
    PostgreSQL answers, then run the faust worker in the foreground until SIGTERM/SIGINT.

    Its metrics port serves /metrics and /readyz (200 once in its group with a working
    database pool, and with a partition assigned or no lag on its group's topics; 503
    with the reason as JSON otherwise) from the start, also while it waits for the
    database or the broker. Nothing to close on the way out: dead letters are written
    synchronously and the database connections end with the process.
    """
    metrics.serve_metrics(settings.worker_metrics_port, settings.http_host, app.readiness.answer)
    loop = uvloop.new_event_loop()
    app.readiness.set(False, reason="waiting for the database")
    loop.run_until_complete(db.migrate_when_up(settings.database_url, schema, migrations, service))
    app.readiness.set(False, reason="starting")
    loop.run_until_complete(_wait_for_broker(settings, app.readiness))
    worker = _Worker(
        app,
        service=service,
        log_json=settings.log_json,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        loop=loop,
    )
    worker.execute_from_commandline()
