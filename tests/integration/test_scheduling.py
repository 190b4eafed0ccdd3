"""Scheduling on the real broker and database: intake -> series, lifecycle, waitlist, races."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from services.scheduling.repository import series as series_repo
from services.scheduling.rows import NewSeries, NewSession, SlotTaken
from shared.db import create_pool
from shared.events import CloudEvent, IntakeScreened, new_event
from tests.support.eventually import eventually
from tests.support.scheduling import WEEK, appointments, induction, new_site, site_body
from tests.support.stack import (
    EventLog,
    SchedulingStack,
    topic,
)
from tools.factories import intake_body

pytestmark = pytest.mark.integration


async def test_site_validation_names_every_bad_field_and_changes_nothing(
    sched: httpx.AsyncClient,
) -> None:
    site_id = f"site-{uuid.uuid4().hex[:8]}"
    bad = site_body(
        timezone="Mars/Base",
        treatment_rooms=0,
        therapists=-1,
        hours={"mon": ["18:00", "08:00"], "funday": ["08:00", "10:00"]},
    )
    r = await sched.put(f"/v1/sites/{site_id}", json=bad)
    assert r.status_code == 422, r.text
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"timezone", "treatment_rooms", "therapists", "hours.mon"} <= fields
    assert any(f.startswith("hours") and "funday" in f for f in fields), fields
    assert (await sched.get(f"/v1/sites/{site_id}")).status_code == 404


async def test_schedule_range_must_be_ordered(sched: httpx.AsyncClient) -> None:
    site_id = await new_site(sched)
    r = await sched.get(
        f"/v1/sites/{site_id}/schedule",
        params={"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "to"
    assert (await sched.post("/v1/appointments/nope/confirm")).status_code == 404


async def test_an_eligible_intake_gets_a_whole_induction_series_inside_site_hours(
    sched: httpx.AsyncClient, intake_http: httpx.AsyncClient, event_log: EventLog
) -> None:
    site_id = await new_site(sched)
    body = intake_body(site_id=site_id)
    pid = body["patient"]["patient_id"]
    assert (await intake_http.post("/v1/intakes", json=body)).status_code == 201
    appts = await eventually(
        lambda: appointments(sched, pid), lambda a: len(a) == 12, what="12 appointments"
    )
    doses = [a for a in appts if a["kind"] == "dosing"]
    integrations = [a for a in appts if a["kind"] == "integration"]
    assert len(doses) == len(integrations) == 6
    assert {a["status"] for a in appts} == {"proposed"}
    assert {a["reason"] for a in appts} == {"induction"}
    assert {tuple(a["relaxed"]) for a in appts} == {()}  # mon-fri 08-18 fits the protocol
    assert len({a["series_id"] for a in appts}) == 1
    tz = ZoneInfo("America/New_York")
    for a in appts:
        start = datetime.fromisoformat(a["start"]).astimezone(tz)
        end = datetime.fromisoformat(a["end"]).astimezone(tz)
        assert start.strftime("%a").lower()[:3] in WEEK
        assert start.strftime("%H:%M") >= "08:00"
        assert end.strftime("%H:%M") <= "18:00"
        assert start > datetime.now(UTC).astimezone(tz)
    starts = sorted(datetime.fromisoformat(d["start"]) for d in doses)
    assert all(b - a >= timedelta(hours=48) for a, b in itertools.pairwise(starts))
    await eventually(
        lambda: (
            len([r for r in event_log.on("appointment.proposed") if r.key == pid.encode()]) == 12
        ),
        timeout=30,
        what="12 appointment.proposed events",
    )


async def test_the_site_schedule_answers_each_appointment_as_the_patient_list_does(
    sched: httpx.AsyncClient, intake_http: httpx.AsyncClient
) -> None:
    site_id = await new_site(sched)
    body = intake_body(site_id=site_id, preferences={"weekdays": ["mon"]})  # relaxed: said
    pid = body["patient"]["patient_id"]
    assert (await intake_http.post("/v1/intakes", json=body)).status_code == 201
    mine = await eventually(lambda: appointments(sched, pid), lambda a: len(a) == 12, what="series")
    r = await sched.get(
        f"/v1/sites/{site_id}/schedule",
        params={"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
    )
    assert r.status_code == 200
    got = r.json()
    # the same values, in the same formats ("...Z" times), as the validated answer
    assert sorted(got, key=_by_time) == sorted(mine, key=_by_time)
    assert [list(a) for a in got] == [list(a) for a in mine]  # the same fields, in order
    assert all(a["start"].endswith("Z") and a["end"].endswith("Z") for a in got)


def _by_time(a: dict[str, Any]) -> tuple[str, str]:
    return a["start"], a["resource"]


async def test_a_replayed_intake_event_books_nothing_twice(
    sched: httpx.AsyncClient,
    intake_http: httpx.AsyncClient,
    event_log: EventLog,
    scheduling: SchedulingStack,
) -> None:
    site_id = await new_site(sched)
    body = intake_body(site_id=site_id)
    pid = body["patient"]["patient_id"]
    await intake_http.post("/v1/intakes", json=body)
    await eventually(lambda: appointments(sched, pid), lambda a: len(a) == 12, what="series")
    [record] = [r for r in event_log.on("intake.screened") if r.key == pid.encode()]
    from aiokafka import AIOKafkaProducer

    from tests.support.stack import KAFKA

    producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await producer.start()
    try:
        await producer.send_and_wait(topic("intake.screened"), record.value, key=record.key)
        # a new event (other id) for the same patient must not book a second series either
        again = CloudEvent.from_bytes(record.value).model_copy(update={"id": str(uuid.uuid4())})
        await producer.send_and_wait(topic("intake.screened"), again.to_bytes(), key=record.key)
        # a sentinel on the same partition: once it is applied, the repeats were handled
        sentinel = intake_body(site_id=site_id)
        sentinel["patient"]["patient_id"] = pid + "-s"
        ev = new_event(
            IntakeScreened(
                intake_id=sentinel["intake_id"],
                patient_id=pid,
                site_id="site-nowhere-" + pid,
                submitted_at=datetime.now(UTC),
                decision="needs_review",
                reasons=("x",),
                phq9_total=20,
                phq9_severity="severe",
                phq9_item9_positive=False,
                suicide_risk="none",
            ),
            source="tests",
            subject=pid,
            time=datetime.now(UTC),
        )
        await producer.send_and_wait(topic("intake.screened"), ev.to_bytes(), key=record.key)
    finally:
        await producer.stop()

    async def site_moved() -> str:
        conn = await asyncpg.connect(scheduling.dsn)
        try:
            return str(
                await conn.fetchval(
                    "SELECT site_id FROM scheduling.patients WHERE patient_id = $1", pid
                )
            )
        finally:
            await conn.close()

    await eventually(site_moved, lambda s: s.startswith("site-nowhere"), what="sentinel applied")
    assert len(await appointments(sched, pid)) == 12


async def test_cancelling_a_dose_rebooks_it_with_its_integration(
    sched: httpx.AsyncClient, intake_http: httpx.AsyncClient
) -> None:
    pid, appts = await induction(sched, intake_http)
    dose = next(a for a in appts if a["kind"] == "dosing" and a["sequence"] == 3)
    r = await sched.post(f"/v1/appointments/{dose['appointment_id']}/cancel")
    assert r.json()["status"] == "cancelled"
    after = await appointments(sched, pid)
    live = [a for a in after if a["status"] == "proposed"]
    assert len(live) == 12
    rebooked = [a for a in live if a["reason"] == "rebooked"]
    assert {a["kind"] for a in rebooked} == {"dosing", "integration"}
    assert next(a for a in rebooked if a["kind"] == "dosing")["replaces"] == dose["appointment_id"]
    assert all(a["sequence"] == 3 for a in rebooked)


async def test_a_patient_of_an_unknown_site_waits_until_the_site_appears(
    sched: httpx.AsyncClient, intake_http: httpx.AsyncClient
) -> None:
    site_id = f"site-{uuid.uuid4().hex[:8]}"
    body = intake_body(site_id=site_id)
    pid = body["patient"]["patient_id"]
    await intake_http.post("/v1/intakes", json=body)

    async def waiting() -> list[dict[str, Any]]:
        r = await sched.get("/v1/waitlist", params={"site_id": site_id})
        result: list[dict[str, Any]] = r.json()
        return result

    entries = await eventually(waiting, lambda w: len(w) == 1, what="waitlist entry")
    assert entries[0]["patient_id"] == pid
    assert entries[0]["reason"] == "site_not_configured"
    assert (await sched.put(f"/v1/sites/{site_id}", json=site_body())).status_code == 200
    assert len(await appointments(sched, pid)) == 12
    assert await waiting() == []


async def test_two_workers_and_fifty_patients_on_one_room_never_double_book(
    sched: httpx.AsyncClient, intake_http: httpx.AsyncClient, scheduling: SchedulingStack
) -> None:
    site_id = await new_site(sched, treatment_rooms=1, therapists=1)
    bodies = [intake_body(site_id=site_id) for _ in range(50)]
    answers = await asyncio.gather(*(intake_http.post("/v1/intakes", json=b) for b in bodies))
    assert all(a.status_code == 201 for a in answers)
    pids = {b["patient"]["patient_id"] for b in bodies}

    async def settled() -> int:
        conn = await asyncpg.connect(scheduling.dsn)
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM scheduling.patients p WHERE p.patient_id = ANY($1) "
                    "AND (EXISTS (SELECT 1 FROM scheduling.series s "
                    "WHERE s.patient_id = p.patient_id) OR EXISTS (SELECT 1 "
                    "FROM scheduling.waitlist w WHERE w.patient_id = p.patient_id))",
                    list(pids),
                )
            )
        finally:
            await conn.close()

    await eventually(settled, lambda n: n == 50, timeout=120, what="50 patients settled")
    conn = await asyncpg.connect(scheduling.dsn)
    try:
        overlaps = await conn.fetchval(
            "SELECT count(*) FROM scheduling.appointments a JOIN scheduling.appointments b "
            "ON a.site_id = b.site_id AND a.resource = b.resource "
            "AND a.appointment_id < b.appointment_id "
            "AND tstzrange(a.start_at, a.end_at) && tstzrange(b.start_at, b.end_at) "
            "WHERE a.site_id = $1 AND a.status IN ('proposed', 'confirmed') "
            "AND b.status IN ('proposed', 'confirmed')",
            site_id,
        )
        series = await conn.fetchval(
            "SELECT count(*) FROM scheduling.series WHERE site_id = $1", site_id
        )
        waiting = await conn.fetchval(
            "SELECT count(*) FROM scheduling.waitlist WHERE site_id = $1", site_id
        )
    finally:
        await conn.close()
    assert overlaps == 0
    assert series + waiting == 50
    assert series >= 5  # one room still fits several series in 90 days


async def test_an_overlapping_booking_is_refused_as_slot_taken(
    sched: httpx.AsyncClient, scheduling: SchedulingStack
) -> None:
    """The repository's answer to a lost race (the planner re-plans on it): the
    exclusion constraint's refusal as rows.SlotTaken, under a savepoint that undoes only
    the losing booking. Everything is rolled back at the end."""
    site_id = await new_site(sched, treatment_rooms=1, therapists=1)
    start = datetime(2099, 1, 5, 9, tzinfo=UTC)

    def plan(n: int, minutes: int) -> tuple[NewSeries, list[NewSession]]:
        row = NewSeries(f"race-{uuid.uuid4()}", f"patient-{n}", site_id, "induction", "x", ())
        at = start + timedelta(minutes=minutes)
        session = NewSession(
            str(uuid.uuid4()), "dosing", 1, at, at + timedelta(hours=2), "room-1", None
        )
        return row, [session]

    pool = await create_pool(scheduling.dsn, "scheduling", min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            outer = conn.transaction()
            await outer.start()
            try:
                first, sessions = plan(1, 0)
                await series_repo.book(conn, first, new=True, sessions=sessions, events=[])
                second, overlapping = plan(2, 60)
                with pytest.raises(SlotTaken):
                    async with conn.transaction():
                        await series_repo.book(
                            conn, second, new=True, sessions=overlapping, events=[]
                        )
                booked = await conn.fetchval(
                    "SELECT count(*) FROM appointments WHERE site_id = $1", site_id
                )
            finally:
                await outer.rollback()
    finally:
        await pool.close()
    assert booked == 1


async def test_an_approved_review_schedules_like_an_eligible_intake(
    sched: httpx.AsyncClient, intake_http: httpx.AsyncClient
) -> None:
    site_id = await new_site(sched)
    body = intake_body(site_id=site_id, conditions=["bipolar_disorder"])
    pid = body["patient"]["patient_id"]
    r = await intake_http.post("/v1/intakes", json=body)
    assert r.json()["decision"] == "needs_review"
    approved = await intake_http.post(
        f"/v1/intakes/{body['intake_id']}/approve", json={"by": "Dr. Review"}
    )
    assert approved.status_code == 200
    appts = await eventually(
        lambda: appointments(sched, pid), lambda a: len(a) == 12, what="series"
    )
    assert {a["reason"] for a in appts} == {"induction"}


async def test_discharge_cancels_future_appointments(
    sched: httpx.AsyncClient, intake_http: httpx.AsyncClient
) -> None:
    site_id = await new_site(sched)
    body = intake_body(site_id=site_id)
    pid = body["patient"]["patient_id"]
    await intake_http.post("/v1/intakes", json=body)
    await eventually(lambda: appointments(sched, pid), lambda a: len(a) == 12, what="series")
    assert (await intake_http.post(f"/v1/patients/{pid}/discharge")).status_code == 200
    after = await eventually(
        lambda: appointments(sched, pid),
        lambda a: all(x["status"] == "cancelled" for x in a),
        what="cancelled",
    )
    assert {a["cause"] for a in after} == {"discharged"}


async def test_a_preference_the_protocol_cannot_honour_is_relaxed_and_said(
    sched: httpx.AsyncClient, intake_http: httpx.AsyncClient
) -> None:
    site_id = await new_site(sched)
    body = intake_body(site_id=site_id, preferences={"weekdays": ["mon"]})  # 2 a week: no
    pid = body["patient"]["patient_id"]
    await intake_http.post("/v1/intakes", json=body)
    appts = await eventually(
        lambda: appointments(sched, pid), lambda a: len(a) == 12, what="series"
    )
    assert {tuple(a["relaxed"]) for a in appts} == {("weekdays",)}
