"""shared/processing.py ``EventProcessor._apply`` without a broker or database: a
message applied at the first try makes no backoff; a transient failure makes one, the
first time it retries, and the message is applied after the wait; which errors are the
server's state (retried) and which the event's (dead-lettered)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from shared import events
from shared.events import CloudEvent
from shared.processing import TRANSIENT, EventProcessor, Message, Route
from shared.retry import Backoff
from shared.settings import CommonSettings

TOPIC = "test.pipeline.heartbeat"


class FakeConn:
    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    async def execute(self, *args: Any) -> str:
        return "INSERT 0 1"  # the inbox: a first delivery


class FakePool:
    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[FakeConn]:
        yield FakeConn()


def message() -> Message:
    beat = events.PipelineHeartbeat(
        beat_id="beat-1", emitted_at=datetime.now(UTC), emitter="test:1"
    )
    event = events.new_event(beat, source="test", subject="beat", time=datetime.now(UTC))
    return Message(TOPIC, 0, 0, None, event.to_bytes(), {})


class Processor:
    """An EventProcessor on fakes whose handler fails transiently ``failures`` times;
    ``backoffs`` counts the backoffs it made."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, failures: int) -> None:
        self.failures = failures
        self.applied = 0
        self.backoffs = 0
        settings = CommonSettings(consumer_retry_initial_s=0.001, consumer_retry_max_s=0.001)
        self.processor = EventProcessor(
            settings=settings,
            schema="test",
            group="test",
            routes=[Route(TOPIC, self.handle, events.PipelineHeartbeat.topic)],
        )
        self.processor._pool = FakePool()  # type: ignore[assignment]
        made = self.processor._backoff

        def counted() -> Backoff:
            self.backoffs += 1
            return made()

        async def started() -> None:
            return None

        monkeypatch.setattr(self.processor, "_backoff", counted)
        monkeypatch.setattr(self.processor, "start", started)

    async def handle(self, conn: Any, event: CloudEvent, payload: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise asyncpg.SerializationError("could not serialize access")
        self.applied += 1


async def test_a_message_applied_at_once_makes_no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    p = Processor(monkeypatch, failures=0)
    assert await p.processor.process(message()) == "applied"
    assert (p.applied, p.backoffs) == (1, 0)


async def test_retries_share_one_backoff_made_at_the_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = Processor(monkeypatch, failures=3)
    assert await p.processor.process(message()) == "applied"
    assert (p.applied, p.backoffs) == (1, 1)


async def test_a_batch_predicate_that_raises_sends_the_event_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """process_batch never raises: a route's batch predicate that fails is a no."""
    p = Processor(monkeypatch, failures=0)

    def broken(_: Any) -> bool:
        raise RuntimeError("a bug in the predicate")

    route = p.processor.routes[TOPIC]
    p.processor.routes[TOPIC] = Route(route.topic, route.handler, route.event_type, batch=broken)
    assert await p.processor.process_batch([message(), message()]) == ["applied", "applied"]
    assert p.applied == 2


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.SerializationError,  # 40001: lost a race
        asyncpg.DeadlockDetectedError,  # 40P01
        asyncpg.exceptions.DiskFullError,  # 53100
        asyncpg.exceptions.OutOfMemoryError,  # 53200
        asyncpg.TooManyConnectionsError,  # 53300
        asyncpg.AdminShutdownError,  # 57P01
        asyncpg.exceptions.CrashShutdownError,  # 57P02
        asyncpg.exceptions.QueryCanceledError,  # 57014: statement_timeout, a cancel
        asyncpg.exceptions.LockNotAvailableError,  # 55P03: lock_timeout
        asyncpg.IdleInTransactionSessionTimeoutError,  # 25P03
        asyncpg.exceptions.PostgresIOError,  # 58030
        asyncpg.exceptions.InternalClientError,  # the driver lost track of a connection
        asyncpg.InterfaceError,
        ConnectionResetError,
        TimeoutError,
    ],
)
def test_the_servers_state_is_retried_never_dead_lettered(error: type[Exception]) -> None:
    assert issubclass(error, TRANSIENT)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UniqueViolationError,  # 23505: what the event asks contradicts the data
        asyncpg.exceptions.CheckViolationError,
        asyncpg.exceptions.DataError,
        asyncpg.exceptions.UndefinedColumnError,  # a handler's bug
        ValueError,
        KeyError,
    ],
)
def test_what_the_handler_raises_of_the_event_is_the_events(error: type[Exception]) -> None:
    assert not issubclass(error, TRANSIENT)
