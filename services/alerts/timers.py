"""The timers process: fires due check-in deadlines and escalations, and delivers pages.

Every timer is a row with a due time (``patients.deadline_at``, ``alerts.next_check_at``,
``pages.next_attempt_at``), taken with ``FOR UPDATE SKIP LOCKED``, so several timers
processes share the work and each timer fires once; its effects and outbox events commit
in the transaction that moves it on. When nothing is due the loop sleeps until the
earliest due time, woken early by ``NOTIFY alerts_timers`` when a transaction schedules
something sooner: idle, it asks the database one question per ``TIMER_IDLE_POLL_S``.

Pages are POSTed concurrently (a slow or failing receiver holds one slot, never the
others), leased so that a process that dies mid-POST hands them on, and retried with
capped exponential backoff and jitter until the receiver answers 2xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from prometheus_client import Counter, Histogram, start_http_server

from services.alerts import handlers
from services.alerts import repository as repo
from services.alerts.alerting import Deps
from services.alerts.domain.paging import (
    backoff,
    delivered,
    host_allowed,
    signature,
    timestamped_signature,
)
from services.alerts.settings import SCHEMA, AlertsSettings
from shared import db, devclock
from shared.clock import utcnow
from shared.logging import get_logger
from shared.processing import TRANSIENT

log = get_logger(__name__)

TIMER_QUERIES = Counter(
    "alerts_timer_queries_total", "Database round trips of the timer loop", ["what"]
)
FIRED = Counter("alerts_timers_fired_total", "Due timers taken", ["kind"])
DELIVERIES = Counter("pages_attempts_total", "Page delivery attempts", ["outcome"])
DELIVERY_LATENCY = Histogram(
    "page_delivery_seconds",
    "From a page being queued to the receiver's 2xx",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)


class Timers:
    def __init__(
        self,
        settings: AlertsSettings,
        pool: asyncpg.Pool,
        http: httpx.AsyncClient,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.deps = Deps(pool=pool, settings=settings, clock=clock)
        self.pool = pool
        self.http = http
        self.clock = clock
        self.wake = asyncio.Event()
        self.in_flight: set[asyncio.Task[None]] = set()
        self.rng = random.Random()  # noqa: S311 (jitter, not security)
        self.draining = False
        self.listener: asyncpg.Connection | None = None
        self.last_mark = float("-inf")

    def _notified(self, *_: Any) -> None:
        self.wake.set()

    async def run(self) -> None:
        self.listener = listener = await asyncpg.connect(
            self.settings.database_url, **db.connect_kwargs(self.settings.database_url, SCHEMA)
        )
        await listener.add_listener(repo.WAKE_CHANNEL, self._notified)
        log.info("timers_started", idle_poll_s=self.settings.timer_idle_poll_s)
        try:
            while True:
                try:
                    await self.step()
                except TRANSIENT as exc:
                    log.warning("timers_retry", error=repr(exc))
                    await asyncio.sleep(1.0)
                if listener.is_closed():
                    raise ConnectionError("LISTEN connection lost")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), 2)

    async def step(self) -> None:
        """One pass: one indexed query for the earliest due time; fire what is due, else
        sleep until then (at most TIMER_IDLE_POLL_S, and at most a sixth of
        PIPELINE_STALL_S: each pass leaves its progress mark for the watchdog,
        services/alerts/watchdog.py) or until NOTIFY wakes the loop."""
        self.wake.clear()
        await self.mark_progress()
        slots = self.settings.page_concurrency - len(self.in_flight)
        # on the LISTEN connection: no pool round trip (and no reset queries) when idle
        assert self.listener is not None
        nxt = await repo.next_due(self.listener, include_pages=slots > 0 and not self.draining)
        TIMER_QUERIES.labels("next_due").inc()
        now = self.clock()
        if nxt is not None and nxt <= now and await self.fire_due():
            await asyncio.sleep(0)
            return
        delay = min(self.settings.timer_idle_poll_s, self.settings.pipeline_stall_s / 6)
        if nxt is not None:
            # due but held by another process (nothing fired): look again shortly
            delay = min(delay, max((nxt - now).total_seconds(), 0.05))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), delay)

    async def mark_progress(self) -> None:
        """The 'timers' progress mark, at most once a second (on the LISTEN connection)."""
        t = time.monotonic()
        if t - self.last_mark < 1.0:
            return
        assert self.listener is not None
        await repo.touch_progress(self.listener, "timers")
        self.last_mark = t

    async def fire_due(self) -> bool:
        now = self.clock()
        fired = await handlers.fire_deadlines(self.deps, now)
        TIMER_QUERIES.labels("deadlines").inc()
        escalated = await handlers.fire_escalations(self.deps, now)
        TIMER_QUERIES.labels("escalations").inc()
        FIRED.labels("deadline").inc(fired)
        FIRED.labels("escalation").inc(escalated)
        claimed = await self.claim_pages(now)
        return bool(fired or escalated or claimed)

    async def claim_pages(self, now: datetime) -> int:
        slots = self.settings.page_concurrency - len(self.in_flight)
        if slots <= 0 or self.draining:
            return 0
        lease = now + timedelta(seconds=self.settings.page_lease_s)
        async with self.pool.acquire() as conn:
            rows = await repo.claim_pages(conn, now, lease, slots)
        TIMER_QUERIES.labels("pages").inc()
        for row in rows:
            task = asyncio.create_task(self.deliver(row))
            self.in_flight.add(task)
            task.add_done_callback(self._delivered)
        FIRED.labels("page").inc(len(rows))
        return len(rows)

    def _delivered(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        self.wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("page_delivery_crashed", error=repr(task.exception()))

    async def deliver(self, row: Any) -> None:
        """POST one page once; record the attempt and either its delivery or its retry."""
        if not host_allowed(row["webhook_url"], self.settings.allowed_hosts):
            # on-call was set before the allow-list (or the list shrank): never call it
            await self._refuse(row, "the host is not in PAGE_ALLOWED_HOSTS")
            return
        started = self.clock()
        status, error, duration_ms = await post_page(
            self.http, self.settings, row["webhook_url"], row["body"], row["idempotency_key"]
        )
        finished = self.clock()
        ok = error is None
        retry_at = None
        if not ok:
            retry_at = finished + timedelta(
                seconds=backoff(
                    row["attempts"],
                    initial_s=self.settings.page_retry_initial_s,
                    max_s=self.settings.page_retry_max_s,
                    jitter=self.rng.random(),
                )
            )
        await self._record(
            row, started, duration_ms, status, error, finished if ok else None, retry_at
        )
        DELIVERIES.labels("delivered" if ok else "failed").inc()
        fields = {
            "page_id": str(row["page_id"]),
            "alert_id": str(row["alert_id"]),
            "tier": row["tier"] + 1,
            "attempt": row["attempts"],
        }
        if ok:
            DELIVERY_LATENCY.observe((finished - row["created_at"]).total_seconds())
            log.info("page_delivered", **fields, duration_ms=round(duration_ms, 2))
        else:
            log.warning("page_failed", **fields, error=error, retry_at=retry_at)

    async def _refuse(self, row: Any, reason: str) -> None:
        async with self.pool.acquire() as conn:
            await repo.refuse_page(conn, row["page_id"], reason, self.clock())
        DELIVERIES.labels("refused").inc()
        log.error(
            "page_refused",
            page_id=str(row["page_id"]),
            alert_id=str(row["alert_id"]),
            reason=reason,
        )

    async def _record(
        self,
        row: Any,
        started: datetime,
        duration_ms: float,
        status: int | None,
        error: str | None,
        delivered_at: datetime | None,
        retry_at: datetime | None,
    ) -> None:
        delay = 0.2
        while True:  # the POST happened: its record must not be lost to a blip
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await repo.record_attempt(
                        conn,
                        page_id=row["page_id"],
                        attempt=row["attempts"],
                        started_at=started,
                        duration_ms=duration_ms,
                        http_status=status,
                        error=error,
                        delivered_at=delivered_at,
                        retry_at=retry_at,
                    )
                return
            except TRANSIENT as exc:
                log.warning("page_record_retry", error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


async def post_page(
    http: httpx.AsyncClient,
    settings: AlertsSettings,
    url: str,
    body: bytes,
    idempotency_key: str,
) -> tuple[int | None, str | None, float]:
    """One signed POST of a page's stored bytes: (HTTP status, error or None when the
    receiver answered 2xx, milliseconds). No database: the watchdog pages with it while
    PostgreSQL is away (services/alerts/watchdog.py)."""
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": idempotency_key,
        "User-Agent": "interval-alerts/1.0",
    }
    if settings.page_signing_secret is not None:
        secret = settings.page_signing_secret.get_secret_value()
        # checked against the receiver's own wall clock: never the dev clock
        stamp = int(time.time())
        headers["X-Interval-Signature"] = signature(secret, body)
        headers["X-Interval-Timestamp"] = str(stamp)
        headers["X-Interval-Signature-V2"] = timestamped_signature(secret, stamp, body)
    t0 = time.perf_counter()
    status: int | None = None
    error: str | None = None
    try:
        resp = await http.post(url, content=body, headers=headers)
        status = resp.status_code
        if not delivered(status):
            error = f"HTTP {status}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    return status, error, (time.perf_counter() - t0) * 1000


async def serve_timers(settings: AlertsSettings, migrations: Path) -> None:
    """The timers process: migrate, then run the loop until SIGTERM/SIGINT, letting the
    deliveries in flight finish (a page cut off mid-POST is retried after its lease).
    With DEV_CLOCK=1 a move of the stack's clock wakes the loop: whatever fell due in the
    skipped span fires at once."""
    devclock.refuse_unless_loopback(settings, "alerts timers")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    delay = 0.5
    while not stop.is_set():  # start even while the database is still coming up
        try:
            await db.migrate(settings.database_url, SCHEMA, db.migration_files(migrations))
            # DEV_CLOCK=1: the stack's time before the first timer fires (else a no-op)
            watcher = await devclock.watch(settings, "alerts-timers")
            pool = await db.create_pool(
                settings.database_url, SCHEMA, min_size=2, max_size=settings.db_pool_max
            )
            break
        except (*TRANSIENT, ConnectionError) as exc:
            log.warning("timers_waiting_for_database", error=repr(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    else:
        return
    if settings.alerts_timers_metrics_port:
        start_http_server(settings.alerts_timers_metrics_port, addr=settings.http_host)
    limits = httpx.Limits(max_connections=settings.page_concurrency, max_keepalive_connections=32)
    async with httpx.AsyncClient(
        timeout=settings.page_timeout_s, limits=limits, follow_redirects=False
    ) as http:
        timers = Timers(settings, pool, http)
        if watcher is not None:
            watcher.on_change(timers.wake.set)

        async def forever() -> None:
            delay = 1.0
            while True:
                try:
                    await timers.run()
                except (*TRANSIENT, ConnectionError) as exc:
                    log.warning("timers_restart", error=repr(exc), retry_in_s=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)

        task = asyncio.create_task(forever())
        await stop.wait()
        timers.draining = True
        if timers.in_flight:
            await asyncio.wait(set(timers.in_flight), timeout=settings.page_timeout_s + 1)
        for t in (*timers.in_flight, task):  # cut off: leased pages are retried later
            t.cancel()
        await asyncio.gather(*timers.in_flight, task, return_exceptions=True)
    await devclock.unwatch()
    try:
        await asyncio.wait_for(pool.close(), 5)
    except TimeoutError:
        pool.terminate()
    log.info("timers_stopped")
