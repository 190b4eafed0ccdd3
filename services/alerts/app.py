"""The one place that builds the alerts service (HTTP API, event worker, timers)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI

from services.alerts import handlers
from services.alerts.alerting import Deps
from services.alerts.api import router
from services.alerts.settings import SCHEMA, AlertsSettings
from shared import db, events
from shared.access import Rule
from shared.consumer import EventProcessor, Route
from shared.service import build_app

MIGRATIONS = Path(__file__).parent / "migrations"
# Who may make each state-changing call (reads are open to every role; shared/access.py).
RULES = (
    Rule("PUT", r"/v1/sites/[^/]+/oncall", ("scheduler", "clinician")),
    Rule("POST", r"/v1/alerts/[^/]+/(acknowledge|resolve)", ("clinician",)),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(settings: AlertsSettings, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    def make_deps(pool: asyncpg.Pool) -> Deps:
        return Deps(pool=pool, settings=settings, clock=clock)

    return build_app(
        title="Interval alerts service",
        description="Relapse monitoring (expected and missed check-ins), alerts per the "
        "clinical alert policy, on-call paging that escalates until acknowledged.",
        settings=settings,
        schema=SCHEMA,
        migrations=MIGRATIONS,
        make_deps=make_deps,
        router=router,
        max_body_bytes=settings.max_body_bytes,
        rules=RULES,
    )


def create_processor(
    settings: AlertsSettings, clock: Callable[[], datetime] = utcnow
) -> EventProcessor:
    """The worker's event routes; the pool comes from the processor once it starts."""
    processor: EventProcessor

    def route(topic: str, fn: Any) -> Route:
        async def handle(conn: db.Conn, event: events.CloudEvent, payload: Any) -> None:
            assert processor.pool is not None
            deps = Deps(pool=processor.pool, settings=settings, clock=clock)
            await fn(conn, deps, event, payload)

        return Route(topic=settings.topic(topic), handler=handle, event_type=topic)

    processor = EventProcessor(
        settings=settings,
        schema=SCHEMA,
        group=settings.alerts_consumer_group,
        routes=[
            route(events.IntakeScreened.topic, handlers.on_intake_screened),
            route(events.CheckinRecorded.topic, handlers.on_checkin_recorded),
            route(events.AppointmentChanged.topic, handlers.on_appointment_changed),
            route(events.DoseDeferred.topic, handlers.on_dose_deferred),
            route(events.PatientDischarged.topic, handlers.on_patient_discharged),
        ],
    )
    return processor
