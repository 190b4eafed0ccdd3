"""The safety lane (services/alerts/safety.py) on the real broker and database.

A suicide-risk signal pages through its own topic, consumer and first delivery attempt:
it does not wait for the routine worker (killed here), and the signal's ordinary event
arriving later never makes a second occurrence or a second page.
"""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.alerts import (
    SUICIDAL,
    alerts_of,
    checkin,
    new_patient,
    new_site,
    pages_to,
    tiers,
)
from tests.support.eventually import eventually
from tests.support.stack import (
    ARTIFACTS,
    AlertsStack,
    EventLog,
    IntakeStack,
    ServiceProcess,
    free_port,
    lane_assigned,
    metric,
    service_env,
    wait_ready,
)
from tools.factories import checkin_body, intake_body
from tools.page_receiver import PageReceiver

pytestmark = pytest.mark.integration

# A page within a second of the request (docs/domain.md, "Safety signals first"); the
# tests allow twice that for a loaded 2-core CI machine, bench/alerts.py measures p99.
BOUND_S = 2.0


@pytest.fixture
async def api(alerts: AlertsStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=alerts.url, timeout=30) as client:
        yield client


@pytest.fixture
async def receiver(alerts: AlertsStack) -> AsyncIterator[PageReceiver]:
    async with PageReceiver(signing_secret=alerts.knobs["PAGE_SIGNING_SECRET"]) as r:
        yield r


def event_id_of(event_log: EventLog, topic: str, **match: Any) -> str | None:
    for record in event_log.on(topic):
        event = json.loads(record.value)
        if all(event["data"].get(k) == v for k, v in match.items()):
            return str(event["id"])
    return None


async def applied(dsn: str, event_id: str) -> None:
    """Wait until the alerts service has applied the event (its id is in the inbox)."""
    conn = await asyncpg.connect(dsn)
    try:
        await eventually(
            lambda: conn.fetchval(
                "SELECT count(*) FROM alerts.inbox WHERE event_id = $1", event_id
            ),
            lambda n: n == 1,
            timeout=60,
            what=f"alerts applied {event_id}",
        )
    finally:
        await conn.close()


async def routine_event_applied(event_log: EventLog, dsn: str, topic: str, **match: Any) -> None:
    """Wait until the routine event matching ``match`` is on ``topic`` and applied by the
    alerts service."""
    await eventually(lambda: event_id_of(event_log, topic, **match) is not None, what=topic)
    event_id = event_id_of(event_log, topic, **match)
    assert event_id is not None
    await applied(dsn, event_id)


async def test_an_ideation_checkin_pages_once_through_the_lane_while_the_worker_is_stalled(
    api: httpx.AsyncClient,
    alerts: AlertsStack,
    intake_http: httpx.AsyncClient,
    receiver: PageReceiver,
    event_log: EventLog,
) -> None:
    site_id = await new_site(api, tiers(receiver, "/s1", escalate_after_s=600))
    pid, _ = await new_patient(intake_http, site_id)
    for w in alerts.workers:
        assert w.proc is not None
        w.proc.send_signal(signal.SIGSTOP)  # the routine path stalls (frozen, as if stuck)
    try:
        sent = time.monotonic()
        body = await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
        page = await receiver.wait_for_request(
            lambda r: r.path == "/s1" and r.json["patient_id"] == pid,
            timeout=15,
            what="the safety lane's page",
        )
        assert page.received_mono - sent < BOUND_S
        assert page.json["kind"] == "suicide_risk"
        assert page.json["severity"] == "critical"
        await eventually(
            lambda: any(
                d["signal_id"] == body["checkin_id"] for d in event_log.data("safety.signal")
            ),
            what="the signal on its topic",
        )
        lane = next(
            d for d in event_log.data("safety.signal") if d["signal_id"] == body["checkin_id"]
        )
        assert lane["reasons"] == ["suicidal_ideation", "phq9_item9_positive"]
        assert set(lane) >= {"patient_id", "site_id", "at", "source"}
        assert "note" not in lane
    finally:
        for w in alerts.workers:  # resumed within their session: no rebalance
            assert w.proc is not None
            w.proc.send_signal(signal.SIGCONT)
    # the routine event of the same check-in comes later: still one occurrence, one page
    await routine_event_applied(
        event_log, alerts.dsn, "checkin.recorded", checkin_id=body["checkin_id"]
    )
    [alert] = await alerts_of(api, pid, kind="suicide_risk")
    assert alert["occurrences"] == 1
    assert len(pages_to(receiver, "/s1", alert["alert_id"])) == 1
    conn = await asyncpg.connect(alerts.dsn)
    try:
        via = await conn.fetch(
            "SELECT via FROM alerts.signal_claims WHERE signal_id = $1", body["checkin_id"]
        )
    finally:
        await conn.close()
    assert [r["via"] for r in via] == ["safety.signal"]
    await api.post(f"/v1/alerts/{alert['alert_id']}/resolve", json={"by": "Dr. s1"})


async def test_the_lane_pages_a_signal_the_routine_path_raised_first(
    api: httpx.AsyncClient,
    alerts: AlertsStack,
    intake_http: httpx.AsyncClient,
    receiver: PageReceiver,
) -> None:
    """The routine event of the check-in wins the race (the lane is frozen for a moment):
    the worker raises the alert and queues its pages; the lane, once back, finds the
    signal claimed and POSTs those pages itself, not leaving them to the timers process
    (frozen here, so only the lane can have POSTed)."""
    site_id = await new_site(api, tiers(receiver, "/r1", escalate_after_s=600))
    pid, _ = await new_patient(intake_http, site_id)
    frozen = [*alerts.safety, *alerts.timers]
    for proc in frozen:
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGSTOP)
    try:
        await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
        # the routine path raised it (well within the lane's 10 s session)
        [alert] = await eventually(
            lambda: alerts_of(api, pid, kind="suicide_risk"), timeout=8, what="routine alert"
        )
        assert pages_to(receiver, "/r1", alert["alert_id"]) == []
        for proc in alerts.safety:
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGCONT)
        page = await receiver.wait_for_request(
            lambda r: r.path == "/r1" and r.json["patient_id"] == pid,
            timeout=15,
            what="the lane's POST of the routine path's page",
        )
        assert page.json["alert_id"] == alert["alert_id"]
    finally:
        for proc in frozen:
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGCONT)
    assert len(pages_to(receiver, "/r1", alert["alert_id"])) == 1
    await api.post(f"/v1/alerts/{alert['alert_id']}/resolve", json={"by": "Dr. r1"})


async def test_a_lane_frozen_joining_or_killed_never_holds_up_a_page(
    api: httpx.AsyncClient,
    alerts: AlertsStack,
    intake_http: httpx.AsyncClient,
    receiver: PageReceiver,
    event_log: EventLog,
) -> None:
    """Every lane consumes every partition (services/alerts/safety.py): with one of the
    two lanes frozen, a third one starting, then that one killed, each signal still pages
    within the bound through a running lane, with no wait for a rebalance or a session
    to expire. The routine workers are frozen throughout, so only a lane can page."""
    site_id = await new_site(api, tiers(receiver, "/f1", escalate_after_s=600))

    patients = []
    for _ in range(9):
        pid, body = await new_patient(intake_http, site_id)
        patients.append(pid)
        # applied by the routine worker before it is frozen: a worker frozen inside a
        # patient's transaction would hold that patient's signal up to
        # CONSUMER_IDLE_IN_TRANSACTION_S, which is not what this test is about
        await routine_event_applied(
            event_log, alerts.dsn, "intake.screened", intake_id=body["intake_id"]
        )
    late: dict[str, float] = {}
    checkins: set[str] = set()

    async def signal_pages(pid: str) -> None:
        sent = time.monotonic()
        body = await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
        checkins.add(body["checkin_id"])
        page = await receiver.wait_for_request(
            lambda r: r.path == "/f1" and r.json["patient_id"] == pid,
            timeout=30,
            what=f"the page for {pid}",
        )
        if page.received_mono - sent >= BOUND_S:
            late[pid] = page.received_mono - sent

    run = uuid.uuid4().hex[:6]
    joining = ServiceProcess(
        "alerts-safety-joining",
        ["services.alerts", "safety"],
        alerts.safety[0].env,
        ARTIFACTS / "logs" / f"alerts-safety-joining-{run}.log",
    ).with_metrics("ALERTS_SAFETY_METRICS_PORT")
    frozen = [*alerts.workers, alerts.safety[0]]
    for proc in frozen:
        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGSTOP)
    try:
        # one lane frozen: the other pages every partition's signals
        await asyncio.gather(*(signal_pages(pid) for pid in patients[:3]))
        # a lane joining: the running one goes on
        joining.start()
        await asyncio.gather(*(signal_pages(pid) for pid in patients[3:6]))
        await lane_assigned([joining])
        joining.kill(signal.SIGKILL)  # a lane dying: nothing to take over
        await asyncio.gather(*(signal_pages(pid) for pid in patients[6:]))
    finally:
        joining.kill(signal.SIGKILL)
        for proc in frozen:
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGCONT)
    assert late == {}
    # the frozen lane, back, handles the same signals: no second occurrence, no second page
    await eventually(
        lambda: metric(alerts.safety[0], 'safety_signals_total{outcome="duplicate"}'),
        lambda n: n >= len(patients),
        timeout=30,
        what="the resumed lane skipping the signals the other one applied",
    )
    conn = await asyncpg.connect(alerts.dsn)
    try:
        via = await conn.fetch(
            "SELECT via FROM alerts.signal_claims WHERE signal_id = ANY($1::text[])",
            list(checkins),
        )
    finally:
        await conn.close()
    assert [r["via"] for r in via] == ["safety.signal"] * len(patients)
    for pid in patients:
        [alert] = await alerts_of(api, pid, kind="suicide_risk")
        assert alert["occurrences"] == 1
        assert len(pages_to(receiver, "/f1", alert["alert_id"])) == 1
        await api.post(f"/v1/alerts/{alert['alert_id']}/resolve", json={"by": "Dr. f1"})


async def test_a_high_risk_intake_pages_through_the_lane(
    api: httpx.AsyncClient,
    alerts: AlertsStack,
    intake_http: httpx.AsyncClient,
    receiver: PageReceiver,
    event_log: EventLog,
) -> None:
    site_id = await new_site(api, tiers(receiver, "/s2", escalate_after_s=600))
    body = intake_body(site_id=site_id)
    body["cssrs"] = {**body["cssrs"], "suicidal_thoughts": True, "method": True, "intent": True}
    pid = body["patient"]["patient_id"]
    sent = time.monotonic()
    r = await intake_http.post("/v1/intakes", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["suicide_risk"] == "high"
    page = await receiver.wait_for_request(
        lambda r: r.path == "/s2" and r.json["patient_id"] == pid, timeout=15, what="page"
    )
    assert page.received_mono - sent < BOUND_S
    await eventually(
        lambda: any(d["signal_id"] == body["intake_id"] for d in event_log.data("safety.signal")),
        what="the signal on its topic",
    )
    lane = next(d for d in event_log.data("safety.signal") if d["signal_id"] == body["intake_id"])
    assert (lane["source"], lane["reasons"]) == ("intake", ["cssrs_high"])
    await routine_event_applied(
        event_log, alerts.dsn, "intake.screened", intake_id=body["intake_id"]
    )
    [alert] = await alerts_of(api, pid, kind="suicide_risk")
    assert alert["occurrences"] == 1
    assert len(pages_to(receiver, "/s2", alert["alert_id"])) == 1
    await api.post(f"/v1/alerts/{alert['alert_id']}/resolve", json={"by": "Dr. s2"})


async def test_a_safety_checkin_never_waits_for_a_connection_behind_routine_requests(
    intake: IntakeStack, intake_http: httpx.AsyncClient
) -> None:
    """An intake API whose every routine connection is busy (DB_POOL_MAX=1, its one
    request waiting for its patient's lock) still stores and answers a suicidal-ideation check-in:
    the safety lane has connections of its own (services/intake/deps.py)."""
    port = free_port()
    env = service_env(intake.dsn, INTAKE_PORT=str(port), DB_POOL_MIN="1", DB_POOL_MAX="1")
    log = ARTIFACTS / "logs" / f"intake-api-busy-{uuid.uuid4().hex[:6]}.log"
    busy = ServiceProcess("intake-api-busy", ["services.intake", "api"], env, log)
    busy.start()
    holder = await asyncpg.connect(intake.dsn)
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url, busy)
        site_id = f"site-{uuid.uuid4().hex[:8]}"
        routine_pid, _ = await new_patient(intake_http, site_id)
        risk_pid, _ = await new_patient(intake_http, site_id)
        routine = checkin_body(routine_pid, [1, 1, 1, 1, 1, 0, 0, 0, 0])
        # the routine check-in's patient is locked (services/intake/commands.py
        # record_checkin takes that lock first)
        tx = holder.transaction()
        await tx.start()
        await holder.execute(
            "SELECT 1 FROM intake.patients WHERE patient_id = $1 FOR UPDATE", routine_pid
        )
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            waiting = asyncio.create_task(http.post("/v1/checkins", json=routine))
            await eventually(
                lambda: holder.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                ),
                lambda n: n >= 1,
                what="the routine check-in holding the API's one routine connection",
            )
            risk = checkin_body(risk_pid, SUICIDAL, suicidal_ideation=True)
            started = time.monotonic()
            r = await http.post("/v1/checkins", json=risk, timeout=BOUND_S)
            assert r.status_code == 202, r.text
            assert time.monotonic() - started < BOUND_S
            assert not waiting.done()  # the routine one still waits for its lock
            await tx.rollback()
            assert (await waiting).status_code == 202
    finally:
        await holder.close()
        busy.kill(signal.SIGTERM)


async def test_the_relay_publishes_a_safety_signal_before_the_backlog(
    intake: IntakeStack, intake_http: httpx.AsyncClient, event_log: EventLog
) -> None:
    """A backlog of routine events is waiting (the relay was down); the signal committed
    after all of them is published first."""
    intake.relay.kill(signal.SIGTERM)
    try:
        bodies = [intake_body() for _ in range(40)]
        for body in bodies:
            assert (await intake_http.post("/v1/intakes", json=body)).status_code == 201
        pid = bodies[-1]["patient"]["patient_id"]
        last = await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
    finally:
        intake.relay.start()
    await eventually(
        lambda: any(d["signal_id"] == last["checkin_id"] for d in event_log.data("safety.signal")),
        timeout=30,
        what="the signal published",
    )
    conn = await asyncpg.connect(intake.dsn)
    try:
        await eventually(
            lambda: conn.fetchval(
                "SELECT count(*) FROM intake.outbox WHERE published_at IS NULL "
                "AND key = ANY($1::text[])",
                [b["patient"]["patient_id"] for b in bodies],
            ),
            lambda n: n == 0,
            what="the backlog published",
        )
        rows = await conn.fetch(
            "SELECT topic, priority, published_at FROM intake.outbox_events "
            "WHERE key = ANY($1::text[])",
            [b["patient"]["patient_id"] for b in bodies],
        )
    finally:
        await conn.close()
    signal_at = next(r["published_at"] for r in rows if r["topic"] == "safety.signal")
    routine = [r["published_at"] for r in rows if r["topic"] != "safety.signal"]
    # 40 screens, the check-in's routine event and its checkin.flagged twin (scheduling's)
    assert len(routine) == 42
    assert signal_at < min(routine)


async def test_under_overload_every_signal_pages_within_the_bound(
    api: httpx.AsyncClient,
    alerts: AlertsStack,
    intake: IntakeStack,
    intake_http: httpx.AsyncClient,
    receiver: PageReceiver,
) -> None:
    """Intakes from 32 clients at once, back to back, for 10 s: more than the stack keeps
    up with on this machine (the routine consumers fall behind; the backlog is printed),
    while a check-in with suicidal ideation arrives every second. Each of them pages
    within BOUND_S of being accepted: nothing routine queues in front of a signal."""
    site_id = await new_site(api, tiers(receiver, "/ov", escalate_after_s=600))
    patients = [(await new_patient(intake_http, site_id))[0] for _ in range(8)]
    stop = time.monotonic() + 10
    posted: list[float] = []  # each intake's latency

    async def flood() -> None:
        async with httpx.AsyncClient(base_url=intake.url, timeout=30) as http:
            while time.monotonic() < stop:
                t0 = time.monotonic()
                r = await http.post("/v1/intakes", json=intake_body())
                assert r.status_code == 201, r.text
                posted.append(time.monotonic() - t0)

    load = [asyncio.create_task(flood()) for _ in range(32)]
    accepted: dict[str, float] = {}
    try:
        await asyncio.sleep(1.5)  # the flood is under way before the first signal
        for pid in patients:
            await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
            accepted[pid] = time.monotonic()
            await asyncio.sleep(1.0)
        conn = await asyncpg.connect(intake.dsn)
        try:  # how far behind the routine path is as the load ends
            backlog = await conn.fetchval(
                "SELECT count(*) FROM intake.outbox WHERE published_at IS NULL"
            )
        finally:
            await conn.close()
    finally:
        await asyncio.gather(*load)
    await receiver.wait_for(
        lambda rx: {r.json["patient_id"] for r in rx.requests("/ov")} >= set(patients),
        timeout=60,
        what="a page for every signal",
    )
    late = {}
    for pid, at in accepted.items():
        first = min(
            r.received_mono for r in receiver.requests("/ov") if r.json["patient_id"] == pid
        )
        if first - at > BOUND_S:
            late[pid] = round(first - at, 2)
    print(
        f"overload: {len(posted) / 10:.0f} intakes/s accepted from 32 clients, their p50 "
        f"{statistics.median(posted) * 1000:.0f} ms (the API saturated: a queue, not a "
        f"pace it keeps); intake outbox backlog {backlog} at the end; "
        f"{len(accepted)} signals, late: {late}"
    )
    assert not late, f"pages later than {BOUND_S} s after acceptance: {late}"
    for pid in patients:  # one alert, one page each
        [alert] = await alerts_of(api, pid, kind="suicide_risk")
        assert len(pages_to(receiver, "/ov", alert["alert_id"])) == 1
        await api.post(f"/v1/alerts/{alert['alert_id']}/resolve", json={"by": "Dr. ov"})
