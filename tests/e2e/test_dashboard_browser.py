"""The ops dashboard in a real headless Chromium (Debian's), driven by Playwright.

A critical alert arrives on the board without a reload, is acknowledged from the page,
and moves to acknowledged; a service that is down shows as down. Screenshots are saved
under test-artifacts/screenshots/.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, HAVE_CHROMIUM, start_dashboard
from tests.support.eventually import eventually
from tests.support.stack import (
    ARTIFACTS,
    AlertsStack,
    IntakeStack,
    SchedulingStack,
    free_port,
)
from tools.factories import checkin_body, intake_body
from tools.page_receiver import PageReceiver

pytestmark = pytest.mark.integration

SHOTS = ARTIFACTS / "screenshots"


@pytest.fixture(scope="module")
async def dashboard(database: str, intake: IntakeStack, alerts: AlertsStack) -> AsyncIterator[str]:
    """The dashboard, pointed at the test stack; scheduling deliberately unreachable."""
    url, proc = await start_dashboard(
        database,
        INTAKE_URL=intake.url,
        ALERTS_URL=alerts.url,
        SCHEDULING_URL=f"http://127.0.0.1:{free_port()}",
    )
    yield url
    proc.kill(signal.SIGTERM)


@pytest.fixture(scope="module")
async def full_dashboard(
    database: str, intake: IntakeStack, alerts: AlertsStack, scheduling: SchedulingStack
) -> AsyncIterator[str]:
    """The dashboard over every service of the test stack."""
    url, proc = await start_dashboard(
        database, INTAKE_URL=intake.url, ALERTS_URL=alerts.url, SCHEDULING_URL=scheduling.url
    )
    yield url
    proc.kill(signal.SIGTERM)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert HAVE_CHROMIUM, "Debian's chromium is missing: make install provides it"
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    p = await context.new_page()
    yield p
    await context.close()


async def test_a_critical_alert_arrives_live_and_is_acknowledged_from_the_page(
    dashboard: str,
    alerts: AlertsStack,
    intake: IntakeStack,
    page: Page,
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with (
        PageReceiver() as receiver,
        httpx.AsyncClient(timeout=30) as http,
    ):
        site_id = f"site-{uuid.uuid4().hex[:8]}"
        oncall = {
            "tiers": [
                {
                    "recipients": [{"name": "Dr. Browser", "webhook_url": receiver.url("/b")}],
                    "escalate_after_s": 600,
                }
            ]
        }
        assert (
            await http.put(f"{alerts.url}/v1/sites/{site_id}/oncall", json=oncall)
        ).status_code == 200
        body = intake_body(site_id=site_id)
        pid = body["patient"]["patient_id"]
        assert (await http.post(f"{intake.url}/v1/intakes", json=body)).status_code == 201

        await page.goto(dashboard)
        await expect(page.locator("#board table.board")).to_be_visible()
        row = page.locator(f"tr[data-alert-id]:has(code:text-is('{pid}'))")
        await expect(row).to_have_count(0)

        # the patient reports suicidal ideation: the alert appears without a reload
        checkin = checkin_body(pid, [1, 1, 1, 0, 1, 1, 0, 0, 2], suicidal_ideation=True)
        assert (await http.post(f"{intake.url}/v1/checkins", json=checkin)).status_code == 202
        await expect(row).to_have_count(1, timeout=15_000)
        await expect(row).to_have_attribute("data-severity", "critical")
        await expect(row).to_have_attribute("data-status", "open")
        banner = page.locator("#critical-banner")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("open critical")
        # the sites panel says scheduling is down, not "0 waitlisted"
        await expect(page.locator("[data-down='scheduling']")).to_be_visible()
        await page.screenshot(path=str(SHOTS / "dashboard-critical-alert.png"), full_page=True)

        # acknowledge from the page, with a note
        await page.fill("#actor", "Dr. Browser")
        page.once("dialog", lambda d: d.accept("calling the patient"))
        await row.locator("button.ack").click()
        await expect(row).to_have_attribute("data-status", "acknowledged", timeout=10_000)
        await expect(page.locator(".message.ok")).to_contain_text("acknowledged by Dr. Browser")
        # the board's next refresh (every second) keeps the outcome on the page
        await page.evaluate(
            "() => new Promise(done => document.getElementById('board')"
            ".addEventListener('htmx:afterSwap', done, {once: true}))"
        )
        await expect(page.locator(".message.ok")).to_contain_text("acknowledged by Dr. Browser")
        await page.screenshot(path=str(SHOTS / "dashboard-acknowledged.png"), full_page=True)

        alert_id = await row.get_attribute("data-alert-id")
        assert alert_id is not None
        detail = (await http.get(f"{alerts.url}/v1/alerts/{alert_id}")).json()
        assert detail["acknowledged"]["by"] == "Dr. Browser"
        assert detail["acknowledged"]["note"] == "calling the patient"

        # an action on an alert that changed meanwhile reads as a 409, and the row refreshes
        r = await http.post(
            f"{alerts.url}/v1/alerts/{alert_id}/resolve", json={"by": "Dr. Elsewhere"}
        )
        assert r.status_code == 200
        stale = await http.post(
            f"{dashboard}/actions/alerts/{alert_id}/resolve",
            content="by=Dr.+Browser",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert stale.status_code == 200
        assert "Not done (409)" in stale.text
        assert "already resolved by Dr. Elsewhere" in stale.text
        assert alert_id not in stale.text  # resolved: gone from the board


async def test_a_site_week_shows_each_appointment_in_its_lane_at_site_local_time(
    full_dashboard: str, scheduling: SchedulingStack, intake: IntakeStack, page: Page
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    site_id = f"site-{uuid.uuid4().hex[:8]}"
    tz = ZoneInfo("America/Los_Angeles")
    async with httpx.AsyncClient(timeout=30) as http:
        site = {
            "name": "Westside",
            "timezone": "America/Los_Angeles",
            "hours": {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
            "treatment_rooms": 2,
            "therapists": 2,
        }
        assert (
            await http.put(f"{scheduling.url}/v1/sites/{site_id}", json=site)
        ).status_code == 200
        body = intake_body(site_id=site_id)
        pid = body["patient"]["patient_id"]
        assert (await http.post(f"{intake.url}/v1/intakes", json=body)).status_code == 201
        appts: list[dict[str, object]] = await eventually(
            lambda: _json(http, f"{scheduling.url}/v1/patients/{pid}/appointments"),
            lambda a: len(a) == 12,
            what="the series",
        )
        assert len(appts) == 12

    first = min(appts, key=lambda a: str(a["start"]))
    start = datetime.fromisoformat(str(first["start"])).astimezone(tz)
    end = datetime.fromisoformat(str(first["end"])).astimezone(tz)
    same_week = [
        a
        for a in appts
        if datetime.fromisoformat(str(a["start"])).astimezone(tz).isocalendar()[:2]
        == start.isocalendar()[:2]
    ]
    await page.goto(f"{full_dashboard}/sites/{site_id}?week={start.date()}")
    for a in same_week:
        local = datetime.fromisoformat(str(a["start"])).astimezone(tz)
        block = page.locator(
            f"tr[data-lane='{a['resource']}'] td[data-day='{local.date()}'] "
            f"[data-appointment-id='{a['appointment_id']}']"
        )
        await expect(block).to_have_count(1)
        await expect(block).to_have_attribute("data-local-start", local.strftime("%H:%M"))
    # inside the site's own opening hours, in its own time zone
    assert start.strftime("%H:%M") >= "09:00"
    assert end.strftime("%H:%M") <= "17:00"
    await page.screenshot(path=str(SHOTS / "dashboard-site-week.png"), full_page=True)

    # confirm the first dose from the page
    block = page.locator(f"[data-appointment-id='{first['appointment_id']}']")
    await block.click()
    await page.locator("#block-menu button.act-confirm").click()
    await expect(
        page.locator(f"[data-appointment-id='{first['appointment_id']}']")
    ).to_have_attribute("data-status", "confirmed", timeout=10_000)
    await expect(page.locator(".message.ok")).to_contain_text("is confirmed")

    # the network overview counts the patient in induction at this site, and its rooms busy
    await page.goto(full_dashboard)
    row = page.locator(f"tr[data-site-id='{site_id}']")
    await expect(row.locator("td[data-k='in_induction']")).to_have_text("1")
    await expect(row.locator("td[data-k='waitlisted']")).to_have_text("0")
    await expect(row).to_contain_text("Westside")
    await page.screenshot(path=str(SHOTS / "dashboard-overview.png"), full_page=True)


async def test_a_patient_page_charts_every_phq9_score(
    full_dashboard: str, intake: IntakeStack, page: Page
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with httpx.AsyncClient(timeout=30) as http:
        body = intake_body(site_id=f"site-{uuid.uuid4().hex[:8]}")  # total 20
        pid = body["patient"]["patient_id"]
        assert (await http.post(f"{intake.url}/v1/intakes", json=body)).status_code == 201
        now = datetime.now(UTC)
        scores = [
            [1, 1, 1, 1, 1, 1, 1, 1, 0],
            [0, 1, 0, 1, 0, 0, 1, 0, 0],
            [2, 2, 2, 1, 1, 1, 1, 0, 0],
        ]
        for i, phq9 in enumerate(scores):  # 8, 3 (remission), 10 (worsening after remission)
            at = (now - timedelta(seconds=30 - 10 * i)).isoformat()
            c = checkin_body(pid, phq9, submitted_at=at)
            assert (await http.post(f"{intake.url}/v1/checkins", json=c)).status_code == 202

    await page.goto(f"{full_dashboard}/patients/{pid}")
    canvas = page.locator("#phq9-chart")
    await expect(canvas).to_have_attribute("data-points", "4")
    points = await page.evaluate("window.phq9Chart.data.datasets[0].data.map(p => p.y)")
    assert points == [20, 8, 3, 10]
    colours = await page.evaluate("window.phq9Chart.data.datasets[0].pointBackgroundColor")
    assert colours[3] == "#b00020"  # the worsening check-in is marked
    assert colours[:3].count("#b00020") == 0
    response = await page.evaluate("window.phq9Chart.data.datasets[1].data.map(p => p.y)")
    assert response == [10, 10]  # half the baseline of 20
    await page.screenshot(path=str(SHOTS / "dashboard-patient.png"), full_page=True)


async def test_a_patient_held_while_at_risk_shows_on_their_page_and_their_sites_week(
    full_dashboard: str,
    scheduling: SchedulingStack,
    intake: IntakeStack,
    alerts: AlertsStack,
    page: Page,
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    site_id = f"site-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=30) as http:
        site = {
            "name": "Hold",
            "timezone": "America/New_York",
            "hours": {d: ["08:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
            "treatment_rooms": 1,
            "therapists": 1,
        }
        assert (
            await http.put(f"{scheduling.url}/v1/sites/{site_id}", json=site)
        ).status_code == 200
        body = intake_body(site_id=site_id)
        pid = body["patient"]["patient_id"]
        assert (await http.post(f"{intake.url}/v1/intakes", json=body)).status_code == 201
        await page.goto(f"{full_dashboard}/patients/{pid}")
        await expect(page.locator("[data-held]")).to_have_count(0)
        ideation = checkin_body(pid, [1, 1, 1, 0, 1, 1, 0, 0, 2], suicidal_ideation=True)
        assert (await http.post(f"{intake.url}/v1/checkins", json=ideation)).status_code == 202

        hold_url = f"{scheduling.url}/v1/patients/{pid}/hold"
        # the hold is learnt from the check-in's event
        hold = await eventually(lambda: _json(http, hold_url), lambda h: h.get("held"), what="hold")
        assert hold["held"] is True

        await page.goto(f"{full_dashboard}/patients/{pid}")
        await expect(page.locator("p.hold[data-held='true']")).to_contain_text("On hold")
        await page.screenshot(path=str(SHOTS / "dashboard-patient-hold.png"), full_page=True)
        await page.goto(f"{full_dashboard}/sites/{site_id}")
        await expect(page.locator(f"p.hold [data-held='{pid}']")).to_have_count(1)

        # resolved: the hold lifts on both pages
        alert = next(
            a
            for a in (await http.get(f"{alerts.url}/v1/alerts", params={"patient_id": pid})).json()
            if a["kind"] == "suicide_risk"
        )
        r = await http.post(
            f"{alerts.url}/v1/alerts/{alert['alert_id']}/resolve", json={"by": "Dr. H"}
        )
        assert r.status_code == 200, r.text
        await eventually(lambda: _json(http, hold_url), lambda h: not h["held"], what="no hold")
        await page.goto(f"{full_dashboard}/sites/{site_id}")
        await expect(page.locator("p.hold")).to_have_count(0)
        await page.goto(f"{full_dashboard}/patients/{pid}")
        await expect(page.locator("p.hold")).to_have_count(0)


async def _json(http: httpx.AsyncClient, url: str) -> Any:
    return (await http.get(url)).json()
