"""The one place that builds the alerts service's HTTP API and event worker (settings into
Deps, lifespan, reactions); the timers, safety lane and watchdog build their own
(services/alerts/timers.py, safety.py, watchdog.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import asyncpg
from fastapi import FastAPI

from services.alerts import fhir_api
from services.alerts.alerting import make_deps, notes
from services.alerts.api import router
from services.alerts.deps import Deps
from services.alerts.reactions import REACTIONS
from services.alerts.settings import SCHEMA, AlertsSettings
from shared.access import PUBLIC, Rule
from shared.clock import utcnow
from shared.fhir_web import install_fhir
from shared.processing import EventProcessor, service_processor
from shared.service import build_app

MIGRATIONS = Path(__file__).parent / "migrations"
# Who may make each state-changing call (reads are open to every role; shared/access.py).
RULES = (
    Rule("PUT", r"/v1/sites/[^/]+/oncall", ("scheduler", "clinician")),
    # the network ops on-call (pipeline_stalled): the same roles as a site's
    Rule("PUT", r"/v1/oncall/network", ("scheduler", "clinician")),
    Rule("POST", r"/v1/alerts/[^/]+/(acknowledge|resolve)", ("clinician",)),
    # on-call people (services/alerts/roster_api.py)
    Rule("PUT", r"/v1/clinicians/[^/]+", ("scheduler", "clinician")),
    Rule("PUT", r"/v1/schedules/[^/]+", ("scheduler", "clinician")),
    Rule("POST", r"/v1/schedules/[^/]+/overrides", ("scheduler", "clinician")),
    Rule("DELETE", r"/v1/schedules/[^/]+/overrides/[^/]+", ("scheduler", "clinician")),
    # acknowledging from the page: the link's token, Twilio's signature (services/alerts/acks.py)
    Rule("POST", r"/v1/ack/[^/]+", PUBLIC),
    Rule("GET", r"/v1/ack/[^/]+", PUBLIC),
    Rule("POST", r"/v1/sms/inbound", PUBLIC),
)


def create_app(settings: AlertsSettings, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    # Notes are PHI: no key, no API (PhiKeyError here, before anything listens).
    cipher = settings.phi_cipher()

    def api_deps(pool: asyncpg.Pool) -> Deps:
        return make_deps(settings, pool, clock, cipher)

    app = build_app(
        title="Interval alerts service",
        description="Relapse monitoring (expected and missed check-ins), alerts per the "
        "clinical alert policy, on-call paging that escalates until acknowledged.",
        settings=settings,
        schema=SCHEMA,
        migrations=MIGRATIONS,
        make_deps=api_deps,
        router=router,
        max_body_bytes=settings.max_body_bytes,
        rules=RULES,
    )
    install_fhir(app, fhir_api.router, "alerts", fhir_api.SERVED, clock)
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with started(app):
            # before the first request: notes left in plaintext by migration 0002 are
            # encrypted, and keys that cannot read the stored notes stop the start
            await notes.prepare(app.state.deps.pool, cipher, settings.phi_batch_size)
            yield

    app.router.lifespan_context = lifespan
    return app


def create_processor(
    settings: AlertsSettings, clock: Callable[[], datetime] = utcnow
) -> EventProcessor:
    """The worker's event reactions; the pool comes from the processor once it starts."""
    return service_processor(
        settings=settings,
        schema=SCHEMA,
        group=settings.alerts_consumer_group,
        make_deps=lambda pool: make_deps(settings, pool, clock),
        reactions=REACTIONS,
    )
