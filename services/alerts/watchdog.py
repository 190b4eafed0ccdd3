"""The pipeline watchdog: ``python -m services.alerts watchdog`` (a dead-man's switch).

docs/architecture.md ("Pipeline watchdog"). Every ``WATCHDOG_INTERVAL_S`` it measures
each stage's progress: the newest pipeline heartbeat that came through the safety lane
(services/intake/heartbeat.py writes one into intake's outbox with the safety priority;
services/alerts/safety.py records it), each service's outbox's oldest unpublished row,
the broker's view of every consumer group (shared/lag_exporter.py's collection: lag and
committed offsets), the alerts timers loop's progress mark (services/alerts/timers.py),
and its own last answers from PostgreSQL and the broker. The rule is
services/alerts/domain/watchdog.py: a stage without progress for ``PIPELINE_STALL_S``
raises one critical ``pipeline_stalled`` alert (repeats update it) that pages the
network ops on-call (``PUT /v1/oncall/network``); it resolves itself (``alert.changed``
resolved, no page) once every stage moves again.

It is its own process because it must not depend on what it watches: it consumes no
topic, publishes nothing itself, and makes the first page POST itself (signed as every
page, services/alerts/alerting/delivery.py post_page). While PostgreSQL is the stalled stage it
pages from memory (the network on-call of its last successful read) and records the
alert, its pages and their outcome once the database answers again. With the database
up it also retries and escalates its own alert's pages, so a stalled timers process
does not hold them back (the page lease keeps it and the timers from POSTing one page
twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from prometheus_client import Gauge, start_http_server

from services.alerts import repository as repo
from services.alerts.alerting import make_deps, stalls
from services.alerts.alerting.delivery import Deliverer
from services.alerts.deps import Deps
from services.alerts.domain import watchdog as rule
from services.alerts.domain.model import NETWORK_SITE, PIPELINE_PATIENT, Kind, OncallPolicy
from services.alerts.rows import NoOutbox, TiersJson, policy_of
from services.alerts.settings import SCHEMA, AlertsSettings
from shared import db, events
from shared.clock import utcnow
from shared.lag_exporter import Exporter, LagSettings
from shared.logging import get_logger
from shared.processing import TRANSIENT

log = get_logger(__name__)

T = TypeVar("T")

STAGE_AGE = Gauge(
    "pipeline_stage_progress_age_seconds", "Seconds since each stage last made progress", ["stage"]
)
STALLED = Gauge("pipeline_stalled", "1 while a pipeline_stalled alert is open")


class NotMigrated(Exception):
    """The watchdog's tables are not known to be there yet: the database stage has not
    answered (it stalls like any database outage)."""


# What a database step survives: any failure of a statement or the connection
# (shared/db.py) and whatever a consumer retries (shared/processing.py).
DB_ERRORS = (*TRANSIENT, *db.DATABASE_ERRORS, NotMigrated)


async def bounded(step: Coroutine[Any, Any, T], timeout: float) -> T:
    """``step``'s result, or TimeoutError after ``timeout`` seconds, then and there.
    Unlike asyncio.wait_for this does not wait for the cancelled step to finish: cancelling
    an asyncpg query on a server that has stopped answering waits for the cancel request
    and the connection's reset, which hang as well. The step is cancelled and left to end
    on its own; a later tick starts afresh (record() finds a row an abandoned try wrote)."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        task.add_done_callback(_quietly)
        raise TimeoutError(f"no answer within {timeout:g} s")
    return task.result()


def _quietly(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned step's error is not logged as unhandled


def wall() -> datetime:
    """Progress is latency, on the wall clock (never the dev clock)."""
    return datetime.now(UTC)


class Watchdog:
    def __init__(self, settings: AlertsSettings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http
        self.lag_settings = LagSettings()
        self.exporter = Exporter(self.lag_settings)
        alerts_group = settings.alerts_consumer_group
        self.group_labels = {
            self.lag_settings.scheduling_consumer_group: "scheduling",
            alerts_group: "alerts",
            f"{alerts_group}-safety": "alerts-safety",
        }
        self.own_topics = self.lag_settings.groups()
        self.schemas = [s.strip() for s in settings.watchdog_outbox_schemas.split(",") if s]
        self.started = wall()
        self.progress: dict[str, datetime] = {"database": self.started, "broker": self.started}
        self.groups: dict[str, rule.GroupProgress] = {}
        self.pool: asyncpg.Pool | None = None
        self.delivery: Deliverer | None = None
        self.network_tiers: TiersJson | None = None  # last successful read
        self.network_version: int | None = None
        self.stall: rule.Stall | None = None
        self.adopted = False
        self.rng = random.Random()  # noqa: S311 (jitter)
        self.last_prune = 0.0
        # its migrations (``migrate`` starts them: serve_watchdog), running until the
        # database first answers; started again should they fail
        self.migrate: Callable[[], asyncio.Task[bool]] | None = None
        self.migrations: asyncio.Task[bool] | None = None
        # WATCHDOG_FALLBACK_WEBHOOK_URL as one tier: paged when no network on-call is
        # known (none PUT, or no answer from the database since the start)
        url = settings.watchdog_fallback_webhook_url
        fallback = {"name": "WATCHDOG_FALLBACK_WEBHOOK_URL", "webhook_url": str(url)}
        self.fallback_tiers: TiersJson | None = (
            None
            if url is None
            else [
                {
                    "recipients": [fallback],
                    "targets": [],
                    "escalate_after_s": settings.escalate_after_s,
                }
            ]
        )

    @property
    def network(self) -> OncallPolicy:
        """Whom it pages from memory: the network on-call last read, else the fallback."""
        return policy_of(self.network_tiers or self.fallback_tiers)

    @property
    def deps(self) -> Deps:
        assert self.pool is not None
        return make_deps(self.settings, self.pool, utcnow)

    # --- measuring ------------------------------------------------------------------------

    async def look_at_database(self) -> None:
        """Every database-side mark, the network on-call and the open alert."""
        if self.migrations is not None and not self.migrations.done():
            raise NotMigrated("its tables are not ready yet (the database has not answered)")
        if self.migrations is not None and self.migrations.exception() is not None:
            failed = self.migrations.exception()
            log.error("watchdog_migrations_failed", error=repr(failed))
            self.migrations = self.migrate() if self.migrate else None  # again
            raise NotMigrated(f"its migrations failed: {failed!r}")
        if self.pool is None:
            self.pool = await db.create_pool(
                self.settings.database_url, SCHEMA, min_size=1, max_size=4
            )
            self.delivery = Deliverer(self.settings, self.pool, self.http)
        now = wall()
        async with self.pool.acquire() as conn:
            for stage, seconds in (await repo.stage_ages(conn)).items():
                self.progress[stage] = max(now - timedelta(seconds=seconds), self.started)
            self.progress.setdefault("heartbeat", self.started)
            self.progress.setdefault("timers", self.started)
            for schema in self.schemas:
                try:
                    age = await repo.outbox_age(conn, schema)
                except NoOutbox:  # that service never ran here
                    continue
                oldest = None if age is None else now - timedelta(seconds=age)
                self.progress[f"outbox:{schema}"] = rule.outbox_progress(oldest, now)
            oncall = await repo.get_oncall(conn, NETWORK_SITE)
            if oncall is not None:
                self.network_tiers, self.network_version = oncall.tiers, oncall.version
            else:
                self.network_tiers, self.network_version = None, None
            if not self.adopted:  # after a restart: the alert still open is ours
                row = await repo.unresolved_alert(
                    conn, PIPELINE_PATIENT, Kind.pipeline_stalled.value
                )
                if row is not None and self.stall is None:
                    self.stall = rule.Stall(row.alert_id, row.raised_at, set(row.reasons), True)
                self.adopted = True
        self.progress["database"] = wall()

    async def look_at_broker(self) -> None:
        """Each consumer group's progress as the broker sees it (shared/lag_exporter.py)."""
        rows = await bounded(self.exporter.collect(), self.lag_settings.lag_exporter_timeout_s)
        now = wall()
        for g in rows:
            label = self.group_labels.get(g.info.group, g.info.group)
            stage = f"broker_lag:{label}"
            if g.info.state == "Dead":  # never ran here: nothing to watch
                self.groups.pop(stage, None)
                self.progress.pop(stage, None)
                continue
            # only the topics this stack's consumers read: a group name shared with an
            # old run (other prefix, a benchmark) keeps offsets nobody will move again
            own = set(self.own_topics.get(g.info.group, ()))
            parts = [p for p in g.partitions if not own or p.topic in own]
            committed = sum(p.committed or 0 for p in parts)
            lag = sum(p.lag for p in parts)
            self.groups[stage] = rule.group_progress(self.groups.get(stage), committed, lag, now)
            self.progress[stage] = self.groups[stage].at
        self.progress["broker"] = wall()

    async def broker_loop(self) -> None:
        while True:
            try:
                await self.look_at_broker()
            except Exception as exc:  # the broker away: its stage stops moving
                log.warning("watchdog_broker_unreachable", error=repr(exc))
                with contextlib.suppress(Exception):
                    await bounded(self.exporter.close(), 5)
            await asyncio.sleep(self.settings.watchdog_interval_s)

    # --- deciding and acting ----------------------------------------------------------------

    async def tick(self) -> None:
        db_ok = True
        try:
            await bounded(self.look_at_database(), self.db_timeout)
        except DB_ERRORS as exc:
            db_ok = False
            log.warning("watchdog_database_unreachable", error=repr(exc))
        now = wall()
        for stage, at in self.progress.items():
            STAGE_AGE.labels(stage).set((now - at).total_seconds())
        stages = rule.stalled(
            rule.judged(self.progress, db_ok), now, self.settings.pipeline_stall_s
        )
        reasons = set(rule.reasons(stages))
        # every database step is bounded: a PostgreSQL that hangs (rather than refuses)
        # must not hold the tick, or nothing would be paged from memory
        try:
            if reasons and self.stall is None:
                await self.raise_stall(reasons, db_ok)
            elif reasons and self.stall is not None and not reasons <= self.stall.reasons:
                await bounded(self.repeat(reasons, db_ok), self.db_timeout)
            elif not reasons and self.stall is not None and db_ok:
                await bounded(self.resolve(), self.db_timeout * 2)
        except DB_ERRORS as exc:
            log.warning("watchdog_database_step_failed", error=repr(exc))
        if db_ok:
            try:
                await bounded(self.prune(), self.db_timeout * 2)
            except DB_ERRORS as exc:
                log.warning("watchdog_prune_failed", error=repr(exc))
        if self.stall is not None:
            await self.deliver_from_memory()
            if db_ok:
                try:
                    await bounded(self.db_work(), self.db_timeout * 2)
                except DB_ERRORS as exc:
                    log.warning("watchdog_db_work_retry", error=repr(exc))
        STALLED.set(1 if self.stall is not None else 0)

    @property
    def db_timeout(self) -> float:
        return max(self.settings.watchdog_interval_s * 2, 2.0)

    async def raise_stall(self, reasons: set[str], db_ok: bool) -> None:
        self.stall = rule.Stall(uuid.uuid4(), utcnow(), set(reasons), recorded=False)
        log.error(
            "pipeline_stalled",
            alert_id=str(self.stall.alert_id),
            reasons=sorted(reasons),
            stall_after_s=self.settings.pipeline_stall_s,
        )
        if db_ok:
            with contextlib.suppress(*DB_ERRORS):
                await bounded(self.record(), self.db_timeout)
        if not self.stall.recorded:
            self.queue_in_memory()

    def queue_in_memory(self) -> None:
        """Tier 1 of the network on-call of the last successful read, paged from memory."""
        assert self.stall is not None
        if self.network.empty:
            log.warning("pipeline_stalled_nobody_on_call", alert_id=str(self.stall.alert_id))
            return
        if not self.network_tiers:
            log.warning("pipeline_stalled_paging_fallback", alert_id=str(self.stall.alert_id))
        pages = rule.first_pages(self.stall, self.network, utcnow(), lambda: str(uuid.uuid4()))
        self.stall.pages.extend(pages)

    async def deliver_from_memory(self) -> None:
        assert self.stall is not None
        due = [p for p in self.stall.pages if p.next_at is not None and p.next_at <= utcnow()]
        await asyncio.gather(
            *(stalls.post_from_memory(self.http, self.settings, p, self.rng) for p in due)
        )

    async def record(self) -> None:
        """The alert's row (and the pages made from memory), in one transaction
        (services/alerts/alerting/stalls.py); db_work POSTs what it queued."""
        stall = self.stall
        assert stall is not None
        assert self.pool is not None
        made = len(stall.pages)
        async with self.pool.acquire() as conn, conn.transaction():
            new = await stalls.record_stall(
                conn,
                self.deps,
                stall,
                utcnow(),
                tiers_read=self.network_tiers or self.fallback_tiers,
                version_read=self.network_version,
                fallback=self.fallback_tiers,
            )
        stall.recorded = True
        stall.pages = []  # from now on the database holds them (db_work retries them)
        if new:
            log.info(
                "pipeline_stalled_recorded", alert_id=str(stall.alert_id), paged_from_memory=made
            )

    async def repeat(self, reasons: set[str], db_ok: bool) -> None:
        stall = self.stall
        assert stall is not None
        stall.reasons |= reasons
        log.error("pipeline_stalled", alert_id=str(stall.alert_id), reasons=sorted(stall.reasons))
        if not (db_ok and stall.recorded):
            return  # recorded with every reason when the database answers
        assert self.pool is not None
        with contextlib.suppress(*DB_ERRORS):
            async with self.pool.acquire() as conn, conn.transaction():
                await stalls.repeat_stall(conn, stall.alert_id, reasons, utcnow())

    async def resolve(self) -> None:
        stall = self.stall
        assert stall is not None
        assert self.pool is not None
        if not stall.recorded:
            # raised (and paged) while PostgreSQL was away: the alert, its pages and their
            # outcome are written first, then resolved, so the audit trail keeps them
            try:
                await bounded(self.record(), self.db_timeout)
            except DB_ERRORS as exc:
                log.warning("watchdog_resolve_retry", error=repr(exc))
                return
        if stall.recorded:
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await stalls.resolve_stall(conn, stall.alert_id, utcnow())
            except DB_ERRORS as exc:
                log.warning("watchdog_resolve_retry", error=repr(exc))
                return
        log.info(
            "pipeline_recovered",
            alert_id=str(stall.alert_id),
            after_s=round((utcnow() - stall.raised_at).total_seconds(), 3),
        )
        self.stall = None

    async def db_work(self) -> None:
        """With the database up: record an alert made from memory, escalate it when due,
        and POST its due pages (first attempts, retries) without waiting for timers."""
        stall = self.stall
        assert stall is not None
        assert self.pool is not None
        assert self.delivery is not None
        try:
            if not stall.recorded:
                await bounded(self.record(), self.db_timeout)
            now = utcnow()
            lease = now + timedelta(seconds=self.settings.page_lease_s)
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    await stalls.escalate_stall(conn, self.deps, stall.alert_id, now)
                rows = await repo.claim_patient_pages(conn, PIPELINE_PATIENT, now, lease)
            for r in rows:  # each one its own task: a slow receiver holds no tick
                asyncio.create_task(self.delivery.deliver(r))  # noqa: RUF006
        except DB_ERRORS as exc:
            log.warning("watchdog_db_work_retry", error=repr(exc))

    async def prune(self) -> None:
        """Heartbeats (and their inbox rows) older than an hour, every 10 minutes."""
        loop_now = asyncio.get_running_loop().time()
        if loop_now - self.last_prune < 600:
            return
        self.last_prune = loop_now
        assert self.pool is not None
        topic = self.settings.topic(events.PipelineHeartbeat.topic)  # as the inbox has it
        async with self.pool.acquire() as conn:
            await repo.prune_heartbeats(conn, topic, timedelta(hours=1))


async def serve_watchdog(settings: AlertsSettings, migrations: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if settings.alerts_watchdog_metrics_port:
        start_http_server(settings.alerts_watchdog_metrics_port, addr=settings.http_host)
    async with httpx.AsyncClient(timeout=settings.page_timeout_s, follow_redirects=False) as http:
        dog = Watchdog(settings, http)
        # it watches from the start: a database that is away (or hangs) when it starts is
        # the first stall it pages, so its tables are made ready meanwhile, not first
        dog.migrate = lambda: asyncio.create_task(
            db.migrate_when_up(settings.database_url, SCHEMA, migrations, "watchdog", stop)
        )
        dog.migrations = dog.migrate()
        broker = asyncio.create_task(dog.broker_loop())
        log.info(
            "watchdog_started",
            stall_after_s=settings.pipeline_stall_s,
            interval_s=settings.watchdog_interval_s,
            outboxes=dog.schemas,
            groups=sorted(dog.group_labels.values()),
        )
        while not stop.is_set():
            try:
                await dog.tick()
            except Exception as exc:  # never die of one bad tick: this is the alarm
                log.exception("watchdog_tick_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.watchdog_interval_s)
        for task in (broker, dog.migrations):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(dog.exporter.close(), 5)
        if dog.pool is not None:
            dog.pool.terminate()
    log.info("watchdog_stopped")
