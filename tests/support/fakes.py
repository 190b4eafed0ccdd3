"""In-memory stand-ins shared by the unit tests of the services' shells
(tests/unit/alerts/fakes.py, tests/unit/scheduling/fakes.py): a connection whose only SQL
is the outbox's INSERT (it keeps the enqueued events; ``transaction()`` does nothing), and
a pool that hands it out and counts how often."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from shared.db import Conn
from shared.events import CloudEvent


class OutboxConn:
    """Keeps the events enqueued through shared/outbox.py, in order (in ``outbox``, which
    may be a list the test's fake repository shares)."""

    def __init__(self, outbox: list[CloudEvent] | None = None) -> None:
        self.outbox: list[CloudEvent] = [] if outbox is None else outbox

    async def execute(self, sql: str, *args: Any) -> str:
        assert sql.startswith("INSERT INTO outbox"), f"unexpected SQL in a unit test: {sql}"
        self.outbox.append(CloudEvent.from_bytes(args[3]))
        return "INSERT 0 1"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    def as_conn(self) -> Conn:
        return cast(Conn, self)

    def events(self, topic: str) -> list[dict[str, Any]]:
        """The payloads enqueued on ``topic``, in order."""
        return [e.data for e in self.outbox if e.type == topic]


class OnePool:
    """A pool of that one connection; ``transactions`` counts the acquisitions."""

    def __init__(self, conn: OutboxConn) -> None:
        self.conn = conn
        self.transactions = 0

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[OutboxConn]:
        self.transactions += 1
        yield self.conn
