"""Whole courses of treatment on the dev clock: sessions that really took place, weeks apart.

The ``clocked`` stack (tests/support/clocked.py) runs every service with the
production timing defaults and ``DEV_CLOCK=1``; a test moves time forward to a
session's start before recording what happened at it (complete and no-show are
refused before then: services/scheduling/domain/lifecycle.py), so six doses over three
weeks, maintenance four weeks later and the next one after it play out in seconds.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from services.scheduling.reactions import quiet_checkin
from shared.events import CheckinFlagged, CloudEvent
from tests.support.clocked import ClockedStack
from tests.support.eventually import eventually
from tools.factories import checkin_body, intake_body

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
EVERY_DAY = {d: ["08:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
ANY_TIME = {"weekdays": list(EVERY_DAY), "earliest": "08:00", "latest": "18:00"}
REMISSION = [1, 1, 1, 0, 1, 0, 0, 0, 0]  # 4
RELAPSE = [2, 2, 2, 1, 1, 1, 1, 1, 0]  # 11: back to >= 10 after remission: worsening


def ts(a: dict[str, Any], key: str = "start") -> datetime:
    return datetime.fromisoformat(a[key])


async def new_site(sched: httpx.AsyncClient, **kw: Any) -> str:
    site_id = f"site-{uuid.uuid4().hex[:8]}"
    body = {
        "name": "Journeys",
        "timezone": "America/New_York",
        "hours": EVERY_DAY,
        "treatment_rooms": 2,
        "therapists": 2,
        **kw,
    }
    r = await sched.put(f"/v1/sites/{site_id}", json=body)
    assert r.status_code == 200, r.text
    return site_id


async def appointments(sched: httpx.AsyncClient, pid: str) -> list[dict[str, Any]]:
    r = await sched.get(f"/v1/patients/{pid}/appointments")
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()
    return result


async def enrol(
    clocked: ClockedStack, intake: httpx.AsyncClient, sched: httpx.AsyncClient, site_id: str
) -> tuple[str, list[dict[str, Any]]]:
    """An eligible patient submitted at the stack's time; (patient id, the series)."""
    now = await clocked.now()
    body = intake_body(
        site_id=site_id,
        submitted_at=(now - timedelta(minutes=1)).isoformat(),
        preferences=ANY_TIME,
    )
    pid = body["patient"]["patient_id"]
    r = await intake.post("/v1/intakes", json=body)
    assert r.status_code == 201, r.text
    series = await eventually(
        lambda: appointments(sched, pid), lambda a: len(a) == 12, what="series"
    )
    return pid, series


async def step(sched: httpx.AsyncClient, appt: dict[str, Any], *actions: str, **body: Any) -> Any:
    r: httpx.Response | None = None
    for action in actions:
        r = await sched.post(
            f"/v1/appointments/{appt['appointment_id']}/{action}", json=body or None
        )
        assert r.status_code == 200, r.text
    assert r is not None
    return r.json()


async def attend(clocked: ClockedStack, sched: httpx.AsyncClient, appt: dict[str, Any]) -> Any:
    """Time passes to the session's start; it is confirmed and completed."""
    await clocked.advance_to(ts(appt))
    return await step(sched, appt, "confirm", "complete")


def live(appts: list[dict[str, Any]], kind: str | None = None) -> list[dict[str, Any]]:
    return sorted(
        (
            a
            for a in appts
            if a["status"] in ("proposed", "confirmed") and (kind is None or a["kind"] == kind)
        ),
        key=ts,
    )


def given_doses(appts: list[dict[str, Any]]) -> list[datetime]:
    return sorted(
        ts(a)
        for a in appts
        if a["kind"] != "integration" and a["status"] in ("proposed", "confirmed", "completed")
    )


def assert_spaced(starts: list[datetime], gap: timedelta = timedelta(hours=48)) -> None:
    for a, b in itertools.pairwise(starts):
        assert b - a >= gap, f"doses {a} and {b} only {b - a} apart"
    for i, first in enumerate(starts):
        assert len([s for s in starts[i:] if s - first < WEEK]) <= 2, f"3 doses in 7 days {first}"


async def handled_checkins(clocked: ClockedStack) -> None:
    """Wait until the scheduling worker has handled every check-in intake has written
    that it acts on (the ids of their ``checkin.flagged`` twins are in scheduling's
    inbox; a calm check-in has no twin, and one that came to it all the same would be
    ignored and recorded nowhere: services/scheduling/reactions.py ``quiet_checkin``):
    what they did, or did not do, is final."""
    conn = await asyncpg.connect(clocked.dsn)

    async def unhandled() -> int:
        written = await conn.fetch(
            "SELECT o.event_id::text AS id, EXISTS (SELECT 1 FROM scheduling.inbox i "
            "WHERE i.event_id = o.event_id::text) AS seen "
            "FROM intake.outbox_events o WHERE o.topic LIKE '%checkin.flagged'"
        )
        # each event as the worker reads it, from Kafka: the outbox keeps only a record
        # of a published one (shared/migrations/0000_outbox_published.sql)
        on_kafka = {
            e.id: e
            for e in (CloudEvent.from_bytes(r.value) for r in clocked.events.on("checkin.flagged"))
        }

        def waiting(r: asyncpg.Record) -> bool:
            event = on_kafka.get(r["id"])
            if event is None:  # not on Kafka yet: whether it is acted on is not known yet
                return True
            return not r["seen"] and not quiet_checkin(CheckinFlagged.model_validate(event.data))

        return sum(map(waiting, written))

    try:
        await eventually(unhandled, lambda n: n == 0, what="scheduling handled the check-ins")
    finally:
        await conn.close()


async def worsen(clocked: ClockedStack, intake: httpx.AsyncClient, pid: str) -> None:
    """A remission then a relapse check-in (verdict worsening), returning once the
    scheduling worker has handled them."""
    now = await clocked.now()
    for at, phq9 in (
        (now - timedelta(seconds=20), REMISSION),
        (now - timedelta(seconds=10), RELAPSE),
    ):
        r = await intake.post(
            "/v1/checkins", json=checkin_body(pid, phq9, submitted_at=at.isoformat())
        )
        assert r.status_code == 202, r.text
    assert r.json()["assessment"]["worsening"] is True
    await handled_checkins(clocked)


async def test_a_whole_course_six_doses_then_maintenance_moved_forward_and_recurring(
    clocked: ClockedStack,
) -> None:
    async with clocked.client("scheduling") as sched, clocked.client("intake") as intake:
        site_id = await new_site(sched)
        pid, series = await enrol(clocked, intake, sched, site_id)
        first = live(series, "dosing")[0]

        # nothing is recorded before it happens
        await step(sched, first, "confirm")
        for action in ("complete", "no-show"):
            r = await sched.post(f"/v1/appointments/{first['appointment_id']}/{action}")
            assert r.status_code == 409, r.text
            assert r.json()["error"] == "not_started"
        r = await sched.post(
            f"/v1/appointments/{first['appointment_id']}/vitals",
            json={"systolic": 120, "diastolic": 80, "taken_at": (await clocked.now()).isoformat()},
        )
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "taken_at"

        # dose 1 takes place; dose 2 is cancelled: its replacement keeps 48 h from dose 1
        now = await clocked.advance_to(ts(first))
        r = await sched.post(
            f"/v1/appointments/{first['appointment_id']}/vitals",
            json={"systolic": 120, "diastolic": 80, "taken_at": now.isoformat()},
        )
        assert r.json()["deferred"] is False, r.text
        await step(sched, first, "complete")
        second = live(await appointments(sched, pid), "dosing")[0]
        await step(sched, second, "cancel")
        appts = await appointments(sched, pid)
        replacement = next(a for a in live(appts, "dosing") if a["reason"] == "rebooked")
        assert ts(replacement) - ts(first) >= timedelta(hours=48)
        assert_spaced(given_doses(appts))

        # the rest of the induction; the last dose's completion is recorded 3 days late
        for dose in live(appts, "dosing")[:-1]:
            await attend(clocked, sched, dose)
        last = live(await appointments(sched, pid), "dosing")[-1]
        await clocked.advance_to(ts(last) + 3 * DAY)
        await step(sched, last, "confirm", "complete")
        appts = await appointments(sched, pid)
        assert len([a for a in appts if a["kind"] == "dosing" and a["status"] == "completed"]) == 6
        [post] = live(appts, "maintenance")
        assert post["reason"] == "post_induction"
        # four weeks from the dose's end, not from when its completion was recorded
        assert 28 * DAY <= ts(post) - ts(last, "end") < 29 * DAY
        assert_spaced(given_doses(appts))

        # a worsening a week on, the pending maintenance ~3 weeks away: it is moved forward
        await clocked.advance(WEEK)
        await worsen(clocked, intake, pid)
        appts = await eventually(
            lambda: appointments(sched, pid),
            lambda a: any(x["reason"] == "worsening" for x in live(a, "maintenance")),
            what="the maintenance moved forward",
        )
        [early] = live(appts, "maintenance")
        assert ts(early) - await clocked.now() <= WEEK
        moved = next(a for a in appts if a["appointment_id"] == post["appointment_id"])
        assert (moved["status"], moved["cause"]) == ("cancelled", "moved_forward")
        old_talk = [a for a in appts if a["series_id"] == post["series_id"] and a != moved]
        assert {(a["kind"], a["status"]) for a in old_talk} == {("integration", "cancelled")}
        # a second worsening finds it pending within the week: still one
        await worsen(clocked, intake, pid)
        assert [
            a["appointment_id"] for a in live(await appointments(sched, pid), "maintenance")
        ] == [early["appointment_id"]]

        # the maintenance session takes place: the next one the interval after it
        await attend(clocked, sched, early)
        appts = await eventually(
            lambda: appointments(sched, pid),
            lambda a: len(live(a, "maintenance")) == 1,
            what="the next maintenance",
        )
        [following] = live(appts, "maintenance")
        assert following["reason"] == "maintenance"
        assert 28 * DAY <= ts(following) - ts(early, "end") < 29 * DAY
        assert_spaced(given_doses(appts))


async def test_a_cancel_without_rebooking_ends_that_dose_and_integrations_are_rebooked(
    clocked: ClockedStack,
) -> None:
    async with clocked.client("scheduling") as sched, clocked.client("intake") as intake:
        site_id = await new_site(sched)
        pid, series = await enrol(clocked, intake, sched, site_id)
        doses = live(series, "dosing")

        # rebook false: the dose and its integration end, nothing replaces them
        fourth = doses[3]
        done = await step(sched, fourth, "cancel", rebook=False, reason="patient_request")
        assert (done["status"], done["cause"]) == ("cancelled", "patient_request")
        appts = await appointments(sched, pid)
        assert not [a for a in appts if a["reason"] == "rebooked"]
        assert len(live(appts)) == 10

        # a cancelled integration is rebooked inside its window (1-3 days after its dose)
        zone = ZoneInfo("America/New_York")
        second = doses[1]
        talk = next(a for a in live(appts, "integration") if a["sequence"] == second["sequence"])
        await step(sched, talk, "cancel")
        appts = await appointments(sched, pid)
        [again] = [a for a in live(appts, "integration") if a["sequence"] == second["sequence"]]
        assert (again["reason"], again["replaces"]) == ("rebooked", talk["appointment_id"])
        days = (ts(again).astimezone(zone).date() - ts(second).astimezone(zone).date()).days
        assert 1 <= days <= 3

        # a missed one too: time passes to it, nobody comes
        first = doses[0]
        await attend(clocked, sched, first)
        talk = next(a for a in live(appts, "integration") if a["sequence"] == first["sequence"])
        await clocked.advance_to(ts(talk))
        await step(sched, talk, "confirm", "no-show")
        appts = await appointments(sched, pid)
        [again] = [a for a in live(appts, "integration") if a["sequence"] == first["sequence"]]
        days = (ts(again).astimezone(zone).date() - ts(first).astimezone(zone).date()).days
        assert 1 <= days <= 3
        assert again["replaces"] == talk["appointment_id"]

        # the remaining doses take place: the induction is over without the ended one,
        # and the first maintenance follows the last dose completed
        for dose in live(await appointments(sched, pid), "dosing"):
            await attend(clocked, sched, dose)
        appts = await appointments(sched, pid)
        completed = [a for a in appts if a["kind"] == "dosing" and a["status"] == "completed"]
        assert len(completed) == 5
        [post] = live(appts, "maintenance")
        assert post["reason"] == "post_induction"
        last_end = max(ts(a, "end") for a in completed)
        assert 28 * DAY <= ts(post) - last_end < 29 * DAY


async def test_lifecycle_confirm_complete_and_illegal_steps(clocked: ClockedStack) -> None:
    async with clocked.client("scheduling") as sched, clocked.client("intake") as intake:
        _, series = await enrol(clocked, intake, sched, await new_site(sched))
        first = live(series, "dosing")[0]
        aid = first["appointment_id"]
        r = await sched.post(f"/v1/appointments/{aid}/complete")
        assert r.status_code == 409  # proposed: confirm first
        confirmed = await sched.post(f"/v1/appointments/{aid}/confirm", json={"by": "front desk"})
        assert confirmed.json()["status"] == "confirmed"
        assert (await sched.post(f"/v1/appointments/{aid}/confirm")).status_code == 200  # no-op
        await clocked.advance_to(ts(first))
        done = await sched.post(f"/v1/appointments/{aid}/complete")
        assert done.json()["status"] == "completed"
        assert (await sched.post(f"/v1/appointments/{aid}/complete")).status_code == 200  # no-op
        assert (await sched.post(f"/v1/appointments/{aid}/cancel")).status_code == 409
        await eventually(
            lambda: (
                [
                    d["status"]
                    for d in clocked.events.data("appointment.changed")
                    if d["appointment_id"] == aid
                ]
                == ["confirmed", "completed"]
            ),
            what="two appointment.changed",
        )


async def test_high_vitals_on_the_day_defer_the_dose_and_rebook_it(clocked: ClockedStack) -> None:
    async with clocked.client("scheduling") as sched, clocked.client("intake") as intake:
        pid, series = await enrol(clocked, intake, sched, await new_site(sched))
        # the last dose: an earlier one's replacement could find no time that keeps 48 h
        # and two a week with the series' other doses (test_who_is_scheduled.py)
        dose = live(series, "dosing")[-1]
        now = await clocked.advance_to(ts(dose) - timedelta(hours=1))
        path = f"/v1/appointments/{dose['appointment_id']}/vitals"
        ok = await sched.post(
            path, json={"systolic": 159, "diastolic": 99, "taken_at": now.isoformat()}
        )
        assert ok.json()["deferred"] is False, ok.text
        r = await sched.post(path, json={"systolic": 160, "diastolic": 80})  # taken now
        assert r.status_code == 200, r.text
        assert r.json()["deferred"] is True
        assert r.json()["appointment"]["status"] == "cancelled"
        assert r.json()["appointment"]["cause"] == "deferred_vitals"
        assert any(a["kind"] == "dosing" for a in r.json()["rebooked"])
        await eventually(
            lambda: any(d["patient_id"] == pid for d in clocked.events.data("dose.deferred")),
            what="dose.deferred",
        )


async def test_site_summary_counts_inductions_in_progress_completed_and_ended(
    clocked: ClockedStack,
) -> None:
    async with clocked.client("scheduling") as sched, clocked.client("intake") as intake:
        site_id = await new_site(sched, treatment_rooms=3, therapists=3)
        _, series = await enrol(clocked, intake, sched, site_id)
        dropped, _ = await enrol(clocked, intake, sched, site_id)
        r = await intake.post(f"/v1/patients/{dropped}/discharge")
        assert r.status_code == 200, r.text
        await eventually(
            lambda: appointments(sched, dropped), lambda a: not live(a), what="discharge"
        )
        for dose in live(series, "dosing"):
            await attend(clocked, sched, dose)
        # enrolled after the weeks spent above: still in induction
        await enrol(clocked, intake, sched, site_id)
        summary = (await sched.get(f"/v1/sites/{site_id}/summary")).json()
        assert summary["patients_in_induction"] == 1  # only the third has doses still planned
        assert summary["inductions_ended"] == 2
        assert summary["inductions_completed"] == 1
        assert summary["induction_completion_rate"] == 0.5
        for use in (summary["utilisation_today"], summary["utilisation_week"]):
            assert all(v is None or 0 <= v <= 1 for v in use.values())
