"""The dev clock on real processes (docs/architecture.md "Dev clock"): one offset for
the whole stack, forward only, loopback only, absent without DEV_CLOCK=1, and a timer
that falls due in a skipped span fires as if the time had passed."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.clocked import ClockedStack
from tests.support.eventually import eventually
from tests.support.scheduling import appointments, site_body
from tests.support.stack import (
    ROOT,
    AlertsStack,
    IntakeStack,
    SchedulingStack,
    free_port,
    service_env,
)
from tools.factories import intake_body

pytestmark = pytest.mark.integration


async def test_moving_the_clock_on_one_service_moves_it_for_every_process_within_a_second(
    clocked: ClockedStack,
) -> None:
    before = await clocked.offset()
    async with clocked.client("intake") as intake:
        r = await intake.post("/v1/dev/clock", json={"advance_s": 3600})
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["offset_s"] == before + 3600
    assert moved["now"].endswith("Z")
    started = time.monotonic()
    seen = await eventually(
        clocked.offsets,
        lambda o: set(o.values()) == {before + 3600},
        timeout=1.0,
        what="every process (APIs, relays, workers, timers) at the new offset within 1 s",
    )
    assert time.monotonic() - started <= 1.0
    assert len(seen) == 10  # 3 APIs, 3 relays, 2 workers, the timers, the safety lane
    for service in ("intake", "scheduling", "alerts"):
        answer = await clocked.clock(service)
        ahead = datetime.fromisoformat(answer["now"]) - datetime.now(UTC)
        assert timedelta(seconds=before + 3590) < ahead <= timedelta(seconds=before + 3600)


async def test_the_clock_never_goes_backwards_and_bad_bodies_are_422(
    clocked: ClockedStack,
) -> None:
    before = await clocked.offset()
    for service, url in clocked.urls.items():
        for n in (0, -1, -86400):
            r = await clocked.http.post(f"{url}/v1/dev/clock", json={"advance_s": n})
            assert r.status_code == 409, (service, n, r.text)
            assert r.json()["error"] == "clock_backwards"
            assert r.json()["detail"]
        for bad in ({}, {"advance_s": "60"}, {"advance_s": 1.5}, {"advance_s": True}):
            r = await clocked.http.post(f"{url}/v1/dev/clock", json=bad)
            assert r.status_code == 422, (service, bad, r.text)
            assert r.json()["errors"][0]["field"] in ("advance_s", "body")
    assert set((await clocked.offsets()).values()) == {before}


async def test_without_dev_clock_there_is_no_clock_to_move(
    intake: IntakeStack, scheduling: SchedulingStack, alerts: AlertsStack
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for url in (intake.url, scheduling.url, alerts.url):
            for r in (
                await http.get(f"{url}/v1/dev/clock"),
                await http.post(f"{url}/v1/dev/clock", json={"advance_s": 60}),
            ):
                assert r.status_code == 404, (url, r.text)
                assert r.json()["error"] == "not_found"
            assert "/v1/dev/clock" not in (await http.get(f"{url}/openapi.json")).json()["paths"]


@pytest.mark.parametrize(
    ("args", "port_var"),
    [
        (["services.intake", "api"], "INTAKE_PORT"),
        (["services.alerts", "timers"], "ALERTS_TIMERS_METRICS_PORT"),
    ],
)
def test_dev_clock_on_an_address_others_can_reach_is_refused_at_start(
    args: list[str], port_var: str
) -> None:
    env = service_env(
        "postgresql://nobody@127.0.0.1:1/none",  # refused before it would connect
        DEV_CLOCK="1",
        HTTP_HOST="0.0.0.0",
        **{port_var: str(free_port())},
    )
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    assert done.returncode != 0
    err = done.stderr.decode()
    assert "DEV_CLOCK=1 is refused" in err, err[-2000:]
    assert "HTTP_HOST=0.0.0.0" in err


def _start(a: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(a["start"])


async def test_a_missed_checkin_due_in_the_skipped_span_fires_right_after_the_advance(
    clocked: ClockedStack,
) -> None:
    """Production timing (a check-in a day, 12 h grace): the first dose completed, 36 h
    skipped in one move, and the miss is there at once, not after a day and a half."""
    site_id = f"site-{uuid.uuid4().hex[:8]}"
    async with (
        clocked.client("scheduling") as sched,
        clocked.client("intake") as intake,
        clocked.client("alerts") as alerts,
    ):
        assert (await sched.put(f"/v1/sites/{site_id}", json=site_body())).status_code == 200
        now = await clocked.now()
        body = intake_body(site_id=site_id, submitted_at=(now - timedelta(minutes=1)).isoformat())
        pid = body["patient"]["patient_id"]
        assert (await intake.post("/v1/intakes", json=body)).status_code == 201
        appts = await eventually(
            lambda: appointments(sched, pid), lambda a: len(a) == 12, what="the series"
        )
        first = min((a for a in appts if a["kind"] == "dosing"), key=_start)
        assert _start(first) > now  # placed in the stack's future, not the wall clock's
        aid = first["appointment_id"]
        assert (await sched.post(f"/v1/appointments/{aid}/confirm")).status_code == 200
        await clocked.advance_to(_start(first) + timedelta(hours=1))
        r = await sched.post(f"/v1/appointments/{aid}/complete")
        assert r.status_code == 200, r.text
        completed_at = await clocked.now()

        async def monitoring() -> dict[str, Any]:
            r = await alerts.get(f"/v1/patients/{pid}/monitoring")
            return r.json() if r.status_code == 200 else {}

        watched = await eventually(monitoring, lambda m: m.get("monitored"), what="monitoring")
        deadline = datetime.fromisoformat(watched["missed_after"])
        # the real interval and grace: due a day after the dose, missed 12 h later
        assert (
            timedelta(hours=35, minutes=59)
            < deadline - completed_at
            < timedelta(hours=36, minutes=1)
        )
        assert watched["consecutive_misses"] == 0
        assert not [e for e in clocked.events.data("checkin.missed") if e["patient_id"] == pid]

        moved_to = await clocked.advance(deadline - completed_at + timedelta(minutes=5))
        # the timers process sleeps up to TIMER_IDLE_POLL_S (30 s) when idle: a miss well
        # within that shows the move woke it
        missed = await eventually(
            monitoring, lambda m: m.get("consecutive_misses") == 1, timeout=10, what="the miss"
        )
        assert missed["total_misses"] == 1
        assert datetime.fromisoformat(missed["last_missed_at"]) >= deadline
        events = await eventually(
            lambda: _missed(clocked, pid), lambda e: len(e) == 1, timeout=10, what="event"
        )
        assert datetime.fromisoformat(events[0]["deadline_at"]) == deadline
        assert (
            deadline
            < datetime.fromisoformat(events[0]["missed_at"])
            <= moved_to + timedelta(seconds=10)
        )


async def _missed(clocked: ClockedStack, pid: str) -> list[dict[str, Any]]:
    return [e for e in clocked.events.data("checkin.missed") if e["patient_id"] == pid]
