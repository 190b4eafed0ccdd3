"""Kafka consumption with faust-streaming: idempotent, retrying, dead-lettering.

faust acks a message even when its handler raised, so nothing may escape a
handler: every message ends in exactly one of
- applied: the handler's effect and the event id (inbox) committed together;
- skipped: the event id was already in the inbox (a redelivery);
- dead-lettered: a message that can never succeed (not a CloudEvent, wrong type,
  invalid payload, a handler that raised a non-transient error) is written to
  ``<topic>.dlq`` with the reason and its origin in headers, acknowledged by the
  broker before we move on;
- retried: a transient failure (database or broker away) is retried with capped
  exponential backoff, for as long as it takes, holding the partition's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import faust
import structlog
import uvloop
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from shared import devclock, inbox, metrics
from shared.db import Conn, create_pool
from shared.events import CONTENT_TYPE, PAYLOADS, CloudEvent, dlq_topic
from shared.kafka import idempotent_producer
from shared.logging import configure_logging, get_logger
from shared.settings import CommonSettings

log = get_logger(__name__)

Handler = Callable[[Conn, CloudEvent, Any], Awaitable[None]]

CONSUMED = Counter("events_consumed_total", "Events consumed", ["topic", "outcome"])
DEAD_LETTERED = Counter("events_dead_lettered_total", "Events sent to a .dlq", ["topic", "reason"])
RETRIES = Counter("consumer_retries_total", "Transient failures retried", ["topic"])
LAG = Gauge(
    "consumer_lag",
    "Messages on the partition after the last one this worker processed (highwater - offset - 1)",
    ["group", "topic", "partition"],
)

TRANSIENT = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.AdminShutdownError,
    KafkaError,
)


class PermanentError(Exception):
    """Raised by a handler for an event that can never be applied; it is dead-lettered."""


@dataclass(frozen=True)
class Route:
    """Events of ``event_type`` read from ``topic`` (the same name unless versioned or a test)."""

    topic: str
    handler: Handler
    event_type: str = ""

    @property
    def expected_type(self) -> str:
        return self.event_type or self.topic


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


class EventProcessor:
    """The message-to-outcome logic, independent of faust so it can be driven directly."""

    def __init__(
        self,
        *,
        settings: CommonSettings,
        schema: str,
        group: str,
        routes: list[Route],
    ) -> None:
        self.settings = settings
        self.schema = schema
        self.group = group
        self.routes = {r.topic: r for r in routes}
        self._pool: asyncpg.Pool | None = None
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            # DEV_CLOCK=1: the stack's time known before the first message is handled
            await devclock.watch(self.settings, f"{self.group}-worker")
            if self._pool is None:
                self._pool = await create_pool(
                    self.settings.database_url,
                    self.schema,
                    min_size=1,
                    max_size=self.settings.db_pool_max,
                )
            if self._producer is None:
                self._producer = idempotent_producer(
                    self.settings.kafka_servers, f"{self.group}-dlq"
                )
                await self._producer.start()

    @property
    def pool(self) -> asyncpg.Pool | None:
        return self._pool

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def process(self, msg: Message) -> str:
        """Apply one message; returns its outcome. Never raises (but for cancellation)."""
        try:
            event = CloudEvent.from_bytes(msg.value, tolerant=True)
        except ValidationError as exc:
            return await self._dead_letter(msg, "invalid_cloudevent", _first_error(exc))
        route = self.routes[msg.topic]
        with structlog.contextvars.bound_contextvars(
            topic=msg.topic, partition=msg.partition, offset=msg.offset, event_id=event.id
        ):
            return await self._apply(route, msg, event)

    async def _apply(self, route: Route, msg: Message, event: CloudEvent) -> str:
        if event.type != route.expected_type or event.type not in PAYLOADS:
            return await self._dead_letter(msg, "unexpected_type", event.type)
        try:
            payload = event.payload(tolerant=True)  # unknown fields: docs/events.md
        except ValidationError as exc:
            return await self._dead_letter(msg, "invalid_payload", _first_error(exc))
        delay = self.settings.consumer_retry_initial_s
        while True:
            try:
                await self.start()
            except Exception as exc:  # our dependencies, never the message's fault: retry
                log.error("consumer_cannot_start", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.consumer_retry_max_s)
                continue
            assert self._pool is not None
            try:
                # the handlers' business counters move only once the transaction committed
                with metrics.commit_scope():
                    async with self._pool.acquire() as conn, conn.transaction():
                        if not await inbox.first_time(conn, event.id, msg.topic):
                            outcome = "duplicate"
                        else:
                            await route.handler(conn, event, payload)
                            outcome = "applied"
                CONSUMED.labels(msg.topic, outcome).inc()
                return outcome
            except TRANSIENT as exc:
                RETRIES.labels(msg.topic).inc()
                log.warning(
                    "consumer_retry",
                    topic=msg.topic,
                    event_id=event.id,
                    error=repr(exc),
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.consumer_retry_max_s)
            except PermanentError as exc:
                return await self._dead_letter(msg, "rejected", str(exc), event.id)
            except Exception as exc:
                log.exception("consumer_handler_failed", topic=msg.topic, event_id=event.id)
                return await self._dead_letter(msg, "handler_error", repr(exc), event.id)

    async def _dead_letter(
        self, msg: Message, reason: str, detail: str, event_id: str | None = None
    ) -> str:
        headers = {
            **msg.headers,
            "dlq.reason": reason.encode(),
            "dlq.detail": detail[:500].encode(),
            "dlq.origin.topic": msg.topic.encode(),
            "dlq.origin.partition": str(msg.partition).encode(),
            "dlq.origin.offset": str(msg.offset).encode(),
            "dlq.consumer.group": self.group.encode(),
            "dlq.at": datetime.now(UTC).isoformat().encode(),
        }
        headers.setdefault("content-type", CONTENT_TYPE.encode())
        delay = self.settings.consumer_retry_initial_s
        while True:  # the message is acked once we return: the DLQ write must succeed first
            try:
                await self.start()
                assert self._producer is not None
                await self._producer.send_and_wait(
                    dlq_topic(msg.topic),
                    value=msg.value,
                    key=msg.key,
                    headers=list(headers.items()),
                )
                break
            except TRANSIENT as exc:
                log.warning("dlq_retry", topic=msg.topic, error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.consumer_retry_max_s)
        DEAD_LETTERED.labels(msg.topic, reason).inc()
        CONSUMED.labels(msg.topic, "dead_lettered").inc()
        log.warning(
            "dead_lettered",
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            reason=reason,
            detail=detail[:200],
            event_id=event_id,
        )
        return "dead_lettered"


Reaction = Callable[[Conn, Any, CloudEvent, Any], Awaitable[None]]


def service_processor(
    *,
    settings: CommonSettings,
    schema: str,
    group: str,
    make_deps: Callable[[asyncpg.Pool], Any],
    reactions: Sequence[tuple[str, Reaction]],
) -> EventProcessor:
    """A service's processor: each reaction ``fn(conn, deps, event, payload)`` routed from
    its event type's topic; ``deps`` are built from the pool once the processor started."""
    processor: EventProcessor

    def route(event_type: str, fn: Reaction) -> Route:
        async def handle(conn: Conn, event: CloudEvent, payload: Any) -> None:
            assert processor.pool is not None
            await fn(conn, make_deps(processor.pool), event, payload)

        return Route(topic=settings.topic(event_type), handler=handle, event_type=event_type)

    processor = EventProcessor(
        settings=settings,
        schema=schema,
        group=group,
        routes=[route(t, fn) for t, fn in reactions],
    )
    return processor


def _headers(raw: Any) -> dict[str, bytes]:
    items = raw.items() if isinstance(raw, dict) else (raw or [])
    return {str(k): bytes(v) for k, v in items}


def _first_error(exc: ValidationError) -> str:
    errs = exc.errors()
    if not errs:
        return "invalid"
    e = errs[0]
    return f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"


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


def build_faust_app(processor: EventProcessor, timers: Sequence[Timer] = ()) -> faust.App:
    """One faust app per worker process, one agent per consumed topic, plus periodic tasks.

    A periodic task's failure is logged and retried at its next tick.
    """
    settings = processor.settings
    devclock.refuse_unless_loopback(settings, f"{processor.group} worker")
    app = faust.App(
        processor.group,
        broker=[f"kafka://{s}" for s in settings.kafka_servers],
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset=settings.consumer_offset_reset,
        broker_commit_interval=1.0,
        producer_acks=-1,
    )

    for topic_name in processor.routes:
        topic = app.topic(
            topic_name,
            value_type=bytes,
            key_type=bytes,
            value_serializer="raw",
            key_serializer="raw",
        )

        async def agent(stream: Any, _topic: str = topic_name) -> None:
            async for event in stream.events():
                m = event.message
                await processor.process(
                    Message(
                        topic=_topic,
                        partition=m.partition,
                        offset=m.offset,
                        key=m.key,
                        value=m.value or b"",
                        headers=_headers(m.headers),
                    )
                )
                _track_lag(app, processor.group, _topic, m)

        app.agent(topic, name=f"{processor.group}.{topic_name}")(agent)

    def forget_lag(*args: Any, **_: Any) -> None:  # (app, revoked partitions, signal=...)
        """A revoked partition's lag is reported by its new owner from now on."""
        revoked: set[Any] = args[1] if len(args) > 1 else set()
        for tp in revoked:
            with contextlib.suppress(KeyError):
                LAG.remove(processor.group, tp.topic, str(tp.partition))

    app.on_partitions_revoked.connect(forget_lag)

    async def _start() -> None:
        await processor.start()

    app.task(_start)
    for interval, fn in timers:

        async def tick(_fn: Callable[[], Awaitable[None]] = fn) -> None:
            try:
                await _fn()
            except Exception:
                log.exception("periodic_task_failed", task=getattr(_fn, "__name__", "task"))

        app.timer(interval)(tick)
    return app


class _Worker(faust.Worker):
    """faust's worker, logging through our structlog JSON setup instead of its own."""

    service = "worker"
    log_json = True

    def on_setup_root_logger(self, logger: Any, level: int) -> None:
        configure_logging(self.service, logging.getLevelName(level), self.log_json)


def run_worker(app: faust.App, service: str, settings: CommonSettings) -> None:
    """Run the faust worker in the foreground until SIGTERM/SIGINT.

    Nothing to close on the way out: dead letters are written synchronously and
    the database connections end with the process.
    """
    _Worker.service = service
    _Worker.log_json = settings.log_json
    metrics.serve_metrics(settings.worker_metrics_port, settings.http_host)
    worker = _Worker(
        app,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        loop=uvloop.new_event_loop(),
    )
    worker.execute_from_commandline()
