"""The ops dashboard in a real headless Chromium (Debian's), driven by Playwright.

A critical alert arrives on the board without a reload, is acknowledged from the page,
and moves to acknowledged; a service that is down shows as down. Screenshots are saved
under test-artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.factories import checkin_body, intake_body
from tests.integration.conftest import (
    ARTIFACTS,
    AlertsStack,
    IntakeStack,
    ServiceProcess,
    free_port,
    service_env,
    wait_ready,
)
from tools.page_receiver import PageReceiver

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ARTIFACTS / "screenshots"


@pytest.fixture(scope="module")
async def dashboard(database: str, intake: IntakeStack, alerts: AlertsStack) -> AsyncIterator[str]:
    """The dashboard, pointed at the test stack; scheduling deliberately unreachable."""
    port = free_port()
    env = service_env(
        database,
        DASHBOARD_PORT=str(port),
        INTAKE_URL=intake.url,
        ALERTS_URL=alerts.url,
        SCHEDULING_URL=f"http://127.0.0.1:{free_port()}",
        BOARD_REFRESH_S="1",
    )
    proc = ServiceProcess(
        "dashboard",
        ["services.dashboard"],
        env,
        ARTIFACTS / "logs" / f"dashboard-{uuid.uuid4().hex[:6]}.log",
    )
    proc.start()
    url = f"http://127.0.0.1:{port}"
    await wait_ready(url, proc)
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
