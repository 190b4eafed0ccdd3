"""The dev clock's I/O (docs/architecture.md "Dev clock"; only with ``DEV_CLOCK=1``).

The processes of a stack share one PostgreSQL database, so the shared offset is one row
there: ``devclock.clock`` (a schema of its own, owned by no service, created idempotently
by whichever process starts first). ``POST /v1/dev/clock`` adds to it and
``NOTIFY devclock`` in the same transaction; every process keeps its copy
(``shared.clock``) current with a ``ClockWatcher``: one LISTEN connection (a move is
known within milliseconds) that re-reads the row every ``REREAD_S`` in case a
notification was missed. A process's ``on_change`` callbacks run when its copy moved
(the alerts timers loop wakes on it, so what fell due in the skipped span fires at once).
The gauge ``dev_clock_offset_seconds`` on every process's /metrics shows its copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from prometheus_client import Gauge
from pydantic import BaseModel, ConfigDict, Field

from shared import clock
from shared.access import Rule
from shared.db import DATABASE_ERRORS, Conn, connect_kwargs
from shared.logging import get_logger
from shared.retry import Backoff
from shared.settings import ProcessSettings
from shared.web import ERRORS

log = get_logger(__name__)

CHANNEL = "devclock"
REREAD_S = 1.0
OFFSET = Gauge("dev_clock_offset_seconds", "How far this process's clock is ahead (DEV_CLOCK)")
# Who may move the clock when API_TOKENS_FILE is set: any role that may change anything
# (a test or demo driver holds one of them); a read-only viewer may only read it.
RULES = (Rule("POST", r"/v1/dev/clock", ("intake", "scheduler", "clinician")),)

_DDL = """
CREATE SCHEMA IF NOT EXISTS devclock;
CREATE TABLE IF NOT EXISTS devclock.clock (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    offset_s   bigint NOT NULL DEFAULT 0 CHECK (offset_s >= 0),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO devclock.clock (one) VALUES (true) ON CONFLICT DO NOTHING;
"""
_LOCK = int.from_bytes(hashlib.sha256(b"devclock").digest()[:8], "big", signed=True)


def refuse_unless_loopback(settings: ProcessSettings, process: str) -> None:
    """Stop the process at start (exit 1, the reason on stderr) when DEV_CLOCK=1 and it
    would listen anywhere but loopback; every process listens (if at all) on HTTP_HOST."""
    if not settings.dev_clock:
        return
    reason = clock.loopback_refusal(process, [("HTTP_HOST", settings.http_host)])
    if reason is not None:
        log.error("dev_clock_refused", process=process, http_host=settings.http_host)
        raise SystemExit(reason)


async def ensure(conn: Conn) -> None:
    """The clock's table and its one row (several processes may start at once)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        await conn.execute(_DDL)


async def read(conn: Conn) -> int:
    value = await conn.fetchval("SELECT offset_s FROM devclock.clock")
    return int(value or 0)


async def advance(conn: Conn, advance_s: int) -> int:
    """Move the stack's clock ``advance_s`` forward; the new offset (every process hears)."""
    async with conn.transaction():
        current = await conn.fetchval("SELECT offset_s FROM devclock.clock FOR UPDATE")
        new = clock.check_advance(advance_s, int(current))
        await conn.execute(
            "UPDATE devclock.clock SET offset_s = $1, updated_at = clock_timestamp()", new
        )
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(new))
    return new


class ClockWatcher:
    """Keeps this process's offset equal to the stack's (see the module docstring)."""

    def __init__(self, dsn: str, process: str) -> None:
        self.dsn = dsn
        self.process = process
        self.callbacks: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None

    def on_change(self, fn: Callable[[], None]) -> None:
        self.callbacks.append(fn)

    def adopt(self, offset_s: int) -> None:
        if clock.set_offset(offset_s):
            OFFSET.set(offset_s)
            log.info("dev_clock_moved", offset_s=offset_s, now=clock.utcnow().isoformat())
            for fn in self.callbacks:
                fn()

    def _notified(self, *args: Any) -> None:  # (connection, pid, channel, payload)
        with contextlib.suppress(ValueError, IndexError):
            self.adopt(int(args[3]))

    async def _connect(self) -> asyncpg.Connection:
        options = connect_kwargs(self.dsn)
        options["server_settings"] = {"application_name": f"devclock-{self.process}"}
        conn: asyncpg.Connection = await asyncpg.connect(self.dsn, timeout=10, **options)
        try:
            await ensure(conn)
            await conn.add_listener(CHANNEL, self._notified)
            self.adopt(await read(conn))
        except BaseException:
            await conn.close(timeout=2)
            raise
        return conn

    async def start(self) -> None:
        """Read the offset now (before the process does anything), then keep it current."""
        conn = await self._connect()
        OFFSET.set(clock.offset_s())
        log.info("dev_clock_on", offset_s=clock.offset_s(), now=clock.utcnow().isoformat())
        self._task = asyncio.create_task(self._run(conn))

    async def _run(self, conn: asyncpg.Connection | None) -> None:
        backoff = Backoff(0.5, 5.0)
        while True:
            try:
                if conn is None or conn.is_closed():
                    conn = await self._connect()
                    backoff.reset()
                await asyncio.sleep(REREAD_S)  # notifications arrive meanwhile
                self.adopt(await read(conn))
            except DATABASE_ERRORS as exc:
                delay = backoff.delay()
                log.warning("dev_clock_reconnect", error=repr(exc), retry_in_s=delay)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
                conn = None
                await asyncio.sleep(delay)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


_watcher: ClockWatcher | None = None


async def watch(settings: ProcessSettings, process: str) -> ClockWatcher | None:
    """Start this process's watcher once (None without DEV_CLOCK=1: the wall clock)."""
    global _watcher
    if not settings.dev_clock:
        return None
    if _watcher is None:
        watcher = ClockWatcher(settings.database_url, process)
        await watcher.start()
        _watcher = watcher
    return _watcher


async def unwatch() -> None:
    global _watcher
    if _watcher is not None:
        await _watcher.stop()
        _watcher = None


class ClockOut(BaseModel):
    now: datetime = Field(description="the stack's time (UTC)")
    offset_s: int = Field(description="seconds the stack's time is ahead of the wall clock")


class AdvanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    advance_s: int = Field(
        strict=True,
        le=clock.MAX_ADVANCE_S,
        description="seconds to move forward (> 0; zero or less is a 409)",
    )


def router(pool: Callable[[Request], asyncpg.Pool]) -> APIRouter:
    """``/v1/dev/clock``: included only with DEV_CLOCK=1 (otherwise the path is a 404)."""
    routes = APIRouter(prefix="/v1/dev", tags=["dev"])

    @routes.get(
        "/clock", response_model=ClockOut, responses=ERRORS, summary="The stack's time (dev)"
    )
    async def get_clock() -> ClockOut:
        return ClockOut(now=clock.utcnow(), offset_s=clock.offset_s())

    @routes.post(
        "/clock",
        response_model=ClockOut,
        responses=ERRORS,
        summary="Move the stack's time forward for every process (dev; backwards is a 409)",
    )
    async def advance_clock(body: AdvanceIn, request: Request) -> ClockOut:
        async with pool(request).acquire() as conn:
            new = await advance(conn, body.advance_s)
        if _watcher is not None:
            _watcher.adopt(new)  # this process at once; the others on NOTIFY
        return ClockOut(now=clock.utcnow(), offset_s=clock.offset_s())

    return routes


def rules(settings: ProcessSettings, service_rules: Sequence[Rule]) -> tuple[Rule, ...]:
    """The service's access rules, with the clock's when it is on."""
    return (*RULES, *service_rules) if settings.dev_clock else tuple(service_rules)
