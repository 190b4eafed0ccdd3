"""Who is scheduled, and when (docs/domain.md), on the real broker and database.

Clearance, spacing across every dose, preferences, a new course after discharge, the
hold while at risk and per-site protocols. Journeys that need time to pass (sessions
completed, maintenance weeks later) are in test_journeys.py, on the dev clock.
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from tests.support.eventually import eventually
from tests.support.scheduling import appointments, new_site
from tests.support.stack import (
    EventLog,
    SchedulingStack,
)
from tools.factories import checkin_body, intake_body

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
# a PHQ-9 with total 4 (remission), then one with total 12: "a rise back to >= 10 after
# remission" (services/intake/domain/mbc.py) makes the second a worsening
REMISSION = [1, 1, 1, 0, 1, 0, 0, 0, 0]
RELAPSE = [2, 2, 2, 1, 1, 1, 1, 1, 0]
IDEATION = [1, 1, 1, 0, 1, 1, 0, 0, 2]


async def handled(dsn: str, event_log: EventLog, topic: str, match: dict[str, Any]) -> None:
    """Wait until the scheduling worker has handled the event on ``topic`` whose data holds
    ``match`` (its id is in scheduling's inbox): what it did, or did not do, is final."""

    def event_id() -> str | None:
        for record in event_log.on(topic):
            event = json.loads(record.value)
            if all(event["data"].get(k) == v for k, v in match.items()):
                return str(event["id"])
        return None

    await eventually(lambda: event_id() is not None, what=f"{topic} {match}")
    conn = await asyncpg.connect(dsn)
    try:
        await eventually(
            lambda: conn.fetchval(
                "SELECT count(*) FROM scheduling.inbox WHERE event_id = $1", event_id()
            ),
            lambda n: n == 1,
            what=f"scheduling handled {topic} {match}",
        )
    finally:
        await conn.close()


async def post_intake(intake_http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await intake_http.post("/v1/intakes", json=body)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def post_checkin(
    intake_http: httpx.AsyncClient, pid: str, phq9: list[int], at: datetime, **kw: Any
) -> dict[str, Any]:
    body = checkin_body(pid, phq9, submitted_at=at.isoformat(), **kw)
    r = await intake_http.post("/v1/checkins", json=body)
    assert r.status_code == 202, r.text
    return body


async def worsen(
    intake_http: httpx.AsyncClient, scheduling: SchedulingStack, event_log: EventLog, pid: str
) -> None:
    """Two check-ins, remission then relapse: the second's verdict is ``worsening``; return
    once the scheduling worker has handled it."""
    now = datetime.now(UTC)  # after the intake's submitted_at (tools.factories: 1 min ago)
    await post_checkin(intake_http, pid, REMISSION, now - timedelta(seconds=20))
    body = await post_checkin(intake_http, pid, RELAPSE, now - timedelta(seconds=10))
    # scheduling reads the flagged twin (shared/events.py CheckinFlagged)
    await handled(scheduling.dsn, event_log, "checkin.flagged", {"checkin_id": body["checkin_id"]})
    [recorded] = [
        d for d in event_log.data("checkin.flagged") if d["checkin_id"] == body["checkin_id"]
    ]
    assert recorded["assessment"]["worsening"] is True


def doses_of(appts: list[dict[str, Any]]) -> list[datetime]:
    """Starts of every dose that was or will be given (not cancelled, not missed)."""
    return sorted(
        datetime.fromisoformat(a["start"])
        for a in appts
        if a["kind"] != "integration" and a["status"] in ("proposed", "confirmed", "completed")
    )


def assert_spaced(starts: list[datetime], gap: timedelta, per_week: int) -> None:
    for a, b in itertools.pairwise(starts):
        assert b - a >= gap, f"doses {a} and {b} are {b - a} apart (< {gap})"
    for i, first in enumerate(starts):
        inside = [s for s in starts[i:] if s - first < WEEK]
        assert len(inside) <= per_week, f"{len(inside)} doses in the 7 days from {first}"


# --- 1. only a cleared patient is scheduled automatically ----------------------------


@pytest.mark.parametrize(
    ("changes", "review"),
    [
        ({"conditions": ["pregnancy"]}, None),  # ineligible
        ({"cssrs": {**intake_body()["cssrs"], "method": True, "intent": True}}, None),
        ({"conditions": ["bipolar_disorder"]}, "decline"),  # needs_review, declined
    ],
    ids=["ineligible", "needs_review_unreviewed", "needs_review_declined"],
)
async def test_a_patient_never_cleared_gets_no_proposal_even_when_worsening(
    sched: httpx.AsyncClient,
    intake_http: httpx.AsyncClient,
    scheduling: SchedulingStack,
    event_log: EventLog,
    changes: dict[str, Any],
    review: str | None,
) -> None:
    site_id = await new_site(sched)
    body = intake_body(site_id=site_id, **changes)
    pid = body["patient"]["patient_id"]
    decided = await post_intake(intake_http, body)
    assert decided["decision"] != "eligible"
    if review is not None:
        r = await intake_http.post(
            f"/v1/intakes/{body['intake_id']}/{review}", json={"by": "Dr. R"}
        )
        assert r.status_code == 200, r.text
        await handled(
            scheduling.dsn, event_log, "intake.reviewed", {"intake_id": body["intake_id"]}
        )
    await handled(scheduling.dsn, event_log, "intake.screened", {"intake_id": body["intake_id"]})
    await worsen(intake_http, scheduling, event_log, pid)
    assert await appointments(sched, pid) == []
    waiting = (await sched.get("/v1/waitlist", params={"site_id": site_id})).json()
    assert [w for w in waiting if w["patient_id"] == pid] == []


async def test_an_approved_needs_review_patient_is_scheduled(
    sched: httpx.AsyncClient, intake_http: httpx.AsyncClient
) -> None:
    site_id = await new_site(sched)
    body = intake_body(site_id=site_id, conditions=["bipolar_disorder"])
    pid = body["patient"]["patient_id"]
    assert (await post_intake(intake_http, body))["decision"] == "needs_review"
    r = await intake_http.post(f"/v1/intakes/{body['intake_id']}/approve", json={"by": "Dr. R"})
    assert r.status_code == 200, r.text
    appts = await eventually(
        lambda: appointments(sched, pid), lambda a: len(a) == 12, what="series"
    )
    assert {a["reason"] for a in appts} == {"induction"}


# --- 2. spacing counts every dose the patient has ------------------------------------


async def test_a_worsening_maintenance_keeps_its_spacing_from_the_induction_doses(
    sched: httpx.AsyncClient,
    intake_http: httpx.AsyncClient,
    scheduling: SchedulingStack,
    event_log: EventLog,
) -> None:
    site_id = await new_site(sched)
    body = intake_body(site_id=site_id)
    pid = body["patient"]["patient_id"]
    await post_intake(intake_http, body)
    await eventually(lambda: appointments(sched, pid), lambda a: len(a) == 12, what="series")
    await worsen(intake_http, scheduling, event_log, pid)
    appts = await appointments(sched, pid)
    # two induction doses lie in the coming week already: a third would break the cap
    assert_spaced(doses_of(appts), timedelta(hours=48), per_week=2)


# --- 3. preferences hold ---------------------------------------------------------------


async def test_a_tue_thu_morning_patient_gets_every_dose_on_tue_or_thu_mornings(
    sched: httpx.AsyncClient, intake_http: httpx.AsyncClient
) -> None:
    site_id = await new_site(sched, timezone="America/Denver")
    prefs = {"weekdays": ["tue", "thu"], "earliest": "09:00", "latest": "13:00"}
    body = intake_body(site_id=site_id, preferences=prefs)
    pid = body["patient"]["patient_id"]
    await post_intake(intake_http, body)
    appts = await eventually(
        lambda: appointments(sched, pid), lambda a: len(a) == 12, what="series"
    )
    denver = ZoneInfo("America/Denver")
    for a in appts:
        start = datetime.fromisoformat(a["start"]).astimezone(denver)
        end = datetime.fromisoformat(a["end"]).astimezone(denver)
        assert a["relaxed"] == [], a
        assert start.time() >= datetime(2000, 1, 1, 9).time(), a  # the time window: every one
        assert end.time() <= datetime(2000, 1, 1, 13).time(), a
        if a["kind"] == "dosing":
            assert start.strftime("%a") in ("Tue", "Thu"), a  # weekdays: the doses only


async def test_preferences_are_read_in_the_patients_own_time_zone(
    sched: httpx.AsyncClient, intake_http: httpx.AsyncClient
) -> None:
    site_id = await new_site(sched, timezone="America/Denver")
    # 11:00-15:00 in New York is 09:00-13:00 in Denver
    prefs = {"earliest": "11:00", "latest": "15:00", "timezone": "America/New_York"}
    body = intake_body(site_id=site_id, preferences=prefs)
    pid = body["patient"]["patient_id"]
    await post_intake(intake_http, body)
    appts = await eventually(
        lambda: appointments(sched, pid), lambda a: len(a) == 12, what="series"
    )
    new_york = ZoneInfo("America/New_York")
    for a in appts:
        assert a["relaxed"] == [], a
        start = datetime.fromisoformat(a["start"]).astimezone(new_york)
        end = datetime.fromisoformat(a["end"]).astimezone(new_york)
        assert (start.hour, start.minute) >= (11, 0), a
        assert (end.hour, end.minute) <= (15, 0), a


# --- 5. a discharged patient starts a new course -----------------------------------------


async def test_a_new_cleared_intake_after_discharge_starts_a_new_induction_series(
    sched: httpx.AsyncClient,
    intake_http: httpx.AsyncClient,
    scheduling: SchedulingStack,
    event_log: EventLog,
) -> None:
    site_id = await new_site(sched)
    now = datetime.now(UTC)
    first = intake_body(site_id=site_id, submitted_at=(now - timedelta(hours=2)).isoformat())
    pid = first["patient"]["patient_id"]
    await post_intake(intake_http, first)
    await eventually(lambda: appointments(sched, pid), lambda a: len(a) == 12, what="first series")
    r = await intake_http.post(f"/v1/patients/{pid}/discharge", json={"by": "Dr. D"})
    assert r.status_code in (200, 201), r.text
    await eventually(
        lambda: appointments(sched, pid),
        lambda a: {x["status"] for x in a} == {"cancelled"},
        what="the first course cancelled",
    )
    # a new intake that is not cleared changes nothing: the patient stays discharged
    blocked = intake_body(
        site_id=site_id,
        patient=first["patient"],
        conditions=["pregnancy"],
        submitted_at=(now - timedelta(hours=1)).isoformat(),
    )
    await post_intake(intake_http, blocked)
    await handled(scheduling.dsn, event_log, "intake.screened", {"intake_id": blocked["intake_id"]})
    await worsen(intake_http, scheduling, event_log, pid)
    assert {a["status"] for a in await appointments(sched, pid)} == {"cancelled"}
    # a cleared one starts a new course, with its own baseline
    again = intake_body(
        site_id=site_id,
        patient=first["patient"],
        phq9=[3, 3, 3, 3, 3, 3, 2, 2, 0],  # 22: the new baseline
        submitted_at=(now - timedelta(minutes=30)).isoformat(),
    )
    await post_intake(intake_http, again)
    appts = await eventually(
        lambda: appointments(sched, pid),
        lambda a: sum(x["status"] == "proposed" for x in a) == 12,
        what="a new induction series",
    )
    new = [a for a in appts if a["status"] == "proposed"]
    assert {a["reason"] for a in new} == {"induction"}
    assert len({a["series_id"] for a in new}) == 1
    measures = (await intake_http.get(f"/v1/patients/{pid}/measures")).json()
    assert measures["baseline_total"] == 22


# --- 6. hold while at risk --------------------------------------------------------------


async def test_nothing_new_is_proposed_while_a_suicide_risk_alert_is_unresolved(
    sched: httpx.AsyncClient,
    alerts_api: httpx.AsyncClient,
    intake_http: httpx.AsyncClient,
    scheduling: SchedulingStack,
    event_log: EventLog,
) -> None:
    site_id = await new_site(sched)
    body = intake_body(site_id=site_id)
    pid = body["patient"]["patient_id"]
    await post_intake(intake_http, body)
    series = await eventually(
        lambda: appointments(sched, pid), lambda a: len(a) == 12, what="series"
    )
    assert (await sched.get(f"/v1/patients/{pid}/hold")).json() == {"held": False, "since": None}

    await post_checkin(intake_http, pid, IDEATION, datetime.now(UTC), suicidal_ideation=True)
    alert = (
        await eventually(
            lambda: alerts_api.get(
                "/v1/alerts", params={"patient_id": pid, "kind": "suicide_risk"}
            ),
            lambda r: len(r.json()) == 1,
            what="suicide_risk alert",
        )
    ).json()[0]
    await handled(scheduling.dsn, event_log, "alert.raised", {"alert_id": alert["alert_id"]})
    hold = (await sched.get(f"/v1/patients/{pid}/hold")).json()
    assert hold["held"] is True
    assert hold["since"] is not None
    held = (await sched.get("/v1/holds", params={"site_id": site_id})).json()
    assert [h["patient_id"] for h in held] == [pid]

    # booked sessions stay; cancelled doses and a cancelled integration are not replaced
    # while held: each waits in its own place
    doses = {a["sequence"]: a for a in series if a["kind"] == "dosing"}
    talks = {a["sequence"]: a for a in series if a["kind"] == "integration"}
    for appt in (doses[3], doses[5], talks[2]):
        r = await sched.post(f"/v1/appointments/{appt['appointment_id']}/cancel")
        assert r.status_code == 200, r.text
    after = await appointments(sched, pid)
    assert not [a for a in after if a["reason"] == "rebooked"]
    assert sum(a["status"] == "proposed" for a in after) == 7
    waiting = (await sched.get("/v1/waitlist", params={"site_id": site_id})).json()
    assert [(w["patient_id"], w["reason"]) for w in waiting] == [(pid, "on_hold")] * 3

    # resolved: the hold lifts and everything that waited is proposed
    r = await alerts_api.post(f"/v1/alerts/{alert['alert_id']}/resolve", json={"by": "Dr. H"})
    assert r.status_code == 200, r.text
    rebooked = await eventually(
        lambda: appointments(sched, pid),
        lambda a: sum(x["reason"] == "rebooked" for x in a) == 5,
        what="the two dose pairs and the integration, after the hold",
    )
    assert (await sched.get(f"/v1/patients/{pid}/hold")).json()["held"] is False
    assert sum(a["status"] == "proposed" for a in rebooked) == 12
    assert (await sched.get("/v1/waitlist", params={"site_id": site_id})).json() == []
    assert_spaced(doses_of(rebooked), timedelta(hours=48), per_week=2)


async def test_hold_of_an_unknown_patient_is_404(sched: httpx.AsyncClient) -> None:
    assert (await sched.get(f"/v1/patients/nobody-{uuid.uuid4().hex}/hold")).status_code == 404


# --- 10. every protocol number is a per-site setting --------------------------------------


async def test_a_site_protocol_object_sets_the_numbers_the_series_keeps(
    sched: httpx.AsyncClient, intake_http: httpx.AsyncClient
) -> None:
    protocol = {"doses": 4, "min_gap_hours": 72, "window_days": 28, "dosing_minutes": 150}
    site_id = await new_site(sched, protocol=protocol)
    site = (await sched.get(f"/v1/sites/{site_id}")).json()
    given = {k: v for k, v in site["protocol"].items() if v is not None}
    assert given == {"preset": "standard", **protocol}
    assert site["protocol_numbers"]["doses"] == 4
    assert site["protocol_numbers"]["max_doses_per_7_days"] == 2  # the preset's
    body = intake_body(site_id=site_id)
    pid = body["patient"]["patient_id"]
    await post_intake(intake_http, body)
    appts = await eventually(
        lambda: appointments(sched, pid), lambda a: len(a) == 8, what="4 pairs"
    )
    doses = [a for a in appts if a["kind"] == "dosing"]
    assert len(doses) == 4
    for a in doses:
        length = datetime.fromisoformat(a["end"]) - datetime.fromisoformat(a["start"])
        assert length == timedelta(minutes=150)
    assert_spaced(doses_of(appts), timedelta(hours=72), per_week=2)


@pytest.mark.parametrize(
    "protocol",
    [
        {"doses": 6, "window_days": 5},  # six doses 48 h apart cannot fit in 5 days
        {"bogus": 1},
        {"doses": 0},
        {"preset": "marathon"},
        "marathon",
    ],
)
async def test_an_impossible_or_unknown_protocol_is_422_and_changes_nothing(
    sched: httpx.AsyncClient, protocol: Any
) -> None:
    site_id = f"site-{uuid.uuid4().hex[:8]}"
    r = await sched.put(
        f"/v1/sites/{site_id}",
        json={
            "name": "X",
            "timezone": "America/New_York",
            "hours": {"mon": ["08:00", "18:00"]},
            "treatment_rooms": 1,
            "therapists": 1,
            "protocol": protocol,
        },
    )
    assert r.status_code == 422, r.text
    assert all(e["field"].startswith("protocol") for e in r.json()["errors"]), r.json()
    assert (await sched.get(f"/v1/sites/{site_id}")).status_code == 404


async def test_a_retreat_site_doses_at_most_four_in_any_7_days(
    sched: httpx.AsyncClient, intake_http: httpx.AsyncClient
) -> None:
    site_id = await new_site(sched, protocol="retreat")
    body = intake_body(site_id=site_id)
    pid = body["patient"]["patient_id"]
    await post_intake(intake_http, body)
    appts = await eventually(
        lambda: appointments(sched, pid), lambda a: len(a) == 12, what="series"
    )
    starts = doses_of(appts)
    assert starts[-1] - starts[0] < timedelta(days=12)
    assert_spaced(starts, timedelta(hours=24), per_week=4)
