"""The one place that builds the scheduling service (HTTP API and event worker)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import asyncpg
from fastapi import FastAPI

from services.scheduling import fhir_api
from services.scheduling.api import router
from services.scheduling.deps import Calendars, Deps, Planning
from services.scheduling.planner.followups import retry_all_waitlists
from services.scheduling.reactions import REACTIONS
from services.scheduling.repository.calendars import CalendarCache
from services.scheduling.settings import SCHEMA, SchedulingSettings
from shared.access import Rule
from shared.clock import utcnow
from shared.consumer import Timer
from shared.fhir_web import install_fhir
from shared.processing import EventProcessor, service_processor
from shared.service import build_app

MIGRATIONS = Path(__file__).parent / "migrations"
# Who may make each state-changing call (reads are open to every role; shared/access.py).
RULES = (
    Rule("PUT", r"/v1/sites/[^/]+", ("scheduler",)),
    Rule(
        "POST", r"/v1/appointments/[^/]+/(confirm|cancel|complete|no-show|vitals)", ("scheduler",)
    ),
)


def deps_factory(
    settings: SchedulingSettings, clock: Callable[[], datetime], calendars: Calendars
) -> Callable[[asyncpg.Pool], Deps]:
    """``Deps`` for a pool: the policies read from the settings once, the process's
    calendar cache shared by every ``Deps`` built (the worker builds one per event)."""
    planning = Planning(
        horizon=settings.horizon,
        pref_patience=settings.pref_patience,
        replan_attempts=settings.replan_attempts,
        waitlist_retry_batch=settings.waitlist_retry_batch,
    )
    maintenance, vitals = settings.maintenance_policy(), settings.vitals_policy()

    def make_deps(pool: asyncpg.Pool) -> Deps:
        return Deps(
            pool=pool,
            clock=clock,
            calendars=calendars,
            planning=planning,
            maintenance=maintenance,
            vitals=vitals,
        )

    return make_deps


def create_app(settings: SchedulingSettings, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    calendars = CalendarCache()  # one per process (repository/calendars.py: why it is safe)
    app = build_app(
        title="Interval scheduling service",
        description="Sites, induction series over rooms and therapists, the appointment "
        "lifecycle, maintenance sessions, the waitlist.",
        settings=settings,
        schema=SCHEMA,
        migrations=MIGRATIONS,
        make_deps=deps_factory(settings, clock, calendars),
        router=router,
        max_body_bytes=settings.max_body_bytes,
        rules=RULES,
    )
    install_fhir(app, fhir_api.router, "scheduling", fhir_api.SERVED, clock)
    return app


def create_processor(
    settings: SchedulingSettings,
    clock: Callable[[], datetime] = utcnow,
    calendars: Calendars | None = None,
) -> EventProcessor:
    """The worker's event reactions; the pool comes from the processor once it starts.
    ``calendars``: the process's calendar cache, shared with ``worker_timers``."""
    cache = calendars if calendars is not None else CalendarCache()
    return service_processor(
        settings=settings,
        schema=SCHEMA,
        group=settings.scheduling_consumer_group,
        make_deps=deps_factory(settings, clock, cache),
        reactions=REACTIONS,
    )


def worker_timers(
    settings: SchedulingSettings,
    processor: EventProcessor,
    clock: Callable[[], datetime] = utcnow,
    calendars: Calendars | None = None,
) -> list[Timer]:
    cache = calendars if calendars is not None else CalendarCache()
    make_deps = deps_factory(settings, clock, cache)

    async def retry_waitlists() -> None:
        await processor.start()
        assert processor.pool is not None
        await retry_all_waitlists(make_deps(processor.pool))

    return [(settings.waitlist_retry_interval_s, retry_waitlists)]
