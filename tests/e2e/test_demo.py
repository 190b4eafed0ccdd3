"""`make demo` (tools.demo) against the test stack: what it loads is really there."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.support.clocked import ClockedStack
from tests.support.stack import AlertsStack, IntakeStack, SchedulingStack, free_port
from tools import demo

pytestmark = pytest.mark.integration

NOWHERE = f"http://127.0.0.1:{free_port()}"  # nothing listens there


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as c:
        yield c


async def get(client: httpx.AsyncClient, url: str, **params: Any) -> Any:
    r = await client.get(url, params=params)
    assert r.status_code == 200, f"GET {url} -> {r.status_code}: {r.text}"
    return r.json()


async def test_demo_loads_a_living_network(
    clocked: ClockedStack, client: httpx.AsyncClient
) -> None:
    # the demo moves the stack's clock: it runs on the clocked stack (production timing)
    intake = SimpleNamespace(url=clocked.intake_url)
    scheduling = SimpleNamespace(url=clocked.scheduling_url)
    alerts = SimpleNamespace(url=clocked.alerts_url)
    lines: list[str] = []
    started = time.monotonic()
    summary = await demo.main(intake.url, scheduling.url, alerts.url, echo=lines.append)
    assert time.monotonic() - started < 60
    now = await clocked.now()
    assert summary.clock_from is not None
    assert summary.clock_to is not None
    assert summary.clock_to > summary.clock_from
    printed = "\n".join(lines)
    assert f"run {summary.run}" in printed
    assert "/page2" in printed
    assert demo.dashboard_url() in printed

    # Three sites in three time zones, each with a two-tier on-call policy.
    zones = set()
    for site in demo.SITES:
        body = await get(client, f"{scheduling.url}/v1/sites/{site.site_id}")
        zones.add(body["timezone"])
        oncall = await get(client, f"{alerts.url}/v1/sites/{site.site_id}/oncall")
        assert [t["recipients"][0]["webhook_url"] for t in oncall["tiers"]] == [
            "http://127.0.0.1:9900/page",
            "http://127.0.0.1:9900/page2",
        ]
    assert len(zones) == 3

    # ~40 intakes accepted, at the stages planned: mostly eligible, some review, some not.
    assert len(summary.outcomes) == 40
    decisions: Counter[str] = Counter()
    for o in summary.outcomes:
        body = await get(client, f"{intake.url}/v1/intakes/{o.intake_id}")
        assert body["patient_id"] == o.patient.patient_id
        assert body["patient_id"].startswith(f"demo-{summary.run}-")
        decisions[body["decision"]] += 1
    assert decisions["eligible"] >= 30
    assert decisions["needs_review"] >= 3
    assert decisions["ineligible"] >= 2
    assert all(o.decision == demo.expected_decision(o.patient.stage) for o in summary.outcomes)

    # Eligible patients have their series; some sessions confirmed, some completed.
    statuses: Counter[str] = Counter()
    for o in summary.outcomes:
        appts = await get(
            client, f"{scheduling.url}/v1/patients/{o.patient.patient_id}/appointments"
        )
        if o.decision == "eligible" or o.approved:
            assert len([a for a in appts if a["reason"] == "induction"]) >= 12
        statuses.update(a["status"] for a in appts)
        # nothing completed or missed before it took place (the demo moved the clock)
        for a in appts:
            if a["status"] in ("completed", "no_show"):
                assert datetime.fromisoformat(a["end"]) <= now, a
    assert statuses["confirmed"] > 0
    assert statuses["completed"] > 0
    assert statuses["no_show"] >= 1
    assert summary.tally.deferred == 1

    # Alerts: critical and warning ones, open and acknowledged.
    found: list[dict[str, Any]] = []
    for site in demo.SITES:
        found += await get(client, f"{alerts.url}/v1/alerts", site_id=site.site_id, limit=1000)
    mine = [a for a in found if a["patient_id"].startswith(f"demo-{summary.run}-")]
    severities = Counter(a["severity"] for a in mine)
    assert severities["critical"] >= 1
    assert severities["warning"] >= 1
    kinds = {a["kind"] for a in mine}
    assert {"suicide_risk", "worsening", "no_show", "dose_deferred"} <= kinds
    assert any(a["status"] == "acknowledged" for a in mine)
    assert any(a["status"] == "open" for a in mine)
    assert summary.acknowledged is not None

    # Patients whose dose was completed are monitored, and their check-ins arrived.
    monitored = [o for o in summary.outcomes if o.patient.stage in demo.MONITORED]
    assert monitored
    assert all(o.checkins >= 2 for o in monitored)
    states: dict[str, dict[str, Any]] = {}

    async def poll() -> None:
        for o in monitored:
            pid = o.patient.patient_id
            r = await client.get(f"{alerts.url}/v1/patients/{pid}/monitoring")
            if r.status_code == 200:
                states[pid] = r.json()

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        await poll()
        if len(states) == len(monitored) and all(
            s["monitored"] and s["last_checkin_at"] for s in states.values()
        ):
            break
        await asyncio.sleep(0.2)
    assert len(states) == len(monitored)
    for pid, state in states.items():
        assert state["monitored"] is True, (pid, state)
        assert state["last_checkin_at"] is not None, (pid, state)
        # a check-in every 20 h of the stack's time, stamped with it: none missed
        assert state["total_misses"] == 0, (pid, state)
        assert datetime.fromisoformat(state["last_checkin_at"]) <= now
    assert not {a["kind"] for a in mine} & {"missed_checkins"}


async def test_the_demo_says_it_needs_the_dev_clock(
    intake: IntakeStack, scheduling: SchedulingStack, alerts: AlertsStack
) -> None:
    with pytest.raises(demo.DemoError, match="DEV_CLOCK=1"):
        await demo.main(intake.url, scheduling.url, alerts.url, echo=lambda _: None)


async def test_demo_says_when_a_service_is_not_running() -> None:
    with pytest.raises(demo.DemoError, match="run `make up` or `make start` first"):
        await demo.main(NOWHERE, NOWHERE, NOWHERE, echo=lambda _: None)


def test_demo_cli_exits_1_when_a_service_is_not_running(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.cli(["--intake", NOWHERE, "--scheduling", NOWHERE, "--alerts", NOWHERE]) == 1
    err = capsys.readouterr().err
    assert "not reachable at http://127.0.0.1:" in err
    assert "make start" in err
