"""The one place that builds the scheduling service (HTTP API and event worker)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import asyncpg
from fastapi import FastAPI

from services.scheduling import handlers
from services.scheduling.api import router
from services.scheduling.settings import SCHEMA, SchedulingSettings
from shared import events
from shared.access import Rule
from shared.clock import utcnow
from shared.consumer import Timer
from shared.processing import EventProcessor, Reaction, service_processor
from shared.service import build_app

MIGRATIONS = Path(__file__).parent / "migrations"
# Who may make each state-changing call (reads are open to every role; shared/access.py).
RULES = (
    Rule("PUT", r"/v1/sites/[^/]+", ("scheduler",)),
    Rule(
        "POST", r"/v1/appointments/[^/]+/(confirm|cancel|complete|no-show|vitals)", ("scheduler",)
    ),
)


def create_app(settings: SchedulingSettings, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    def make_deps(pool: asyncpg.Pool) -> handlers.Deps:
        return handlers.Deps(pool=pool, settings=settings, clock=clock)

    return build_app(
        title="Interval scheduling service",
        description="Sites, induction series over rooms and therapists, the appointment "
        "lifecycle, maintenance sessions, the waitlist.",
        settings=settings,
        schema=SCHEMA,
        migrations=MIGRATIONS,
        make_deps=make_deps,
        router=router,
        max_body_bytes=settings.max_body_bytes,
        rules=RULES,
    )


def create_processor(
    settings: SchedulingSettings, clock: Callable[[], datetime] = utcnow
) -> EventProcessor:
    """The worker's event reactions; the pool comes from the processor once it starts."""
    return service_processor(
        settings=settings,
        schema=SCHEMA,
        group=settings.scheduling_consumer_group,
        make_deps=lambda pool: handlers.Deps(pool=pool, settings=settings, clock=clock),
        reactions=[
            Reaction(events.IntakeScreened, handlers.on_intake_screened),
            Reaction(events.IntakeReviewed, handlers.on_intake_reviewed),
            Reaction(events.CheckinRecorded, handlers.on_checkin_recorded),
            Reaction(events.PatientDischarged, handlers.on_patient_discharged),
            # the hold while at risk (docs/domain.md, "Who is scheduled, and when")
            Reaction(events.AlertRaised, handlers.on_alert),
            Reaction(events.AlertChanged, handlers.on_alert),
        ],
    )


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
