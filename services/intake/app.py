"""The one place that builds the intake service."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import asyncpg
from fastapi import FastAPI

from services.intake import fhir_api, phi_at_rest, repository
from services.intake.api import router
from services.intake.deps import Deps
from services.intake.settings import SCHEMA, IntakeSettings
from shared import db, outbox
from shared.access import Rule
from shared.clock import utcnow
from shared.fhir_web import install_fhir
from shared.service import build_app

MIGRATIONS = Path(__file__).parent / "migrations"
# Who may make each state-changing call (reads are open to every role; shared/access.py).
RULES = (
    Rule("POST", r"/v1/intakes", ("intake",)),
    Rule("POST", r"/v1/checkins", ("intake",)),
    Rule("POST", r"/v1/intakes/[^/]+/(approve|decline)", ("clinician",)),
    Rule("POST", r"/v1/patients/[^/]+/discharge", ("clinician",)),
)


def create_app(settings: IntakeSettings, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    # No PHI key, no service: PhiKeyError here, before anything listens.
    cipher = settings.phi_cipher()

    def make_deps(pool: asyncpg.Pool) -> Deps:
        return Deps(
            pool=pool,
            eligibility=settings.eligibility_policy(),
            mbc=settings.mbc_policy(),
            clock=clock,
            cipher=cipher,
        )

    app = build_app(
        title="Interval intake service",
        description="Intake screens (PHQ-9, C-SSRS, treatment history, contraindications, "
        "vitals), eligibility decisions, clinician review, between-session check-ins.",
        settings=settings,
        schema=SCHEMA,
        migrations=MIGRATIONS,
        make_deps=make_deps,
        router=router,
        max_body_bytes=settings.max_body_bytes,
        rules=RULES,
        # intakes wait their turn at the gate: a check-in (the safety path) never queues
        # behind hundreds of them (shared/web.py RoutineGate)
        routine=[("POST", "/v1/intakes")],
    )
    install_fhir(app, fhir_api.router, "intake", fhir_api.SERVED, clock)
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with started(app):
            # before the first request: plaintext left from before migration 0002 is
            # encrypted, and keys that cannot read the stored PHI stop the start
            await phi_at_rest.prepare_phi(app.state.deps.pool, cipher, settings.phi_batch_size)
            safety_pool = await db.create_pool(
                settings.database_url,
                SCHEMA,
                min_size=settings.safety_db_pool_size,
                max_size=settings.safety_db_pool_size,
            )
            app.state.deps = dataclasses.replace(app.state.deps, safety_pool=safety_pool)
            # the first requests after a start are not the slow ones (docs/performance.md)
            cipher.encrypt("warm-up")  # the cipher's first use sets up its backend
            hot, rehearse = repository.HOT_STATEMENTS, (outbox.WARM_UP,)
            await db.warm_pool(app.state.deps.pool, hot, settings.db_pool_min, rehearse)
            await db.warm_pool(safety_pool, hot, settings.safety_db_pool_size, rehearse)
            try:
                yield
            finally:
                await safety_pool.close()

    app.router.lifespan_context = lifespan
    return app
