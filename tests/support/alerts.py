"""Alerts helpers for tests: on-call tiers, a site and a patient, check-ins, alerts, pages;
and the alerts shell's dependencies on a database of its own (``alerts_deps``)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from services.alerts.alerting import make_deps
from services.alerts.app import MIGRATIONS
from services.alerts.deps import Deps
from services.alerts.settings import SCHEMA, AlertsSettings
from shared import db
from shared.events import (
    CheckinAssessment,
    CheckinRecorded,
    CloudEvent,
    new_event,
)
from tests.support.eventually import eventually
from tests.support.stack import (
    KAFKA,
    topic,
)
from tools.factories import checkin_body, intake_body
from tools.page_receiver import PageReceiver, Received
from tools.stack import scratch_database


@contextlib.asynccontextmanager
async def alerts_deps(
    now: datetime, name: str, pool_size: int = 4, **settings: Any
) -> AsyncIterator[Deps]:
    """The alerts shell's Deps on a database of its own (``name`` and a random suffix;
    migrated, dropped afterwards), its clock fixed at ``now``, ``settings`` over the
    defaults: the shell in process against a real PostgreSQL."""
    async with scratch_database(name) as dsn:
        await db.migrate(dsn, SCHEMA, db.migration_files(MIGRATIONS))
        pool = await db.create_pool(dsn, SCHEMA, min_size=1, max_size=pool_size)
        try:
            yield make_deps(AlertsSettings(database_url=dsn, **settings), pool, lambda: now)
        finally:
            await pool.close()


def tiers(receiver: PageReceiver, *paths: str, escalate_after_s: int = 2) -> dict[str, Any]:
    return {
        "tiers": [
            {
                "recipients": [{"name": f"Dr. {p.strip('/')}", "webhook_url": receiver.url(p)}],
                "escalate_after_s": escalate_after_s,
            }
            for p in paths
        ]
    }


async def new_site(api: httpx.AsyncClient, oncall: dict[str, Any] | None) -> str:
    site_id = f"site-{uuid.uuid4().hex[:8]}"
    if oncall is not None:
        r = await api.put(f"/v1/sites/{site_id}/oncall", json=oncall)
        assert r.status_code == 200, r.text
    return site_id


async def new_patient(intake_http: httpx.AsyncClient, site_id: str) -> tuple[str, dict[str, Any]]:
    body = intake_body(site_id=site_id)
    r = await intake_http.post("/v1/intakes", json=body)
    assert r.status_code == 201, r.text
    return body["patient"]["patient_id"], body


async def checkin(
    intake_http: httpx.AsyncClient, pid: str, phq9: list[int], **kw: Any
) -> dict[str, Any]:
    body = checkin_body(pid, phq9, **kw)
    r = await intake_http.post("/v1/checkins", json=body)
    assert r.status_code == 202, r.text
    return body


async def alerts_of(api: httpx.AsyncClient, pid: str, **params: str) -> list[dict[str, Any]]:
    r = await api.get("/v1/alerts", params={"patient_id": pid, **params})
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()
    return result


def pages_to(receiver: PageReceiver, path: str, alert_id: str) -> list[Received]:
    """The alert's pages delivered to ``path`` (not the notice of who acknowledged it)."""
    return [
        r
        for r in receiver.delivered(path)
        if r.json["alert_id"] == alert_id and r.json.get("reason") != "ack_notice"
    ]


SUICIDAL = [1, 1, 1, 0, 1, 1, 0, 0, 2]


async def publish(*events: CloudEvent) -> None:
    """Straight onto the topics (as a redelivery or a reordering across topics would),
    keyed by patient like every producer of ours."""
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await producer.start()
    try:
        for ev in events:
            await producer.send_and_wait(topic(ev.type), ev.to_bytes(), key=ev.subject.encode())
    finally:
        await producer.stop()


def checkin_event(pid: str, site_id: str, at: datetime, *, suicidal: bool) -> CloudEvent:
    payload = CheckinRecorded(
        checkin_id=str(uuid.uuid4()),
        patient_id=pid,
        site_id=site_id,
        submitted_at=at,
        phq9_total=5,
        phq9_item9_positive=suicidal,
        suicidal_ideation=suicidal,
        assessment=CheckinAssessment(
            response=True,
            remission=False,
            worsening=False,
            worsening_reasons=(),
            baseline_total=20,
            lowest_total=5,
        ),
    )
    return new_event(payload, source="tests", subject=pid, time=at)


async def seen_checkin_at(api: httpx.AsyncClient, pid: str, at: datetime) -> dict[str, Any]:
    """The patient's monitoring once the check-in stamped ``at`` was applied: every
    check-in published before it for the same patient (same topic and partition) was
    handled by then. Events on other topics may not have been: no order holds across
    topics."""

    async def fetch() -> dict[str, Any] | None:
        r = await api.get(f"/v1/patients/{pid}/monitoring")
        return r.json() if r.status_code == 200 else None

    def done(m: dict[str, Any] | None) -> bool:
        return (
            m is not None
            and m["last_checkin_at"] is not None
            and datetime.fromisoformat(m["last_checkin_at"]) == at
        )

    result: dict[str, Any] = await eventually(fetch, done, what=f"check-in at {at} applied")
    return result
