"""The timers process: fires due check-in deadlines and escalations, and delivers pages.

Every timer is a row with a due time (``patients.deadline_at``, ``alerts.next_check_at``,
``pages.next_attempt_at``), taken with ``FOR UPDATE SKIP LOCKED``, so several timers
processes share the work and each timer fires once; its effects and outbox events commit
in the transaction that moves it on. When nothing is due the loop sleeps until the
earliest due time, woken early by ``NOTIFY alerts_timers`` when a transaction schedules
something sooner: idle, it asks the database one question per ``TIMER_IDLE_POLL_S``.

Pages are POSTed concurrently (a slow or failing receiver holds one slot, never the
others), leased so that a process that dies mid-POST hands them on, and retried with
capped exponential backoff and jitter until the receiver answers 2xx
(services/alerts/alerting/delivery.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from prometheus_client import Counter, start_http_server

from services.alerts import repository as repo
from services.alerts.alerting import make_deps
from services.alerts.alerting.delivery import Deliverer
from services.alerts.alerting.raising import apply_decision, raise_all
from services.alerts.deps import Deps
from services.alerts.domain import policy
from services.alerts.domain.monitoring import Monitor, on_deadline
from services.alerts.settings import SCHEMA, SOURCE, AlertsSettings
from services.alerts.shifts import ShiftNotices
from shared import db, devclock, events, metrics, outbox
from shared.clock import utcnow
from shared.heap import freeze_startup
from shared.logging import get_logger
from shared.processing import TRANSIENT
from shared.retry import until_done

log = get_logger(__name__)

TIMER_QUERIES = Counter(
    "alerts_timer_queries_total", "Database round trips of the timer loop", ["what"]
)
FIRED = Counter("alerts_timers_fired_total", "Due timers taken", ["kind"])
MISSED = Counter("checkins_missed_total", "Expected check-ins that did not arrive in time")


# --- the due timers: one transaction per batch, events via the outbox --------------------


@metrics.counted_on_commit
async def fire_deadlines(deps: Deps, now: datetime) -> int:
    """Every due check-in deadline (a batch, rows another process holds are skipped):
    one ``checkin.missed`` per miss, in the transaction that moves the timer on; a run of
    misses at the threshold raises (or repeats) ``missed_checkins``."""
    rule = deps.monitoring
    async with deps.pool.acquire() as conn, conn.transaction():
        due = await repo.due_patients(conn, now, deps.timer_batch)
        if not due:
            return 0
        fired: list[tuple[repo.DuePatient, Monitor, int]] = []
        found: list[dict[str, Any]] = []  # the checkin.missed payloads
        raise_for: list[tuple[repo.DuePatient, int]] = []
        for d in due:
            m, misses = on_deadline(d.monitor, now, rule)
            for miss in misses:
                found.append(
                    {
                        "patient_id": d.patient_id,
                        "site_id": d.site_id,
                        "due_at": miss.due_at,
                        "deadline_at": miss.deadline_at,
                        "missed_at": now,
                        "consecutive_misses": miss.consecutive,
                    }
                )
                if policy.from_misses(miss.consecutive, rule.threshold, now):
                    raise_for.append((d, miss.consecutive))
            fired.append((d, m, len(misses)))
        metrics.after_commit(MISSED.inc, len(found))  # once a batch, not once a row
        await repo.save_deadlines(conn, now, fired, rule)
        # validated as one list and encoded without an envelope model, the ids in one
        # draw: a site's 9:00 is 100,000 of them (shared/events.py new_events_bytes)
        subjects = [p["patient_id"] for p in found]
        ids = events.uuid4_strings(len(found))
        values = events.new_events_bytes(
            events.CheckinMissed,
            found,
            source=SOURCE,
            subjects=subjects,
            time=now,
            event_ids=ids,
        )
        await outbox.enqueue_encoded(conn, events.CheckinMissed.topic, ids, subjects, values)
        for d, consecutive in raise_for:
            await raise_all(
                conn,
                deps,
                d.patient_id,
                d.site_id,
                policy.from_misses(consecutive, rule.threshold, now),
                None,
                now,
            )
        return len(due)


@metrics.counted_on_commit
async def fire_escalations(deps: Deps, now: datetime) -> int:
    """Every alert whose escalation decision is due: page the next tier, re-page, or
    just move the next look on."""
    async with deps.pool.acquire() as conn, conn.transaction():
        rows = await repo.due_alerts(conn, now, deps.timer_batch)
        for row in rows:
            await apply_decision(conn, deps, row, now)
        return len(rows)


# --- the loop ------------------------------------------------------------------------------


class Timers:
    def __init__(
        self,
        settings: AlertsSettings,
        pool: asyncpg.Pool,
        http: httpx.AsyncClient,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.deps = make_deps(settings, pool, clock)
        self.pool = pool
        self.delivery = Deliverer(settings, pool, http, clock)
        self.clock = clock
        self.wake = asyncio.Event()
        self.in_flight: set[asyncio.Task[None]] = set()
        self.draining = False
        # set at SIGTERM: the loop ends at its next pass, even if a cancellation is lost
        # (Python 3.11's wait_for can swallow one that lands as its wait completes)
        self.stopping = False
        self.listener: asyncpg.Connection | None = None
        self.last_mark = float("-inf")
        self.shifts = ShiftNotices(settings, pool, self.delivery)
        self.last_shift_scan = float("-inf")  # monotonic; -inf: scan at the next pass

    def clock_moved(self) -> None:
        """The dev clock moved: shifts that start in the skipped span are looked for now."""
        self.last_shift_scan = float("-inf")
        self.wake.set()

    def _notified(self, *_: Any) -> None:
        self.wake.set()

    async def run(self) -> None:
        self.listener = listener = await asyncpg.connect(
            self.settings.database_url, **db.connect_kwargs(self.settings.database_url, SCHEMA)
        )
        await listener.add_listener(repo.WAKE_CHANNEL, self._notified)
        log.info("timers_started", idle_poll_s=self.settings.timer_idle_poll_s)
        try:
            while not self.stopping:
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
        await self.scan_shifts()
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
        TIMER_QUERIES.labels("progress").inc()
        self.last_mark = t

    async def scan_shifts(self) -> None:
        """Every SHIFT_SCAN_S: plan the notices of the shifts starting soon."""
        t = time.monotonic()
        if t - self.last_shift_scan < self.settings.shift_scan_s:
            return
        self.last_shift_scan = t
        try:
            planned = await self.shifts.scan(self.clock())
        except TRANSIENT:
            raise
        except Exception as exc:  # a notice never stops the timers that page
            log.exception("shift_scan_failed", error=repr(exc))
            return
        TIMER_QUERIES.labels("shifts").inc()
        if planned:
            log.info("shift_notices_planned", notices=planned)

    async def send_notices(self, now: datetime) -> int:
        """The shift notices due (none while draining); a bug in them is logged, and
        never stops the timers that page."""
        if self.draining:
            return 0
        try:
            return await self.shifts.send_due(now)
        except TRANSIENT:
            raise
        except Exception as exc:
            log.exception("shift_notices_failed", error=repr(exc))
            return 0

    async def fire_due(self) -> bool:
        now = self.clock()
        lanes = self.settings.timer_concurrency
        fired = sum(await asyncio.gather(*(fire_deadlines(self.deps, now) for _ in range(lanes))))
        TIMER_QUERIES.labels("deadlines").inc(lanes)
        escalated = await fire_escalations(self.deps, now)
        TIMER_QUERIES.labels("escalations").inc()
        FIRED.labels("deadline").inc(fired)
        FIRED.labels("escalation").inc(escalated)
        claimed = await self.claim_pages(now)
        notices = await self.send_notices(now)
        FIRED.labels("shift_notice").inc(notices)
        return bool(fired or escalated or claimed or notices)

    async def claim_pages(self, now: datetime) -> int:
        slots = self.settings.page_concurrency - len(self.in_flight)
        if slots <= 0 or self.draining:
            return 0
        lease = now + timedelta(seconds=self.settings.page_lease_s)
        async with self.pool.acquire() as conn:
            rows = await repo.claim_pages(conn, now, lease, slots)
        TIMER_QUERIES.labels("pages").inc()
        for row in rows:
            task = asyncio.create_task(self.delivery.deliver(row))
            self.in_flight.add(task)
            task.add_done_callback(self._delivered)
        FIRED.labels("page").inc(len(rows))
        return len(rows)

    def _delivered(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        self.wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("page_delivery_crashed", error=repr(task.exception()))


async def _prepare(
    settings: AlertsSettings, migrations: Path
) -> tuple[devclock.ClockWatcher | None, asyncpg.Pool]:
    """The schema migrated, the dev clock followed (DEV_CLOCK=1: the stack's time before
    the first timer fires; else a no-op) and a pool open."""
    await db.migrate(settings.database_url, SCHEMA, db.migration_files(migrations))
    watcher = await devclock.watch(settings, "alerts-timers")
    pool = await db.create_pool(
        settings.database_url, SCHEMA, min_size=2, max_size=settings.db_pool_max
    )
    return watcher, pool


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

    started = await until_done(  # start even while the database is still coming up
        lambda: _prepare(settings, migrations),
        retry_on=(*TRANSIENT, ConnectionError),
        backoff=settings.backoff(),
        on_retry=lambda exc, delay: log.warning(
            "timers_waiting_for_database", error=repr(exc), retry_in_s=delay
        ),
        stop=stop,
    )
    if started is None:
        return
    watcher, pool = started
    if settings.alerts_timers_metrics_port:
        start_http_server(settings.alerts_timers_metrics_port, addr=settings.http_host)
    limits = httpx.Limits(max_connections=settings.page_concurrency, max_keepalive_connections=32)
    async with httpx.AsyncClient(
        timeout=settings.page_timeout_s, limits=limits, follow_redirects=False
    ) as http:
        timers = Timers(settings, pool, http)
        if watcher is not None:
            watcher.on_change(timers.clock_moved)
        # started: what exists now leaves the collector's walks (this process POSTs the
        # pages, and a 9:00 burst makes garbage by the hundred thousand)
        freeze_startup()
        task = asyncio.create_task(_keep_running(timers))
        await stop.wait()
        await _wind_down(timers, task)
    await devclock.unwatch()
    try:
        await asyncio.wait_for(pool.close(), 5)
    except TimeoutError:
        pool.terminate()
    log.info("timers_stopped")


async def _keep_running(timers: Timers) -> None:
    """The loop, started again after a transient failure, until the timers are stopping."""
    backoff = timers.settings.backoff(initial_s=1.0)
    while not timers.stopping:
        try:
            await timers.run()
        except (*TRANSIENT, ConnectionError) as exc:
            delay = backoff.delay()
            log.warning("timers_restart", error=repr(exc), retry_in_s=delay)
            await asyncio.sleep(delay)


async def _wind_down(timers: Timers, loop_task: asyncio.Task[None]) -> None:
    """Stop taking timers, let the deliveries in flight finish (a page's timeout at most),
    then cut off what is left: leased pages are retried later."""
    timers.draining = timers.stopping = True
    timers.wake.set()
    if timers.in_flight:
        await asyncio.wait(set(timers.in_flight), timeout=timers.settings.page_timeout_s + 1)
    pending = {*timers.in_flight, loop_task}
    for t in pending:
        t.cancel()
    # bounded: a stop never waits on a task that missed its cancellation
    _, stuck = await asyncio.wait(pending, timeout=5)
    if stuck:
        log.warning("timers_stop_cut_short", tasks=len(stuck))
