"""The one place that builds the intake service."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI

from services.intake import handlers
from services.intake.api import router
from services.intake.settings import SCHEMA, IntakeSettings
from shared import db
from shared.kafka import metadata_ok
from shared.outbox import measure_backlog
from shared.web import install_body_limit, install_error_handlers, install_observability

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(settings: IntakeSettings, clock: Callable[[], datetime] = utcnow) -> FastAPI:
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
        app.state.deps = handlers.Deps(
            pool=pool,
            eligibility=settings.eligibility_policy(),
            mbc=settings.mbc_policy(),
            clock=clock,
        )
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="Interval intake service",
        version="1.0.0",
        description="Intake screens (PHQ-9, C-SSRS, treatment history, contraindications, "
        "vitals), eligibility decisions, clinician review, between-session check-ins.",
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
        # The broker check is a real metadata request, cached for a second.
        cached = state.get("kafka")
        if cached and time.monotonic() - cached[0] < 1.0:
            ok = cached[1]
        else:
            ok = await metadata_ok(settings.kafka_servers, settings.readiness_timeout_s)
            state["kafka"] = (time.monotonic(), ok)
        checks["kafka"] = "ok" if ok else "error: unreachable"
        return checks

    install_error_handlers(app)

    async def before_metrics() -> None:
        with contextlib.suppress(Exception):  # a scrape must not fail with the database
            await measure_backlog(app.state.deps.pool, SCHEMA)

    install_observability(app, readiness, before_metrics)
    install_body_limit(app, settings.max_body_bytes)
    app.include_router(router)
    return app
