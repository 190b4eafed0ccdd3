"""What the running services publish, read as an outside consumer reads it: every event
on every topic of the session so far (the ``event_log``) through the official CloudEvents
SDK's ``from_kafka`` (structured mode: no ``ce_`` header) and against a CloudEvents 1.0
JSON Schema, with the right type, source and subject (tests/support/interop.py).

A journey through the three services first makes sure most event types are there, even
when this file runs alone.
"""

from __future__ import annotations

import json

import httpx
import pytest

from shared.events import BINARY_MODE_HEADER_PREFIX, TOPICS
from tests.support.alerts import SUICIDAL, alerts_of, checkin
from tests.support.eventually import eventually
from tests.support.interop import check_message
from tests.support.scheduling import appointments, new_site
from tests.support.stack import EventLog, Record
from tools.factories import intake_body

pytestmark = pytest.mark.integration

# What the journey below publishes (checkin.missed and dose.deferred need time to pass,
# and are checked whenever an earlier test of the session made one).
JOURNEY = {
    "intake.screened",
    "intake.reviewed",
    "checkin.recorded",
    "checkin.flagged",
    "safety.signal",
    "pipeline.heartbeat",
    "patient.discharged",
    "appointment.proposed",
    "appointment.changed",
    "series.waitlisted",
    "alert.raised",
    "alert.changed",
}


async def journey(
    intake_http: httpx.AsyncClient, sched: httpx.AsyncClient, alerts_api: httpx.AsyncClient
) -> set[str]:
    """An induction, a confirmation, a suicidal check-in and its acknowledged alert, a
    reviewed intake, a patient at a site not configured, a discharge; their patients."""
    site_id = await new_site(sched)
    body = intake_body(site_id=site_id)
    pid = body["patient"]["patient_id"]
    assert (await intake_http.post("/v1/intakes", json=body)).status_code == 201
    appts = await eventually(
        lambda: appointments(sched, pid), lambda a: len(a) == 12, what="series"
    )
    r = await sched.post(f"/v1/appointments/{appts[0]['appointment_id']}/confirm")
    assert r.status_code == 200, r.text

    await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
    [alert] = await eventually(
        lambda: alerts_of(alerts_api, pid, kind="suicide_risk"), bool, what="the alert"
    )
    r = await alerts_api.post(f"/v1/alerts/{alert['alert_id']}/acknowledge", json={"by": "Dr. C"})
    assert r.status_code == 200, r.text

    reviewed = intake_body(site_id=site_id)
    reviewed["cssrs"]["intent"] = True
    assert (await intake_http.post("/v1/intakes", json=reviewed)).status_code == 201
    r = await intake_http.post(f"/v1/intakes/{reviewed['intake_id']}/approve", json={"by": "Dr. R"})
    assert r.status_code == 200, r.text

    elsewhere = intake_body(site_id=f"site-unconfigured-{pid}")
    assert (await intake_http.post("/v1/intakes", json=elsewhere)).status_code == 201

    r = await intake_http.post(f"/v1/patients/{pid}/discharge", json={"by": "Dr. C"})
    assert r.status_code == 200, r.text
    return {pid, reviewed["patient"]["patient_id"], elsewhere["patient"]["patient_id"]}


def relayed(record: Record) -> bool:
    """Sent by a service's relay (which sets the content type), not put on the topic by a
    test (tests/support/alerts.py publish, the evolution and dead-letter tests)."""
    return "content-type" in record.headers


async def test_every_event_the_services_published_is_a_structured_cloudevent_to_the_sdk(
    intake_http: httpx.AsyncClient,
    sched: httpx.AsyncClient,
    alerts_api: httpx.AsyncClient,
    event_log: EventLog,
) -> None:
    pids = await journey(intake_http, sched, alerts_api)

    def ours() -> list[Record]:
        return [
            r
            for r in event_log.records
            if r.topic in TOPICS and r.key is not None and r.key.decode() in pids
        ]

    def published() -> set[str]:
        return {r.topic for r in ours()} | {r.topic for r in event_log.on("pipeline.heartbeat")}

    await eventually(
        published, lambda seen: seen >= JOURNEY, timeout=60, what="every event of the journey"
    )
    for record in ours():  # the services published every event of our patients
        assert relayed(record), (record.topic, record.headers)

    checked: dict[str, int] = {}
    for record in list(event_log.records):
        binary = [h for h in record.headers if h.lower().startswith(BINARY_MODE_HEADER_PREFIX)]
        assert not binary, f"{record.topic}@{record.offset}: {binary}"  # dead letters too
        if record.topic not in TOPICS or not relayed(record):
            continue
        try:
            check_message(record.topic, record.key, record.value, record.headers)
        except Exception as exc:
            event = json.loads(record.value)
            raise AssertionError(f"{record.topic} {event.get('id')}: {exc!r}") from exc
        checked[record.topic] = checked.get(record.topic, 0) + 1
    assert set(checked) >= JOURNEY, checked
