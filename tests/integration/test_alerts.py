"""Alerts on the real broker and database, paging a local webhook receiver.

The stack (see ``conftest.alerts``) runs two workers and two timers processes with
journey-sized knobs: check-ins expected every 3 s (1 s grace), 2 misses raise an alert,
tiers escalate after 2 s, an acknowledged critical alert re-pages after 5 s.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.events import (
    AppointmentChanged,
    CloudEvent,
    PatientDischarged,
    new_event,
)
from tests.support.alerts import (
    SUICIDAL,
    alerts_of,
    checkin,
    checkin_event,
    new_patient,
    new_site,
    pages_to,
    publish,
    seen_checkin_at,
    tiers,
)
from tests.support.eventually import eventually
from tests.support.scheduling import induction
from tests.support.stack import (
    AlertsStack,
    EventLog,
    SchedulingStack,
)
from tools.factories import phi_strings
from tools.page_receiver import PageReceiver

pytestmark = pytest.mark.integration

PAGE_FIELDS = {"alert_id", "patient_id", "site_id", "kind", "severity", "escalation_level"}


@pytest.fixture
async def api(alerts: AlertsStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=alerts.url, timeout=30) as client:
        yield client


@pytest.fixture
async def receiver(alerts: AlertsStack) -> AsyncIterator[PageReceiver]:
    async with PageReceiver(signing_secret=alerts.knobs["PAGE_SIGNING_SECRET"]) as r:
        yield r


# --- bad input -----------------------------------------------------------------------------


async def test_bad_oncall_is_refused_naming_each_field_and_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    site_id = f"site-{uuid.uuid4().hex[:8]}"
    for body, field in [
        ({"tiers": []}, "tiers"),
        ({"tiers": [{"recipients": []}]}, "tiers[0].recipients"),
        (
            {"tiers": [{"recipients": [{"name": "A", "webhook_url": "ftp://x/y"}]}]},
            "tiers[0].recipients[0].webhook_url",
        ),
        (
            {"tiers": [{"recipients": [{"name": "A", "webhook_url": "not a url"}]}]},
            "tiers[0].recipients[0].webhook_url",
        ),
        (
            {
                "tiers": [
                    {
                        "recipients": [{"name": "A", "webhook_url": "http://127.0.0.1:1/p"}],
                        "escalate_after_s": -5,
                    }
                ]
            },
            "tiers[0].escalate_after_s",
        ),
    ]:
        r = await api.put(f"/v1/sites/{site_id}/oncall", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in {e["field"] for e in r.json()["errors"]}, (field, r.json())
    assert (await api.get(f"/v1/sites/{site_id}/oncall")).status_code == 404

    # a webhook outside PAGE_ALLOWED_HOSTS (here: 127.0.0.1 only) is refused
    internal = {
        "tiers": [
            {
                "recipients": [
                    {"name": "A", "webhook_url": "http://127.0.0.1:9/ok"},
                    {"name": "B", "webhook_url": "http://169.254.169.254/latest/meta-data"},
                ]
            }
        ]
    }
    r = await api.put(f"/v1/sites/{site_id}/oncall", json=internal)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["tiers[0].recipients[1].webhook_url"]
    assert (await api.get(f"/v1/sites/{site_id}/oncall")).status_code == 404

    r = await api.get("/v1/alerts", params={"status": "snoozed"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "query.status"
    unknown = str(uuid.uuid4())
    assert (await api.get(f"/v1/alerts/{unknown}")).status_code == 404
    assert (await api.get("/v1/alerts/not-an-id")).status_code == 404
    r = await api.post(f"/v1/alerts/{unknown}/acknowledge", json={"by": "Dr. A"})
    assert r.status_code == 404
    r = await api.post(f"/v1/alerts/{unknown}/acknowledge", json={"note": "no actor"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "by"


async def test_default_escalation_and_policy_round_trip(
    api: httpx.AsyncClient, alerts: AlertsStack, receiver: PageReceiver
) -> None:
    body = {"tiers": [{"recipients": [{"name": "Dr. A", "webhook_url": receiver.url("/a")}]}]}
    site_id = await new_site(api, body)
    got = (await api.get(f"/v1/sites/{site_id}/oncall")).json()
    assert got["tiers"][0]["escalate_after_s"] == int(alerts.knobs["ESCALATE_AFTER_S"])
    assert got["tiers"][0]["recipients"][0]["webhook_url"] == receiver.url("/a")
    assert got["version"] == 1
    again = await api.put(f"/v1/sites/{site_id}/oncall", json=body)
    assert again.json()["version"] == 2


# --- paging and escalation ------------------------------------------------------------


async def test_suicidal_ideation_pages_tier1_escalates_to_tier2_and_stops_on_ack(
    api: httpx.AsyncClient,
    intake_http: httpx.AsyncClient,
    receiver: PageReceiver,
    event_log: EventLog,
) -> None:
    site_id = await new_site(api, tiers(receiver, "/t1", "/t2"))
    pid, intake = await new_patient(intake_http, site_id)
    sent = await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)

    first = await receiver.wait_for_request(
        lambda r: r.path == "/t1" and r.json["patient_id"] == pid, timeout=10, what="tier 1"
    )
    page = first.json
    assert set(page) >= PAGE_FIELDS
    assert page["kind"] == "suicide_risk"
    assert page["severity"] == "critical"
    assert page["site_id"] == site_id
    assert page["escalation_level"] == 0
    assert first.headers["idempotency-key"] == page["idempotency_key"]
    # signed: the body's HMAC, and the timestamped one the receiver checks for replays
    assert first.signature_ok is True
    assert "x-interval-signature-v2" in first.headers
    for phi in [*phi_strings(intake), sent["note"]]:
        assert phi not in first.body.decode(), phi
    alert_id = page["alert_id"]

    # nobody acknowledges: tier 2 is paged too, ~escalate_after_s later
    second = await receiver.wait_for_request(
        lambda r: r.path == "/t2" and r.json["alert_id"] == alert_id, timeout=10, what="tier 2"
    )
    assert second.received_mono - first.received_mono >= 1.9
    assert second.json["escalation_level"] == 1
    alert = (await api.get(f"/v1/alerts/{alert_id}")).json()
    assert alert["escalation_level"] == 1
    assert alert["status"] == "open"

    r = await api.post(
        f"/v1/alerts/{alert_id}/acknowledge", json={"by": "Dr. t2", "note": "calling now"}
    )
    assert r.status_code == 200, r.text
    acked = time.monotonic()
    assert r.json()["status"] == "acknowledged"
    # the same person again is harmless; someone else is told who has it
    again = await api.post(f"/v1/alerts/{alert_id}/acknowledge", json={"by": "dr.  T2"})
    assert again.status_code == 200
    other = await api.post(f"/v1/alerts/{alert_id}/acknowledge", json={"by": "Dr. t1"})
    assert other.status_code == 409
    assert "Dr. t2" in other.json()["detail"]

    # acknowledged: no more escalation; but left unresolved, the critical alert
    # re-pages the acknowledger's tier after CRITICAL_ACK_REPAGE_AFTER_S (5 s)
    repage = await receiver.wait_for_request(
        lambda r: r.json["alert_id"] == alert_id and r.json["round"] == 1,
        timeout=15,
        what="ack-timeout re-page",
    )
    assert repage.path == "/t2"
    assert repage.json["reason"] == "ack_timeout"
    assert repage.received_mono - acked >= 4.9
    between = [
        r
        for r in receiver.requests()
        if r.json["alert_id"] == alert_id
        and acked < r.received_mono < repage.received_mono
        and r.json["reason"] != "ack_notice"
    ]
    assert between == []
    # tier 1, paged but not the acknowledger, was told once who took it
    notices = [
        (r.path, r.json["acknowledged_by"])
        for r in receiver.requests()
        if r.json["alert_id"] == alert_id and r.json["reason"] == "ack_notice"
    ]
    assert notices == [("/t1", "Dr. t2")]

    r = await api.post(f"/v1/alerts/{alert_id}/resolve", json={"by": "Dr. t2", "note": "safe"})
    assert r.status_code == 200
    assert r.json()["status"] == "resolved"
    assert (
        await api.post(f"/v1/alerts/{alert_id}/resolve", json={"by": "Dr. t2"})
    ).status_code == 200
    assert (
        await api.post(f"/v1/alerts/{alert_id}/acknowledge", json={"by": "Dr. t2"})
    ).status_code == 409

    detail = (
        await eventually(
            lambda: api.get(f"/v1/alerts/{alert_id}"),
            lambda r: (
                len(r.json()["pages"]) == 4
                and all(p["status"] == "delivered" for p in r.json()["pages"])
            ),
            what="four deliveries recorded (three pages, one notice)",
        )
    ).json()
    assert detail["acknowledged"]["by"] == "Dr. t2"
    assert detail["acknowledged"]["note"] == "calling now"
    assert detail["resolved"]["note"] == "safe"
    assert detail["next_check_at"] is None
    assert [(p["tier"], p["round"], p["reason"], p["status"]) for p in detail["pages"]] == [
        (1, 0, "initial", "delivered"),
        (2, 0, "escalation", "delivered"),
        (1, 0, "ack_notice", "delivered"),
        (2, 1, "ack_timeout", "delivered"),
    ]
    assert all(p["attempts"][-1]["http_status"] == 200 for p in detail["pages"])

    await eventually(
        lambda: any(
            d["alert_id"] == alert_id and d["change"] == "resolved"
            for d in event_log.data("alert.changed")
        ),
        what="alert.changed resolved",
    )
    changes = [d["change"] for d in event_log.data("alert.changed") if d["alert_id"] == alert_id]
    assert changes == ["escalated", "acknowledged", "repaged", "resolved"]
    raised = [r for r in event_log.on("alert.raised") if alert_id.encode() in r.value]
    assert len(raised) == 1
    assert raised[0].key == pid.encode()

    # after a resolve, a new occurrence opens a new alert
    await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
    await eventually(
        lambda: alerts_of(api, pid, kind="suicide_risk"),
        lambda a: len(a) == 2 and a[0]["status"] == "open",
        what="a second suicide_risk alert",
    )


async def test_a_failing_receiver_gets_exactly_one_delivery_and_delays_nobody(
    api: httpx.AsyncClient, intake_http: httpx.AsyncClient, receiver: PageReceiver
) -> None:
    oncall = {
        "tiers": [
            {
                "recipients": [
                    {"name": "Flaky", "webhook_url": receiver.url("/flaky")},
                    {"name": "Steady", "webhook_url": receiver.url("/steady")},
                ],
                "escalate_after_s": 60,
            }
        ]
    }
    site_id = await new_site(api, oncall)
    receiver.fail("/flaky", 3, status=500)
    pid, _ = await new_patient(intake_http, site_id)
    await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)

    steady = await receiver.wait_for_request(
        lambda r: r.path == "/steady" and r.json["patient_id"] == pid, timeout=10
    )
    await receiver.wait_for(lambda rx: len(rx.delivered("/flaky")) == 1, timeout=15)
    flaky = receiver.requests("/flaky")
    assert [r.status for r in flaky] == [500, 500, 500, 200]
    # the steady recipient was paged before the flaky one's first retry
    assert steady.received_mono < flaky[1].received_mono
    assert len({r.idempotency_key for r in flaky}) == 1  # one page, retried
    # retries back off: each wait at least half the (doubling) step
    gaps = [b.received_mono - a.received_mono for a, b in itertools.pairwise(flaky)]
    assert gaps[0] >= 0.09, gaps
    assert gaps[1] >= 0.19, gaps
    assert gaps[2] >= 0.39, gaps

    alert_id = steady.json["alert_id"]
    detail = await eventually(
        lambda: api.get(f"/v1/alerts/{alert_id}"),
        lambda r: all(p["status"] == "delivered" for p in r.json()["pages"]),
        what="both deliveries recorded",
    )
    by_name = {p["recipient_name"]: p for p in detail.json()["pages"]}
    assert [a["http_status"] for a in by_name["Flaky"]["attempts"]] == [500, 500, 500, 200]
    assert by_name["Flaky"]["status"] == "delivered"
    assert [a["http_status"] for a in by_name["Steady"]["attempts"]] == [200]
    await api.post(f"/v1/alerts/{alert_id}/resolve", json={"by": "Steady"})
    # exactly one successful delivery per page, whatever the retries
    assert len(receiver.delivered("/flaky")) == 1
    assert len(receiver.delivered("/steady")) == 1


async def test_escalation_resumes_after_the_timers_processes_are_killed(
    api: httpx.AsyncClient,
    alerts: AlertsStack,
    intake_http: httpx.AsyncClient,
    receiver: PageReceiver,
) -> None:
    site_id = await new_site(api, tiers(receiver, "/k1", "/k2", escalate_after_s=3))
    pid, _ = await new_patient(intake_http, site_id)
    await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
    first = await receiver.wait_for_request(
        lambda r: r.path == "/k1" and r.json["patient_id"] == pid, timeout=10
    )
    alert_id = first.json["alert_id"]
    for t in alerts.timers:
        t.kill()  # SIGKILL, mid-escalation
    try:
        alert = (await api.get(f"/v1/alerts/{alert_id}")).json()
        due = alert["next_check_at"]
        assert due is not None
        # wait until tier 2 is overdue while nothing runs the timers
        await eventually(
            lambda: api.get(f"/v1/alerts/{alert_id}"),
            lambda _r: time.monotonic() - first.received_mono > 3.5,
            what="tier 2 overdue",
        )
        assert pages_to(receiver, "/k2", alert_id) == []
    finally:
        for t in alerts.timers:
            t.start()
    second = await receiver.wait_for_request(
        lambda r: r.path == "/k2" and r.json["alert_id"] == alert_id, timeout=20
    )
    assert second.json["escalation_level"] == 1
    await api.post(f"/v1/alerts/{alert_id}/acknowledge", json={"by": "Dr. k2"})
    await api.post(f"/v1/alerts/{alert_id}/resolve", json={"by": "Dr. k2"})
    assert len(pages_to(receiver, "/k1", alert_id)) == 1
    assert len(pages_to(receiver, "/k2", alert_id)) == 1


# --- dedup and inhibition -------------------------------------------------------------------


async def test_a_critical_alert_holds_back_lower_pages_until_it_resolves(
    api: httpx.AsyncClient, intake_http: httpx.AsyncClient, receiver: PageReceiver
) -> None:
    site_id = await new_site(api, tiers(receiver, "/i1", escalate_after_s=60))
    pid, _ = await new_patient(intake_http, site_id)
    await checkin(intake_http, pid, [1, 1, 1, 1, 1, 1, 0, 0, 0])  # total 6: the lowest
    # total 12 (>= 5 above the lowest: worsening) with suicidal ideation, twice
    await checkin(intake_http, pid, [2, 2, 2, 2, 2, 1, 1, 0, 0], suicidal_ideation=True)
    found = await eventually(
        lambda: alerts_of(api, pid),
        lambda a: {x["kind"] for x in a} == {"suicide_risk", "worsening"},
        what="suicide_risk and worsening alerts",
    )
    kinds = {a["kind"]: a for a in found}
    suicide, worsening = kinds["suicide_risk"], kinds["worsening"]
    assert worsening["severity"] == "high"
    assert worsening["inhibited_by"] == suicide["alert_id"]
    await receiver.wait_for_request(lambda r: r.json["alert_id"] == suicide["alert_id"])

    # a repeat folds into the open alert and pages nobody
    await checkin(intake_http, pid, [2, 2, 2, 2, 2, 1, 1, 0, 0], suicidal_ideation=True)
    await eventually(
        lambda: alerts_of(api, pid, kind="suicide_risk"),
        lambda a: a[0]["occurrences"] == 2,
        what="repeat counted",
    )
    assert len([r for r in receiver.requests() if r.json["patient_id"] == pid]) == 1

    r = await api.post(f"/v1/alerts/{suicide['alert_id']}/resolve", json={"by": "Dr. i1"})
    assert r.status_code == 200
    # released: the worsening alert pages on its own now
    released = await receiver.wait_for_request(
        lambda r: r.json["alert_id"] == worsening["alert_id"], timeout=10
    )
    assert released.json["kind"] == "worsening"
    assert released.json["severity"] == "high"
    w = (await api.get(f"/v1/alerts/{worsening['alert_id']}")).json()
    assert w["inhibited_by"] is None
    await api.post(f"/v1/alerts/{worsening['alert_id']}/resolve", json={"by": "Dr. i1"})


async def test_a_site_with_nobody_on_call_records_alerts_and_says_so(
    api: httpx.AsyncClient,
    alerts: AlertsStack,
    intake_http: httpx.AsyncClient,
    receiver: PageReceiver,
) -> None:
    site_id = await new_site(api, None)
    pid, _ = await new_patient(intake_http, site_id)
    await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
    [alert] = await eventually(
        lambda: alerts_of(api, pid), lambda a: len(a) == 1, what="alert without on-call"
    )
    assert alert["status"] == "open"
    assert alert["severity"] == "critical"
    await eventually(
        lambda: any(
            '"alert_nobody_on_call"' in line and alert["alert_id"] in line and '"warning"' in line
            for w in (*alerts.workers, *alerts.safety)  # whichever raised it: the lane, mostly
            for line in w.logs().splitlines()
        ),
        what="a warning that nobody could be paged",
    )
    counts = (await api.get("/v1/alerts/counts", params={"site_id": site_id})).json()
    assert counts["sites"] == [
        {
            "site_id": site_id,
            "open": {"critical": 1, "high": 0, "warning": 0, "total": 1},
            "acknowledged": {"critical": 0, "high": 0, "warning": 0, "total": 0},
            "resolved": {"critical": 0, "high": 0, "warning": 0, "total": 0},
        }
    ]
    # someone goes on call: the open critical alert pages them now
    r = await api.put(f"/v1/sites/{site_id}/oncall", json=tiers(receiver, "/late"))
    assert r.status_code == 200
    late = await receiver.wait_for_request(lambda r: r.path == "/late", timeout=10)
    assert late.json["alert_id"] == alert["alert_id"]
    await api.post(f"/v1/alerts/{alert['alert_id']}/resolve", json={"by": "Dr. late"})


# --- monitoring ------------------------------------------------------------------------------


async def test_missed_checkins_raise_exactly_one_alert_with_two_workers(
    api: httpx.AsyncClient,
    alerts: AlertsStack,
    scheduling: SchedulingStack,
    intake_http: httpx.AsyncClient,
    receiver: PageReceiver,
    event_log: EventLog,
) -> None:
    async with httpx.AsyncClient(base_url=scheduling.url, timeout=30) as sched:
        pid, appts = await induction(sched, intake_http)
        site_id = appts[0]["site_id"]
        r = await api.put(
            f"/v1/sites/{site_id}/oncall", json=tiers(receiver, "/m1", escalate_after_s=60)
        )
        assert r.status_code == 200
    # The doses are days away (complete and no-show are refused before a session starts,
    # services/scheduling/domain/lifecycle.py), so their outcomes are published as the
    # scheduling service would announce them once they happened.
    now = datetime.now(UTC)
    await publish(dose_completed(pid, site_id, now), dose_missed(pid, site_id, now))

    # monitored from the completed dose: misses at +4 s and +7 s raise the alert
    page = await receiver.wait_for_request(
        lambda r: r.json["patient_id"] == pid and r.json["kind"] == "missed_checkins",
        timeout=30,
        what="missed_checkins page",
    )
    mon = (await api.get(f"/v1/patients/{pid}/monitoring")).json()
    assert mon["monitored"] is True
    assert mon["consecutive_misses"] >= 2

    def missed() -> list[dict[str, Any]]:
        return [d for d in event_log.data("checkin.missed") if d["patient_id"] == pid]

    # a third miss repeats the open alert, pages nobody, and is one event like the others
    await eventually(lambda: len(missed()) >= 3, timeout=20, what="a third miss")
    found = await eventually(
        lambda: alerts_of(api, pid, kind="missed_checkins"),
        lambda a: a[0]["occurrences"] >= 2,
        what="repeat",
    )
    assert len(found) == 1
    assert found[0]["alert_id"] == page.json["alert_id"]
    dues = [m["due_at"] for m in missed()]
    assert len(dues) == len(set(dues)), "a deadline fired twice"
    assert [m["consecutive_misses"] for m in missed()][:3] == [1, 2, 3]
    assert len([r for r in receiver.requests() if r.json["kind"] == "missed_checkins"]) == 1

    # the no-show is a warning: recorded, never paged
    no_show = await eventually(
        lambda: alerts_of(api, pid, kind="no_show"), lambda a: len(a) == 1, what="no_show"
    )
    assert no_show[0]["severity"] == "warning"
    assert not [r for r in receiver.requests() if r.json["kind"] == "no_show"]

    # a check-in ends the run of misses (the alert stays until someone resolves it)
    await checkin(intake_http, pid, [1, 1, 1, 1, 0, 0, 0, 0, 0])
    after = await eventually(
        lambda: api.get(f"/v1/patients/{pid}/monitoring"),
        lambda r: r.json()["consecutive_misses"] == 0,
        what="run of misses ended",
    )
    assert after.json()["last_checkin_at"] is not None
    n = len(missed())
    await eventually(lambda: len(missed()) > n, timeout=20, what="the next miss")
    assert missed()[n]["consecutive_misses"] == 1
    [still] = await alerts_of(api, pid, kind="missed_checkins")
    assert still["status"] == "open"

    # discharge ends monitoring
    r = await intake_http.post(f"/v1/patients/{pid}/discharge", json={"by": "Dr. m1"})
    assert r.status_code in (200, 201), r.text
    await eventually(
        lambda: api.get(f"/v1/patients/{pid}/monitoring"),
        lambda r: r.json()["monitored"] is False,
        what="monitoring ended",
    )
    await api.post(f"/v1/alerts/{still['alert_id']}/resolve", json={"by": "Dr. m1"})


async def test_an_open_alert_keeps_the_policy_it_opened_with(
    api: httpx.AsyncClient, intake_http: httpx.AsyncClient, receiver: PageReceiver
) -> None:
    site_id = await new_site(api, tiers(receiver, "/s1", "/s2"))
    pid, _ = await new_patient(intake_http, site_id)
    await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
    first = await receiver.wait_for_request(
        lambda r: r.path == "/s1" and r.json["patient_id"] == pid, timeout=10
    )
    alert_id = first.json["alert_id"]
    # on-call changes while the alert escalates: its tier 2 is still the old one
    r = await api.put(f"/v1/sites/{site_id}/oncall", json=tiers(receiver, "/n1", "/n2"))
    assert r.status_code == 200
    second = await receiver.wait_for_request(
        lambda r: r.json["alert_id"] == alert_id and r.json["tier"] == 2, timeout=10
    )
    assert second.path == "/s2"
    assert not [r for r in receiver.requests() if r.path in ("/n1", "/n2")]
    detail = (await api.get(f"/v1/alerts/{alert_id}")).json()
    assert [t["recipients"][0]["webhook_url"] for t in detail["policy"]] == [
        receiver.url("/s1"),
        receiver.url("/s2"),
    ]
    await api.post(f"/v1/alerts/{alert_id}/acknowledge", json={"by": "Dr. s2"})
    await api.post(f"/v1/alerts/{alert_id}/resolve", json={"by": "Dr. s2"})


# --- duplicate and out-of-order events ---------------------------------------------------------


def dose_completed(pid: str, site_id: str, at: datetime) -> CloudEvent:
    payload = AppointmentChanged(
        appointment_id=str(uuid.uuid4()),
        series_id=str(uuid.uuid4()),
        patient_id=pid,
        site_id=site_id,
        kind="dosing",
        sequence=1,
        status="completed",
        previous_status="confirmed",
        start=at - timedelta(hours=3),
        end=at,
        resource="room-1",
        reason="induction",
        changed_at=at,
    )
    return new_event(payload, source="tests", subject=pid, time=at)


def dose_missed(pid: str, site_id: str, at: datetime) -> CloudEvent:
    payload = AppointmentChanged(
        appointment_id=str(uuid.uuid4()),
        series_id=str(uuid.uuid4()),
        patient_id=pid,
        site_id=site_id,
        kind="dosing",
        sequence=2,
        status="no_show",
        previous_status="confirmed",
        start=at - timedelta(minutes=30),
        end=at + timedelta(hours=2, minutes=30),
        resource="room-1",
        reason="induction",
        changed_at=at,
    )
    return new_event(payload, source="tests", subject=pid, time=at)


def discharged(pid: str, site_id: str, at: datetime) -> CloudEvent:
    payload = PatientDischarged(patient_id=pid, site_id=site_id, discharged_at=at)
    return new_event(payload, source="tests", subject=pid, time=at)


async def test_the_same_event_delivered_twice_takes_effect_once(
    api: httpx.AsyncClient, alerts: AlertsStack
) -> None:
    pid, site_id = f"p-dup-{uuid.uuid4().hex[:8]}", f"site-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(microsecond=0)
    suicidal = checkin_event(pid, site_id, now - timedelta(seconds=30), suicidal=True)
    sentinel = checkin_event(pid, site_id, now - timedelta(seconds=20), suicidal=False)
    await publish(suicidal, suicidal, sentinel)
    await seen_checkin_at(api, pid, now - timedelta(seconds=20))
    [alert] = await alerts_of(api, pid)
    assert alert["kind"] == "suicide_risk"
    assert alert["occurrences"] == 1, "a redelivered event counted twice"

    # the same facts in another check-in (another event) are a repeat, so the check above
    # could fail; the same check-in under another event id is the same signal (it also
    # arrives on the safety lane: services/alerts/safety.py), counted once
    same = suicidal.model_copy(update={"id": str(uuid.uuid4())})
    again = checkin_event(pid, site_id, now - timedelta(seconds=30), suicidal=True)
    sentinel = checkin_event(pid, site_id, now - timedelta(seconds=10), suicidal=False)
    await publish(same, again, sentinel)
    await seen_checkin_at(api, pid, now - timedelta(seconds=10))
    [alert] = await alerts_of(api, pid)
    assert alert["occurrences"] == 2
    await api.post(f"/v1/alerts/{alert['alert_id']}/resolve", json={"by": "Dr. dup"})


async def test_a_discharge_that_overtakes_an_older_completed_dose_keeps_monitoring_off(
    api: httpx.AsyncClient, alerts: AlertsStack
) -> None:
    pid, site_id = f"p-ooo-{uuid.uuid4().hex[:8]}", f"site-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(microsecond=0)

    async def monitoring() -> dict[str, Any] | None:
        r = await api.get(f"/v1/patients/{pid}/monitoring")
        return r.json() if r.status_code == 200 else None

    # the dose was completed, then the patient discharged; the discharge arrives first.
    # The two are on different topics, so the discharge is seen applied before the dose
    # is published; a no-show after the dose, on the dose's topic and partition, shows
    # (by its alert) that the dose was handled.
    await publish(discharged(pid, site_id, now - timedelta(seconds=30)))
    await eventually(
        monitoring, lambda m: m is not None and m["discharged_at"] is not None, what="discharge"
    )
    await publish(
        dose_completed(pid, site_id, now - timedelta(seconds=60)),
        dose_missed(pid, site_id, now - timedelta(seconds=50)),
    )
    await eventually(lambda: alerts_of(api, pid, kind="no_show"), what="the no-show after it")
    mon = await monitoring()
    assert mon is not None
    assert mon["monitored"] is False
    assert mon["next_due_at"] is None

    # a dose completed after the discharge starts monitoring again: it is the times that count
    await publish(dose_completed(pid, site_id, now))
    mon = await eventually(monitoring, lambda m: m is not None and m["monitored"], what="again")
    assert mon is not None
    assert mon["next_due_at"] is not None
    await publish(discharged(pid, site_id, datetime.now(UTC) + timedelta(seconds=2)))
