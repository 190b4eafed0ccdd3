"""The one place that builds the scheduling service (HTTP API and event worker)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from services.scheduling import handlers
from services.scheduling.api import router
from services.scheduling.settings import SCHEMA, SchedulingSettings
from shared import db, events
from shared.consumer import EventProcessor, Route, Timer
from shared.kafka import metadata_ok
from shared.outbox import measure_backlog
from shared.web import install_body_limit, install_error_handlers, install_observability

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(settings: SchedulingSettings, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    state: dict[str, tuple[float, bool]] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.migrate(settings.database_url, SCHEMA, db.migration_files(MIGRATIONS))
        pool = await db.create_pool(
            settings.database_url,
            SCHEMA,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
        )
        app.state.deps = handlers.Deps(pool=pool, settings=settings, clock=clock)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="Interval scheduling service",
        version="1.0.0",
        description="Sites, induction series over rooms and therapists, the appointment "
        "lifecycle, maintenance sessions, the waitlist.",
        lifespan=lifespan,
    )

    async def readiness() -> dict[str, str]:
        deps: handlers.Deps = app.state.deps
        checks: dict[str, str] = {}
        try:
            await db.ping(deps.pool, settings.readiness_timeout_s)
            checks["postgres"] = "ok"
        except Exception as exc:
            checks["postgres"] = f"error: {type(exc).__name__}"
        cached = state.get("kafka")
        if cached and time.monotonic() - cached[0] < 1.0:
            ok = cached[1]
        else:
            ok = await metadata_ok(settings.kafka_servers, settings.readiness_timeout_s)
            state["kafka"] = (time.monotonic(), ok)
        checks["kafka"] = "ok" if ok else "error: unreachable"
        return checks

    async def before_metrics() -> None:
        with contextlib.suppress(Exception):
            await measure_backlog(app.state.deps.pool, SCHEMA)

    install_error_handlers(app)
    install_observability(app, readiness, before_metrics)
    install_body_limit(app, settings.max_body_bytes)
    app.include_router(router)
    return app


def create_processor(
    settings: SchedulingSettings, clock: Callable[[], datetime] = utcnow
) -> EventProcessor:
    """The worker's event routes; the pool comes from the processor once it starts."""
    processor: EventProcessor

    def deps() -> handlers.Deps:
        assert processor.pool is not None
        return handlers.Deps(pool=processor.pool, settings=settings, clock=clock)

    def route(topic: str, fn: Any) -> Route:
        async def handle(conn: db.Conn, event: events.CloudEvent, payload: Any) -> None:
            await fn(conn, deps(), event, payload)

        return Route(topic=settings.topic(topic), handler=handle, event_type=topic)

    processor = EventProcessor(
        settings=settings,
        schema=SCHEMA,
        group=settings.scheduling_consumer_group,
        routes=[
            route(events.IntakeScreened.topic, handlers.on_intake_screened),
            route(events.IntakeReviewed.topic, handlers.on_intake_reviewed),
            route(events.CheckinRecorded.topic, handlers.on_checkin_recorded),
            route(events.PatientDischarged.topic, handlers.on_patient_discharged),
        ],
    )
    return processor


def worker_timers(
    settings: SchedulingSettings, processor: EventProcessor, clock: Callable[[], datetime] = utcnow
) -> list[Timer]:
    async def retry_waitlists() -> None:
        await processor.start()
        assert processor.pool is not None
        await handlers.retry_all_waitlists(
            handlers.Deps(pool=processor.pool, settings=settings, clock=clock)
        )

    return [(settings.waitlist_retry_interval_s, retry_waitlists)]
