"""The pipeline watchdog end to end (services/alerts/watchdog.py; docs/architecture.md,
"Pipeline watchdog"): a stack of its own (its database, its topic prefix) with the
heartbeat every second and PIPELINE_STALL_S=8, the network ops on-call pointing at a
PageReceiver. Healthy, nothing is raised; a frozen safety lane or intake relay is paged
as ``pipeline_stalled`` within PIPELINE_STALL_S + 5 s naming the stage, and the alert
resolves by itself once the stage moves again. Processes are frozen with SIGSTOP (as if
stuck: their sockets stay open) and thawed with SIGCONT. The watchdog reaches PostgreSQL
through a TCP relay of the test's (``DbLink``), so its database can be taken away from
it alone: it then pages from memory and records the alert once the database is back.

Last, the same network ops on-call standing in for a site with nobody on call: a
patient's critical alert there pages it, until the site's own on-call is put in place.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from shared.db import connect_kwargs
from tests.support.alerts import SUICIDAL, checkin, new_patient, new_site, tiers
from tests.support.dblink import DbLink
from tests.support.eventually import eventually
from tests.support.stack import (
    ARTIFACTS,
    ServiceProcess,
    create_space,
    drop_space,
    free_port,
    service_env,
    wait_ready,
)
from tools.factories import intake_body
from tools.page_receiver import PageReceiver

STALL_S = 8.0  # short for a test, with room for a loaded 2-core machine
SECRET = "watchdog-secret"


@dataclass
class Stack:
    alerts_url: str
    intake_url: str
    procs: dict[str, ServiceProcess]
    rx: PageReceiver
    db_link: DbLink
    watchdog_env: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    space = await create_space("watchdog")
    run, dsn, prefix = space.run, space.dsn, space.prefix
    ports = {"intake": free_port(), "alerts": free_port()}
    env = service_env(
        dsn,
        INTAKE_PORT=str(ports["intake"]),
        ALERTS_PORT=str(ports["alerts"]),
        ALERTS_CONSUMER_GROUP=f"alerts-watchdog-{run}",
        SCHEDULING_CONSUMER_GROUP=f"scheduling-watchdog-{run}",  # none runs: not watched
        WATCHDOG_OUTBOX_SCHEMAS="intake,alerts",
        PIPELINE_HEARTBEAT_INTERVAL_S="1",
        PIPELINE_STALL_S=str(STALL_S),
        PAGE_SIGNING_SECRET=SECRET,
        PAGE_RETRY_INITIAL_S="0.2",
        PAGE_RETRY_MAX_S="2",
    )
    env["KAFKA_TOPIC_PREFIX"] = prefix
    logs = ARTIFACTS / "logs"

    def proc(service: str, role: str, metrics: str | None = None) -> ServiceProcess:
        p = ServiceProcess(
            f"{service}-{role}",
            [f"services.{service}", role],
            env,
            logs / f"watchdog-{run}-{service}-{role}.log",
        )
        return p.with_metrics(metrics) if metrics else p

    procs = {
        "intake-api": proc("intake", "api"),
        "intake-relay": proc("intake", "relay", "RELAY_METRICS_PORT"),
        "alerts-api": proc("alerts", "api"),
        "alerts-relay": proc("alerts", "relay", "RELAY_METRICS_PORT"),
        "alerts-timers": proc("alerts", "timers", "ALERTS_TIMERS_METRICS_PORT"),
        "alerts-safety": proc("alerts", "safety", "ALERTS_SAFETY_METRICS_PORT"),
        # consumes intake.screened: a frozen one leaves the alerts group with lag
        "alerts-worker": proc("alerts", "worker", "WORKER_METRICS_PORT"),
    }
    urls = {s: f"http://127.0.0.1:{p}" for s, p in ports.items()}
    db_link = DbLink(dsn)
    watchdog_dsn = await db_link.start()
    async with PageReceiver(signing_secret=SECRET) as rx:
        for p in procs.values():
            p.start()
        await wait_ready(urls["intake"], procs["intake-api"])
        await wait_ready(urls["alerts"], procs["alerts-api"])
        async with httpx.AsyncClient(base_url=urls["alerts"], timeout=10) as api:
            body = {"tiers": [{"recipients": [{"name": "Ops", "webhook_url": rx.url("/ops")}]}]}
            r = await api.put("/v1/oncall/network", json=body)
            assert r.status_code == 200, r.text
            got = await api.get("/v1/oncall/network")
            assert got.json()["site_id"] == "_network"
        # the watchdog last: every stage is up and beating when it starts looking
        await eventually(lambda: beats(dsn), lambda n: n >= 2, timeout=60, what="first heartbeats")
        watchdog = proc("alerts", "watchdog", "ALERTS_WATCHDOG_METRICS_PORT")
        watchdog.env = {**watchdog.env, "DATABASE_URL": watchdog_dsn}  # through the link
        procs["alerts-watchdog"] = watchdog
        watchdog.start()
        # and looking: it has read the stages and the on-call from the database once (a
        # watchdog that starts into a database that hangs pages nobody: it has no list)
        await eventually(
            lambda: _looked(watchdog.metrics_url),
            timeout=60,
            what="the watchdog's first look at the database",
        )
        try:
            yield Stack(urls["alerts"], urls["intake"], procs, rx, db_link)
        finally:
            for p in procs.values():
                if p.proc is not None and p.proc.poll() is None:
                    p.proc.send_signal(signal.SIGCONT)
                # in a thread: this loop runs the watchdog's database link meanwhile
                await asyncio.to_thread(p.kill, signal.SIGTERM)
            await db_link.close()
    await drop_space(space)


async def _looked(url: str) -> bool:
    async with httpx.AsyncClient(timeout=3) as client:
        try:
            text = (await client.get(url)).text
        except httpx.HTTPError:
            return False
    # a stage only the database tells of (the metric itself is there from the first tick)
    return 'pipeline_stage_progress_age_seconds{stage="heartbeat"}' in text


async def beats(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, **connect_kwargs(dsn))
    try:
        try:
            return int(await conn.fetchval("SELECT count(*) FROM alerts.pipeline_heartbeats"))
        except asyncpg.UndefinedTableError:
            return 0
    finally:
        await conn.close()


async def stalled_alerts(stack: Stack, status: str | None = None) -> list[dict[str, Any]]:
    params = {"kind": "pipeline_stalled", **({"status": status} if status else {})}
    async with httpx.AsyncClient(base_url=stack.alerts_url, timeout=5) as api:
        r = await api.get("/v1/alerts", params=params)
        r.raise_for_status()
        out: list[dict[str, Any]] = r.json()
        return out


def freeze(stack: Stack, name: str) -> None:
    p = stack.procs[name].proc
    assert p is not None
    p.send_signal(signal.SIGSTOP)


def thaw(stack: Stack, name: str) -> None:
    p = stack.procs[name].proc
    assert p is not None
    p.send_signal(signal.SIGCONT)


async def test_a_healthy_stack_raises_nothing(stack: Stack) -> None:
    t0 = time.monotonic()
    # the watchdog is up and looking (its metrics answer), then stays quiet for 2 stalls
    await eventually(
        lambda: _metric(stack, "pipeline_stalled"), lambda v: v == 0.0, timeout=30, what="up"
    )
    while time.monotonic() - t0 < 2 * STALL_S + 2:
        assert await _metric(stack, "pipeline_stalled") == 0.0
        assert await stalled_alerts(stack) == []
        await eventually(lambda: _metric(stack, "pipeline_stalled"), lambda v: v == 0.0)
    assert stack.rx.requests("/ops") == []


async def _metric(stack: Stack, name: str) -> float | None:
    url = stack.procs["alerts-watchdog"].metrics_url
    async with httpx.AsyncClient(timeout=3) as client:
        try:
            text = (await client.get(url)).text
        except httpx.HTTPError:
            return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def _ops_pages(stack: Stack) -> list[Any]:
    return [
        r
        for r in stack.rx.delivered("/ops")
        if r.json and r.json.get("status") == "open" and r.json["kind"] == "pipeline_stalled"
    ]


async def _stall_and_recover(
    stack: Stack, victim: str, reason: str, after_freeze: Any = None
) -> dict[str, float]:
    seen = len(_ops_pages(stack))
    t0 = time.monotonic()
    freeze(stack, victim)
    if after_freeze is not None:
        await after_freeze()
    try:
        await stack.rx.wait_for(
            lambda rx: len(_ops_pages(stack)) > seen, timeout=STALL_S + 10, what="the stall page"
        )
        paged_after = time.monotonic() - t0
        page = _ops_pages(stack)[-1].json
        assert page["kind"] == "pipeline_stalled"
        assert page["severity"] == "critical"
        assert page["site_id"] == "_network"
        assert _ops_pages(stack)[-1].signature_ok  # signed as every page
        [alert] = await eventually(
            lambda: stalled_alerts(stack, "open"),
            lambda rows: len(rows) == 1 and reason in rows[0].get("reasons", [reason]),
            timeout=10,
            what="the open alert",
        )
        assert alert["alert_id"] == page["alert_id"]
    finally:
        thaw(stack, victim)
    t1 = time.monotonic()
    await eventually(
        lambda: stalled_alerts(stack, "open"), lambda rows: rows == [], timeout=60, what="resolve"
    )
    resolved_after = time.monotonic() - t1
    async with httpx.AsyncClient(base_url=stack.alerts_url, timeout=5) as api:
        detail = (await api.get(f"/v1/alerts/{page['alert_id']}")).json()
    assert detail["status"] == "resolved"
    assert reason in detail["reasons"], detail["reasons"]
    print(f"{victim}: paged after {paged_after:.1f}s, resolved {resolved_after:.1f}s after thaw")
    return {"paged": paged_after, "resolved": resolved_after}


async def test_a_frozen_safety_lane_is_paged_and_resolves(stack: Stack) -> None:
    times = await _stall_and_recover(stack, "alerts-safety", "heartbeat_stale")
    assert times["paged"] <= STALL_S + 5


async def test_a_frozen_intake_relay_is_paged(stack: Stack) -> None:
    times = await _stall_and_recover(stack, "intake-relay", "heartbeat_stale")
    assert times["paged"] <= STALL_S + 5
    # one open alert at a time, and every one of them resolved by itself
    assert all(a["status"] == "resolved" for a in await stalled_alerts(stack))


async def test_a_frozen_worker_with_work_waiting_is_paged(stack: Stack) -> None:
    """The alerts worker stuck while intakes arrive: its group's committed offsets stand
    still with lag on the broker (broker_lag:alerts)."""

    async def intakes() -> None:
        async with httpx.AsyncClient(base_url=stack.intake_url, timeout=10) as api:
            for _ in range(3):
                r = await api.post("/v1/intakes", json=intake_body())
                assert r.status_code == 201, r.text

    times = await _stall_and_recover(stack, "alerts-worker", "broker_lag:alerts", intakes)
    assert times["paged"] <= STALL_S + 5


async def test_without_its_database_the_watchdog_pages_from_memory_and_records_it_later(
    stack: Stack,
) -> None:
    """PostgreSQL gone for the watchdog: it pages the network on-call it last read, and the
    alert (with that page, delivered) is in the database once it is back, then resolves."""
    await _database_lost(stack, stack.db_link.cut)


async def test_a_database_that_hangs_does_not_hold_the_page(stack: Stack) -> None:
    """PostgreSQL answering nothing (connections open, no reply): every database step of
    the watchdog is bounded, so it still pages from memory within the bound."""
    await _database_lost(stack, stack.db_link.hang)


async def _database_lost(stack: Stack, lose: Any) -> None:
    seen = len(_ops_pages(stack))
    t0 = time.monotonic()
    lose()
    try:
        await stack.rx.wait_for(
            lambda rx: len(_ops_pages(stack)) > seen, timeout=STALL_S + 10, what="the stall page"
        )
        paged_after = time.monotonic() - t0
        page = _ops_pages(stack)[-1]
        assert page.json["kind"] == "pipeline_stalled"
        assert page.signature_ok
        # nothing of it in the database yet: the watchdog cannot reach it
        assert await stalled_alerts(stack, "open") == []
    finally:
        stack.db_link.mend()
    assert paged_after <= STALL_S + 5
    detail: dict[str, Any] = {}

    async def recorded() -> dict[str, Any]:
        nonlocal detail
        async with httpx.AsyncClient(base_url=stack.alerts_url, timeout=5) as api:
            r = await api.get(f"/v1/alerts/{page.json['alert_id']}")
            detail = r.json() if r.status_code == 200 else {}
        return detail

    await eventually(recorded, lambda d: d.get("status") == "resolved", timeout=30, what="recorded")
    assert "database_unreachable" in detail["reasons"]
    assert detail["resolved_by"] == "watchdog"
    key = page.headers["idempotency-key"]
    [first] = [p for p in detail["pages"] if p["idempotency_key"] == key]
    assert first["status"] == "delivered"
    # the receiver got that page once (no second POST of it after the database came back)
    keys = [r.headers.get("idempotency-key") for r in stack.rx.delivered("/ops")]
    assert keys.count(key) == 1


async def test_a_critical_alert_at_a_site_with_nobody_on_call_pages_the_network(
    stack: Stack,
) -> None:
    """A suicide-risk check-in at a site nobody has put an on-call in place for pages the
    network ops on-call rather than nobody; once the site's on-call is put, the alert is
    the site's and pages its tier 1."""
    async with (
        httpx.AsyncClient(base_url=stack.intake_url, timeout=10) as intake,
        httpx.AsyncClient(base_url=stack.alerts_url, timeout=10) as api,
    ):
        site_id = await new_site(api, None)
        pid, _ = await new_patient(intake, site_id)
        t0 = time.monotonic()
        await checkin(intake, pid, SUICIDAL, suicidal_ideation=True)
        ops = await stack.rx.wait_for_request(
            lambda q: q.path == "/ops" and (q.json or {}).get("patient_id") == pid, timeout=15
        )
        paged_after = time.monotonic() - t0
        assert (ops.json["kind"], ops.json["severity"]) == ("suicide_risk", "critical")
        assert ops.json["site_id"] == site_id
        alert_id = ops.json["alert_id"]
        detail = (await api.get(f"/v1/alerts/{alert_id}")).json()
        assert detail["policy_site"] == "_network"

        r = await api.put(f"/v1/sites/{site_id}/oncall", json=tiers(stack.rx, "/site"))
        assert r.status_code == 200, r.text
        own = await stack.rx.wait_for_request(
            lambda q: q.path == "/site" and (q.json or {}).get("alert_id") == alert_id, timeout=15
        )
        assert (own.json["tier"], own.json["reason"]) == (1, "initial")
        detail = (await api.get(f"/v1/alerts/{alert_id}")).json()
        assert detail["policy_site"] == site_id
        assert detail["policy"] == r.json()["tiers"]
        r = await api.post(f"/v1/alerts/{alert_id}/resolve", json={"by": "Dr. site"})
        assert r.status_code == 200, r.text
    print(f"a critical alert with nobody on call at its site: the network paged {paged_after:.2f}s")


async def test_a_watchdog_that_starts_into_a_hung_database_pages_its_fallback_webhook(
    stack: Stack,
) -> None:
    """A second watchdog whose database hangs from its first connection never reads the
    network on-call; with WATCHDOG_FALLBACK_WEBHOOK_URL it pages that (database stalled)
    instead of nobody."""
    dsn = stack.procs["alerts-api"].env["DATABASE_URL"]
    link = DbLink(dsn)
    hung_dsn = await link.start()
    link.hang()
    first = stack.procs["alerts-watchdog"]
    proc = ServiceProcess(
        "alerts-watchdog-hung",
        ["services.alerts", "watchdog"],
        {
            **first.env,
            "DATABASE_URL": hung_dsn,
            "WATCHDOG_FALLBACK_WEBHOOK_URL": stack.rx.url("/fallback"),
        },
        ARTIFACTS / "logs" / f"watchdog-hung-{uuid.uuid4().hex[:6]}.log",
    ).with_metrics("ALERTS_WATCHDOG_METRICS_PORT")
    t0 = time.monotonic()
    proc.start()
    try:
        page = await stack.rx.wait_for_request(
            lambda q: q.path == "/fallback", timeout=STALL_S + 15, what="the fallback page"
        )
        paged_after = time.monotonic() - t0
        assert (page.json["kind"], page.json["severity"]) == ("pipeline_stalled", "critical")
        assert page.signature_ok
        assert '"pipeline_stalled_paging_fallback"' in proc.logs()
    finally:
        await asyncio.to_thread(proc.kill, signal.SIGKILL)
        link.mend()
        await link.close()
    print(f"a watchdog started into a hung database paged its fallback after {paged_after:.1f}s")
