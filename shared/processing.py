"""Applying one consumed event: idempotent, retrying, dead-lettering.

Every message ends in exactly one of
- applied: the handler's effect and the event id (inbox) committed together;
- duplicate: the event id was already in the inbox (a redelivery, or another instance
  of the safety lane applied it: services/alerts/safety.py);
- ignored: an event the service has nothing to do with (``Route.ignore``, e.g. a calm
  check-in for scheduling): nothing is written, not even its id (a redelivery is ignored
  again, with the same lack of effect), so it costs no statement, never waits behind
  another event's locks, and does not grow the inbox;
- dead-lettered: a message that can never succeed (not a CloudEvent, wrong type,
  invalid payload, a handler that raised a non-transient error) is written to
  ``<topic>.dlq`` with the reason and its origin in headers, acknowledged by the
  broker before we move on;
- retried: a transient failure (database or broker away) is retried with capped
  exponential backoff, for as long as it takes, holding the partition's order. So is
  any failure outside the handler (taking a connection, BEGIN, the inbox row, COMMIT):
  that is never the message's fault. A chaos run dead-lettered an eligible patient's
  decision event when BEGIN on a connection broken by a PostgreSQL restart raised
  asyncpg's InternalClientError, and the patient was never offered a series.

Under load a partition's lane hands over what queued up meanwhile
(``EventProcessor.process_batch``): where the route allows it (``Route.batch``: its
handler touches only its own patient's rows), consecutive events share one transaction,
their inbox rows written by one statement. A batch that fails in any way rolls back and
its events are applied one by one as above, so each ends as it would have alone.

Nothing here knows how messages are fetched: the faust worker (shared/consumer.py) and
the alerts safety lane (services/alerts/safety.py) hand each message to
``EventProcessor.process``. A service wires its handlers by payload type (``Reaction``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter
from pydantic import ValidationError

from shared import devclock, inbox, metrics
from shared.db import UNREACHABLE, Conn, create_pool
from shared.events import (
    CONTENT_TYPE,
    PAYLOADS,
    CloudEvent,
    Payload,
    dlq_topic,
    without_binary_mode_headers,
)
from shared.kafka import idempotent_producer
from shared.logging import get_logger
from shared.retry import Backoff
from shared.settings import CommonSettings

log = get_logger(__name__)

Handler = Callable[[Conn, CloudEvent, Any], Awaitable[None]]

CONSUMED = Counter("events_consumed_total", "Events consumed", ["topic", "outcome"])
DEAD_LETTERED = Counter("events_dead_lettered_total", "Events sent to a .dlq", ["topic", "reason"])
RETRIES = Counter("consumer_retries_total", "Transient failures retried", ["topic"])
BATCHES = Counter(
    "consumer_batches_total",
    "Transactions that applied several events of a partition at once, by outcome "
    "(committed, or split: rolled back and applied one by one)",
    ["topic", "outcome"],
)
BATCHED = Counter("consumer_batched_events_total", "Events applied inside a batch", ["topic"])
# Worth retrying: PostgreSQL not reachable (shared/db.py UNREACHABLE), the state of the
# server rather than of the event (SQLSTATE class 40, a transaction rolled back: lost a
# race, deadlock; 53, out of disk, memory or connections; 57, an operator or a timeout
# stopped it, or the server is shutting down; 58, an I/O error; 55P03, a lock not
# available), a connection the driver lost track of, the broker away. Anything else a
# handler raises is the message's. Retrying is the safe side: a fault that lasts stalls
# its partition, which shows as lag and on the pipeline watchdog; a dead letter would be
# an event lost.
TRANSIENT = (
    *UNREACHABLE,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.PostgresSystemError,
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.InternalClientError,
    # our own transaction ended by PostgreSQL (CONSUMER_IDLE_IN_TRANSACTION_S): try again
    asyncpg.IdleInTransactionSessionTimeoutError,
    KafkaError,
)


class PermanentError(Exception):
    """Raised by a handler for an event that can never be applied; it is dead-lettered."""


class _HandlerFailed(Exception):
    """A handler raised something neither transient nor a refusal (``__cause__``): the
    one failure, with PermanentError, that dead-letters a decodable event."""


@dataclass(frozen=True)
class Route:
    """Events of ``event_type`` read from ``topic`` (the same name unless versioned or a test)."""

    topic: str
    handler: Handler
    event_type: str = ""
    # whether an event (by its payload) may share a transaction with its neighbours on
    # its partition (process_batch): only where its handler then locks no more than its
    # own patient's rows, so the batch takes its locks in the order every other writer
    # does (the patient first) and never waits on a lock while holding another
    # patient's that the safety lane may want. None: every event alone.
    batch: Callable[[Any], bool] | None = None
    # events (by payload) the handler would do nothing with: counted, nothing written,
    # no transaction, no handler (a predicate that raises leaves the event to the handler)
    ignore: Callable[[Any], bool] | None = None

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


async def _run_handler(handler: Handler, conn: Conn, event: CloudEvent, payload: Any) -> None:
    """The handler, its failures sorted: transient ones and refusals as they are, any
    other as ``_HandlerFailed`` (the message's fault: dead-lettered)."""
    try:
        await handler(conn, event, payload)
    except (*TRANSIENT, PermanentError):
        raise
    except Exception as exc:
        raise _HandlerFailed from exc


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
                    idle_in_transaction_s=self.settings.consumer_idle_in_transaction_s,
                )
            if self._producer is None:
                producer = idempotent_producer(
                    self.settings.kafka_servers,
                    f"{self.group}-dlq",
                    self.settings.kafka_request_timeout_ms,
                )
                try:
                    await producer.start()
                except BaseException:
                    # never kept half-started: the next start() makes a new one
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                self._producer = producer

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

    async def process_batch(self, msgs: Sequence[Message]) -> list[str]:
        """Apply one partition's messages in their order; their outcomes. Where the topic's
        route allows it, consecutive messages that decode share one transaction (a message
        that would be dead-lettered goes alone, between them). Never raises (but for
        cancellation)."""
        if not msgs:
            return []
        route = self.routes[msgs[0].topic]
        if len(msgs) == 1 or route.batch is None:
            return [await self.process(m) for m in msgs]
        outcomes: list[str | None] = [None] * len(msgs)
        run: list[tuple[int, Message, CloudEvent, Any]] = []

        async def flush() -> None:
            together = await self._apply_together(route, [(m, e, p) for _, m, e, p in run])
            for (i, *_), outcome in zip(run, together, strict=True):
                outcomes[i] = outcome
            run.clear()

        for i, msg in enumerate(msgs):
            ready = _decoded(route, msg)
            if ready is not None and _ignored(route, ready[1]):
                outcomes[i] = _count(msg.topic, "ignored")  # no effect: order is moot
            elif ready is None or not _shares(route, ready[1]):
                # alone, in its place in the order (dead-lettered, or not batchable)
                await flush()
                outcomes[i] = await self.process(msg)
            else:
                run.append((i, msg, *ready))
        await flush()
        done = [outcome for outcome in outcomes if outcome is not None]
        assert len(done) == len(msgs), "every message of the batch has its outcome"
        return done

    async def _apply_together(
        self, route: Route, run: list[tuple[Message, CloudEvent, Any]]
    ) -> list[str]:
        """``run`` in one transaction: the inbox rows by one statement, then each first-time
        event's handler in order. Any failure: rolled back, and each applied alone."""
        if len(run) <= 1:
            return [await self.process(msg) for msg, _, _ in run]
        topic = route.topic
        try:
            await self.start()
            assert self._pool is not None
            outcomes = []
            with metrics.commit_scope():
                async with self._pool.acquire() as conn, conn.transaction():
                    fresh = await inbox.first_times(conn, [(e.id, topic) for _, e, _ in run])
                    for msg, event, payload in run:
                        if event.id not in fresh:
                            outcomes.append("duplicate")
                            continue
                        fresh.discard(event.id)  # the same id twice in the batch: once
                        with structlog.contextvars.bound_contextvars(
                            topic=topic,
                            partition=msg.partition,
                            offset=msg.offset,
                            event_id=event.id,
                        ):
                            await route.handler(conn, event, payload)
                        outcomes.append("applied")
        except Exception as exc:
            BATCHES.labels(topic, "split").inc()
            log.info("consumer_batch_split", topic=topic, size=len(run), error=repr(exc))
            return [await self.process(msg) for msg, _, _ in run]
        BATCHES.labels(topic, "committed").inc()
        BATCHED.labels(topic).inc(len(run))
        for outcome in outcomes:
            CONSUMED.labels(topic, outcome).inc()
        return outcomes

    async def _apply(self, route: Route, msg: Message, event: CloudEvent) -> str:
        if event.type != route.expected_type or event.type not in PAYLOADS:
            return await self._dead_letter(msg, "unexpected_type", event.type)
        try:
            payload = event.payload(tolerant=True)  # unknown fields: docs/events.md
        except ValidationError as exc:
            return await self._dead_letter(msg, "invalid_payload", _first_error(exc))
        if _ignored(route, payload):
            return _count(msg.topic, "ignored")  # nothing to apply, nothing to record
        backoff: Backoff | None = None  # made at the first retry: most messages need none
        while True:
            try:
                await self.start()
            except Exception as exc:  # our dependencies, never the message's fault: retry
                backoff = backoff or self._backoff()
                delay = backoff.delay()
                log.error("consumer_cannot_start", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                continue
            assert self._pool is not None
            try:
                outcome = await self._apply_once(route, event, payload, msg.topic)
                CONSUMED.labels(msg.topic, outcome).inc()
                return outcome
            except PermanentError as exc:
                return await self._dead_letter(msg, "rejected", str(exc), event.id)
            except _HandlerFailed as failed:
                bug = failed.__cause__
                log.error(
                    "consumer_handler_failed", topic=msg.topic, event_id=event.id, exc_info=bug
                )
                return await self._dead_letter(msg, "handler_error", repr(bug), event.id)
            except Exception as exc:
                # transient, or outside the handler (the pool, BEGIN, the inbox, COMMIT):
                # never the message's fault, so it waits; a fault that lasts shows as lag
                RETRIES.labels(msg.topic).inc()
                backoff = backoff or self._backoff()
                delay = backoff.delay()
                log.warning(
                    "consumer_retry",
                    topic=msg.topic,
                    event_id=event.id,
                    error=repr(exc),
                    retry_in_s=delay,
                    transient=isinstance(exc, TRANSIENT),
                )
                await asyncio.sleep(delay)

    async def _apply_once(self, route: Route, event: CloudEvent, payload: Any, topic: str) -> str:
        """The event's effect and its inbox row in one transaction: applied or duplicate.
        The handlers' business counters move only once the transaction committed."""
        assert self._pool is not None
        with metrics.commit_scope():
            async with self._pool.acquire() as conn, conn.transaction():
                if not await inbox.first_time(conn, event.id, topic):
                    return "duplicate"
                await _run_handler(route.handler, conn, event, payload)
                return "applied"

    def _backoff(self) -> Backoff:
        return self.settings.backoff(
            initial_s=self.settings.consumer_retry_initial_s,
            max_s=self.settings.consumer_retry_max_s,
        )

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
        if headers["content-type"] == CONTENT_TYPE.encode():
            # the value is a structured-mode event: a ce_ header (relays before the
            # headers were dropped set ce_id) would make a CloudEvents reader take the
            # dead letter for binary mode
            headers = without_binary_mode_headers(headers)
        backoff = self._backoff()
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
                delay = backoff.delay()
                log.warning("dlq_retry", topic=msg.topic, error=repr(exc), retry_in_s=delay)
                if isinstance(exc, KafkaError) and not exc.retriable and self._producer:
                    # broken for good (e.g. OutOfOrderSequenceNumber after a broker
                    # restart, shared/relay.py _replace_producer): start() makes a new one
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self._producer.stop(), 5)
                    self._producer = None
                await asyncio.sleep(delay)
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


P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class Reaction(Generic[P]):
    """``fn(conn, deps, event, payload)`` for every event whose payload is ``payload``, read
    from that payload's topic. Wired by payload type, not by topic string, so a handler
    wired to the wrong payload is a type error (mypy cannot solve ``P``), not a dead
    letter at run time (tests/unit/shared/test_reactions.py).

    Keep a service's reactions in an unannotated module-level tuple
    (``REACTIONS = (Reaction(...), ...)``): written inline as an argument typed
    ``Sequence[Reaction[Any]]``, mypy takes ``P`` to be ``Any`` and checks nothing."""

    payload: type[P]
    fn: Callable[[Conn, Any, CloudEvent, P], Awaitable[None]]
    # which of its events may share a transaction with their neighbours (Route.batch)
    batch: Callable[[P], bool] | None = None
    # which of its events ``fn`` would do nothing with: counted, never handled (Route.ignore)
    ignore: Callable[[P], bool] | None = None

    @property
    def event_type(self) -> str:
        return self.payload.topic


def service_processor(
    *,
    settings: CommonSettings,
    schema: str,
    group: str,
    make_deps: Callable[[asyncpg.Pool], Any],
    reactions: Sequence[Reaction[Any]],
) -> EventProcessor:
    """A service's processor: each reaction's ``fn(conn, deps, event, payload)`` routed from
    its payload's topic; ``deps`` are built from the pool once the processor started."""
    processor: EventProcessor
    types = [r.event_type for r in reactions]
    if len(set(types)) != len(types):
        raise ValueError(f"one reaction per event type: {sorted(types)}")

    def route(reaction: Reaction[Any]) -> Route:
        fn = reaction.fn

        async def handle(conn: Conn, event: CloudEvent, payload: Any) -> None:
            assert processor.pool is not None
            await fn(conn, make_deps(processor.pool), event, payload)

        return Route(
            topic=settings.topic(reaction.event_type),
            handler=handle,
            event_type=reaction.event_type,
            batch=reaction.batch,
            ignore=reaction.ignore,
        )

    processor = EventProcessor(
        settings=settings,
        schema=schema,
        group=group,
        routes=[route(r) for r in reactions],
    )
    return processor


def _asks(route: Route, predicate: Callable[[Any], bool] | None, payload: Any) -> bool:
    """A route's predicate (``batch``, ``ignore``) on the payload; one that is missing or
    raises says no (the event then goes alone to its handler, where its own failure is
    dealt with)."""
    try:
        return predicate is not None and bool(predicate(payload))
    except Exception:
        log.exception("consumer_route_predicate_failed", topic=route.topic)
        return False


def _count(topic: str, outcome: str) -> str:
    CONSUMED.labels(topic, outcome).inc()
    return outcome


def _ignored(route: Route, payload: Any) -> bool:
    """Whether the route has nothing to do with this event (Route.ignore)."""
    return _asks(route, route.ignore, payload)


def _decoded(route: Route, msg: Message) -> tuple[CloudEvent, Any] | None:
    """The message's event and payload, or None where ``process`` would dead-letter it."""
    try:
        event = CloudEvent.from_bytes(msg.value, tolerant=True)
        if event.type != route.expected_type or event.type not in PAYLOADS:
            return None
        return event, event.payload(tolerant=True)
    except ValidationError:
        return None


def _shares(route: Route, payload: Any) -> bool:
    """Whether the route lets this event share a transaction (Route.batch)."""
    return _asks(route, route.batch, payload)


def _first_error(exc: ValidationError) -> str:
    errs = exc.errors()
    if not errs:
        return "invalid"
    e = errs[0]
    return f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
