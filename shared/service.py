"""What every service's HTTP process shares: lifespan, readiness, metrics, errors, serving."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol

import asyncpg
import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig

from shared import db, devclock
from shared.access import Rule, audit_router, install_access
from shared.heap import freeze_startup
from shared.kafka import metadata_ok
from shared.openapi import install_openapi, operation_id
from shared.outbox import measure_backlog
from shared.settings import CommonSettings, ProcessSettings
from shared.warmup import warm_routes
from shared.web import (
    install_body_limit,
    install_error_handlers,
    install_input_guard,
    install_observability,
    install_routine_gate,
)


class HasPool(Protocol):
    @property
    def pool(self) -> asyncpg.Pool: ...


# FastAPI's own OpenTelemetry hooks, off: the services export Prometheus metrics
# (shared/web.py), and with the hooks on, every request asked whether an OpenTelemetry
# provider had been configured meanwhile (environment lookups included): ~10% of a
# trivial request's time.
NO_OTEL: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}


def build_app(
    *,
    title: str,
    description: str,
    settings: CommonSettings,
    schema: str,
    migrations: Path,
    make_deps: Callable[[asyncpg.Pool], HasPool],
    router: APIRouter,
    max_body_bytes: int,
    rules: Sequence[Rule] = (),
    routine: Sequence[tuple[str, str]] = (),
) -> FastAPI:
    """Migrations applied and a pool opened at start (nothing connects at import time);
    ``app.state.deps`` holds the service's dependencies for its handlers. With DEV_CLOCK=1
    (loopback only) the process follows the stack's clock and serves ``/v1/dev/clock``."""
    devclock.refuse_unless_loopback(settings, f"{schema} api")
    lifespan = _lifespan(settings, schema, migrations, make_deps)
    app = FastAPI(
        title=title,
        version="1.0.0",
        description=description,
        lifespan=lifespan,
        telemetry=NO_OTEL,
        generate_unique_id_function=operation_id,
    )
    # innermost: the request's latency and access log count its wait at the gate
    install_routine_gate(app, routine, settings.routine_concurrency, settings.routine_queue_max)
    _install_middleware(app, settings, schema, max_body_bytes, rules)
    app.include_router(router, generate_unique_id_function=operation_id)
    if settings.dev_clock:
        app.include_router(
            devclock.router(lambda request: request.app.state.deps.pool),
            generate_unique_id_function=operation_id,
        )
    app.include_router(
        audit_router(lambda request: request.app.state.deps.pool),
        generate_unique_id_function=operation_id,
    )
    install_openapi(app, tokens=settings.api_tokens_file is not None)
    return app


def _lifespan(
    settings: CommonSettings,
    schema: str,
    migrations: Path,
    make_deps: Callable[[asyncpg.Pool], HasPool],
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """At start: the schema migrated, a pool opened and the service's deps built on it
    (``app.state.deps``), the dev clock followed; at the end, both let go."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.migrate(settings.database_url, schema, db.migration_files(migrations))
        pool = await db.create_pool(
            settings.database_url,
            schema,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
        )
        app.state.deps = make_deps(pool)
        await warm_routes(app)  # the first requests after a start are not the slow ones
        try:
            await devclock.watch(settings, f"{schema}-api")
            yield
        finally:
            await devclock.unwatch()
            await pool.close()

    return lifespan


def _install_middleware(
    app: FastAPI,
    settings: CommonSettings,
    schema: str,
    max_body_bytes: int,
    rules: Sequence[Rule],
) -> None:
    """Error handlers, observability (readiness, metrics with the outbox backlog), the body
    limit, the input guard, and outermost access control."""
    readiness = _Readiness(app, settings)

    async def before_metrics() -> None:
        with contextlib.suppress(Exception):  # a scrape must not fail with the database
            await measure_backlog(app.state.deps.pool, schema)

    install_error_handlers(app)
    install_observability(app, readiness, before_metrics)
    install_body_limit(app, max_body_bytes)
    install_input_guard(app)

    def current_pool() -> asyncpg.Pool | None:
        deps = getattr(app.state, "deps", None)
        return deps.pool if deps is not None else None

    # outermost: a refused call reaches nothing else
    install_access(
        app,
        tokens_file=settings.api_tokens_file,
        rules=devclock.rules(settings, rules),
        pool=current_pool,
    )


class _Readiness:
    """GET /readyz: PostgreSQL answers, and the broker answers a real metadata request
    (cached for a second)."""

    def __init__(self, app: FastAPI, settings: CommonSettings) -> None:
        self.app, self.settings = app, settings
        self._kafka: tuple[float, bool] | None = None

    async def __call__(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            await db.ping(self.app.state.deps.pool, self.settings.readiness_timeout_s)
            checks["postgres"] = "ok"
        except Exception as exc:
            checks["postgres"] = f"error: {type(exc).__name__}"
        if self._kafka is not None and time.monotonic() - self._kafka[0] < 1.0:
            ok = self._kafka[1]
        else:
            s = self.settings
            ok = await metadata_ok(s.kafka_servers, s.readiness_timeout_s)
            self._kafka = (time.monotonic(), ok)
        checks["kafka"] = "ok" if ok else "error: unreachable"
        return checks


def serve(app: FastAPI, settings: ProcessSettings, port: int) -> None:
    """uvicorn on uvloop + httptools; our own request log replaces the access log."""
    freeze_startup()  # the app is built: its objects leave the collector's walks
    uvicorn.run(
        app,
        host=settings.http_host,
        port=port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
        # Longer than clients keep an idle connection (httpx: 5 s, browsers: up to 60 s),
        # so a client never reuses a connection the server is closing at that moment
        # (uvicorn's 5 s default races httpx's 5 s and loses a request now and then).
        timeout_keep_alive=75,
    )
