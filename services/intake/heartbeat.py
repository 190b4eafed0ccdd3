"""The pipeline heartbeat's emitter (docs/architecture.md, "Pipeline watchdog").

Every ``PIPELINE_HEARTBEAT_INTERVAL_S`` a ``pipeline.heartbeat`` event goes into
intake's outbox with the safety priority (shared/outbox.py SAFETY), exactly as a
suicide-risk signal does, so the beat exercises every stage of the safety lane: the
outbox, the relay's urgent pass (shared/relay.py), the broker, and the lane's consumer
(services/alerts/safety.py), which records it; the watchdog (services/alerts/watchdog.py)
pages the network ops on-call when no beat made it through for ``PIPELINE_STALL_S``.

It runs in the intake relay process (a task handed to shared/relay.py serve_relay), in
every relay instance, the publishing leader and its standbys alike: beats keep being
written while a leader is stuck, so the outbox's age shows that stall too. Beats carry
the wall clock (``emitted_at``), never the dev clock: they measure the pipeline's
latency, not a clinical time.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from datetime import UTC, datetime

import asyncpg

from services.intake.settings import SCHEMA, SOURCE, IntakeSettings
from shared import db, events, outbox
from shared.logging import get_logger
from shared.relay import RelayTask

log = get_logger(__name__)

KEY = "pipeline-heartbeat"  # the Kafka key: every beat on one partition, in order


def beat(emitter: str, now: datetime | None = None) -> events.CloudEvent:
    at = now or datetime.now(UTC)
    payload = events.PipelineHeartbeat(beat_id=str(uuid.uuid4()), emitted_at=at, emitter=emitter)
    return events.new_event(payload, source=SOURCE, subject=KEY, time=at)


async def emit_forever(settings: IntakeSettings) -> None:
    """One beat per interval on one connection of its own (reconnecting after a failure:
    a database outage stops the beats, which is what the watchdog is for)."""
    emitter = f"{socket.gethostname()}:{os.getpid()}"
    interval = settings.pipeline_heartbeat_interval_s
    conn: asyncpg.Connection | None = None
    while True:
        try:
            if conn is None or conn.is_closed():
                conn = await asyncpg.connect(
                    settings.database_url, **db.connect_kwargs(settings.database_url, SCHEMA)
                )
            await asyncio.wait_for(
                outbox.enqueue(conn, beat(emitter), priority=outbox.SAFETY), timeout=interval * 2
            )
        except db.DATABASE_ERRORS as exc:
            log.warning("heartbeat_not_written", error=repr(exc))
            if conn is not None:
                conn.terminate()
                conn = None
        await asyncio.sleep(interval)


def tasks(settings: IntakeSettings) -> list[RelayTask]:
    if settings.pipeline_heartbeat_interval_s <= 0:
        return []
    return [lambda: emit_forever(settings)]
