"""The dashboard's on-call page in a real headless Chromium (Debian's), driven by Playwright
(docs/domain.md "On-call people"): who is on call now for a tier that targets a schedule,
a coverage gap in red for a schedule that starts in three days, an override added from the
page's form (and a bad one refused beside the form), and a viewer seeing no forms.

The dashboard runs with sign-in (API_TOKENS_FILE): a scheduler and a viewer sign in with
their tokens. Screenshots are saved under test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import secrets
import signal
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from shared.auth import digest
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, HAVE_CHROMIUM, start_dashboard
from tests.support.stack import ARTIFACTS, AlertsStack, free_port

pytestmark = pytest.mark.integration

SHOTS = ARTIFACTS / "screenshots"
TOKENS = {"scheduler": secrets.token_urlsafe(24), "viewer": secrets.token_urlsafe(24)}
RED = "rgb(176, 0, 32)"  # app.css --crit


def token_book(path: Path) -> Path:
    """API_TOKENS_FILE with a scheduler's and a viewer's token (their hashes)."""
    entries = [
        {"name": f"test-{role}", "roles": [role], "sha256": digest(token).hex()}
        for role, token in TOKENS.items()
    ]
    path.write_text(json.dumps({"tokens": entries}))
    return path


@pytest.fixture(scope="module")
async def dashboard(
    database: str, alerts: AlertsStack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """The dashboard with sign-in, over the test stack's alerts; scheduling unreachable (the
    page is opened for given sites)."""
    book = token_book(tmp_path_factory.mktemp("tokens") / "tokens.json")
    url, proc = await start_dashboard(
        database,
        API_TOKENS_FILE=str(book),
        ALERTS_URL=alerts.url,
        SCHEDULING_URL=f"http://127.0.0.1:{free_port()}",
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


async def signed_in(browser: Browser, dashboard: str, role: str) -> Page:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    await page.goto(f"{dashboard}/signin")
    await page.fill("#token", TOKENS[role])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{dashboard}/")
    return page


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def put(http: httpx.AsyncClient, path: str, body: Mapping[str, object]) -> None:
    r = await http.put(path, json=body)
    assert r.status_code == 200, r.text


async def clinician(http: httpx.AsyncClient, name: str) -> str:
    cid = uid("c")
    body = {
        "name": name,
        "timezone": "UTC",
        "contact_methods": [{"id": "mail", "type": "email", "address": f"{cid}@clinic.example"}],
        "notification_rules": [{"contact_method": "mail", "after_s": 0}],
        "quiet_hours": {"start": "22:00", "end": "07:00"},
    }
    await put(http, f"/v1/clinicians/{cid}", body)
    return cid


def daily(participants: list[str], start: datetime) -> dict[str, object]:
    return {
        "name": f"Daily {participants[0]}",
        "timezone": "UTC",
        "rotations": [
            {
                "participants": participants,
                "shift": "daily",
                "handoff": "09:00",
                "start": str(start.date()),
            }
        ],
    }


def local_input(at: datetime) -> str:
    """A ``datetime-local`` field's value (the schedules here are in UTC)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


async def test_a_scheduler_sees_who_is_on_call_and_the_gaps_and_adds_an_override(
    dashboard: str, alerts: AlertsStack, browser: Browser
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=alerts.url, timeout=30) as http:
        ada = await clinician(http, "Dr. Ada Oncall")
        ben = await clinician(http, "Dr. Ben Later")
        cy = await clinician(http, "Dr. Cy Standin")
        covered, later = uid("sched"), uid("sched")
        await put(http, f"/v1/schedules/{covered}", daily([ada], now - timedelta(days=2)))
        await put(http, f"/v1/schedules/{later}", daily([ben], now + timedelta(days=3)))
        site_on, site_gap = uid("site"), uid("site")
        for site, sched in ((site_on, covered), (site_gap, later)):
            tiers = [{"targets": [{"schedule_id": sched}], "escalate_after_s": 600}]
            await put(http, f"/v1/sites/{site}/oncall", {"tiers": tiers})

    page = await signed_in(browser, dashboard, "scheduler")
    await page.goto(f"{dashboard}/oncall?sites={site_on},{site_gap}")

    # who is on call now, by name, for the tier that targets a schedule
    on_now = page.locator(f"[data-site-id='{site_on}'] tr[data-tier='1'] td.on-now")
    await expect(on_now).to_have_text("Dr. Ada Oncall")
    await expect(page.locator(f"[data-site-id='{site_on}'] [data-gap]")).to_have_count(0)
    # the schedule that starts in three days leaves a gap until then, in red
    gap = page.locator(f"[data-site-id='{site_gap}'] tr[data-tier='1'] [data-gap]")
    await expect(gap).to_have_count(1)
    await expect(gap).to_have_css("color", RED)
    await expect(page.locator(f"[data-site-id='{site_gap}'] td.on-now")).to_have_text("nobody")
    # the next handoffs: Ben's rotation begins within the week
    handoffs = page.locator(f"[data-schedule-id='{later}'] [data-handoff]")
    await expect(handoffs.first).to_contain_text("nobody → Dr. Ben Later")
    # each clinician's contact method, rule and quiet hours
    row = page.locator(f"tr[data-clinician-id='{ada}']")
    await expect(row).to_contain_text(f"{ada}@clinic.example")
    await expect(row).to_contain_text("email (mail) at 0 s")
    await expect(row.locator("td").nth(4)).to_contain_text("22:00")  # quiet hours
    await expect(row.locator("td").nth(4)).to_contain_text("07:00")
    await page.screenshot(path=str(SHOTS / "dashboard-oncall.png"), full_page=True)

    form = page.locator(f"[data-schedule-id='{covered}'] form.add-override")
    # a window that ends before it starts: the alerts API's 422, beside the form
    await form.locator("select[name=clinician_id]").select_option(cy)
    await form.locator("select[name=replaces]").select_option(ada)
    await form.locator("input[name=from]").fill(local_input(now + timedelta(hours=2)))
    await form.locator("input[name=to]").fill(local_input(now - timedelta(hours=1)))
    await form.locator("button[type=submit]").click()
    errors = page.locator(f"[data-errors-for='override:{covered}']")
    await expect(errors).to_contain_text("after")
    await expect(on_now).to_have_text("Dr. Ada Oncall")

    # Cy stands in for Ada from an hour ago for three hours: on call now, listed, removable
    form = page.locator(f"[data-schedule-id='{covered}'] form.add-override")
    await form.locator("select[name=clinician_id]").select_option(cy)
    await form.locator("select[name=replaces]").select_option(ada)
    await form.locator("input[name=from]").fill(local_input(now - timedelta(hours=1)))
    await form.locator("input[name=to]").fill(local_input(now + timedelta(hours=2)))
    await form.locator("button[type=submit]").click()
    await expect(page.locator(".message.ok")).to_contain_text(f"Override added to {covered}")
    await expect(on_now).to_have_text("Dr. Cy Standin")
    override = page.locator(f"[data-schedule-id='{covered}'] [data-override-id]")
    await expect(override).to_contain_text("Dr. Cy Standin for Dr. Ada Oncall")
    await page.screenshot(path=str(SHOTS / "dashboard-oncall-override.png"), full_page=True)

    await override.locator("button").click()
    await expect(override).to_have_count(0)
    await expect(on_now).to_have_text("Dr. Ada Oncall")

    # a new clinician from the form, then a schedule edit naming nobody known: the 422
    # names the field beside the form, and the schedule is unchanged
    dee = uid("c")
    new = page.locator("form.put-clinician.new")
    await page.locator("details:has(form.put-clinician.new) > summary").click()
    await new.locator("input[name=clinician_id]").fill(dee)
    await new.locator("input[name=name]").fill("Dr. Dee New")
    await new.locator("input[name=timezone]").fill("Europe/Berlin")
    await new.locator("textarea[name=contact_methods]").fill("cell sms +15555550199")
    await new.locator("textarea[name=notification_rules]").fill("cell 0")
    await new.locator("button[type=submit]").click()
    await expect(page.locator(f"tr[data-clinician-id='{dee}']")).to_contain_text("+15555550199")

    edit = page.locator(f"[data-schedule-id='{covered}'] form.put-schedule")
    await page.locator(f"[data-schedule-id='{covered}'] details > summary").click()
    await edit.locator("textarea[name=rotations]").fill("c-nobody-known daily 09:00 2026-01-01")
    await edit.locator("button[type=submit]").click()
    refused = page.locator(f"[data-errors-for='schedule:{covered}']")
    await expect(refused).to_contain_text("rotations[0].participants[0]")
    await expect(on_now).to_have_text("Dr. Ada Oncall")


async def test_a_viewer_sees_the_page_without_any_form(
    dashboard: str, alerts: AlertsStack, browser: Browser
) -> None:
    async with httpx.AsyncClient(base_url=alerts.url, timeout=30) as http:
        ada = await clinician(http, "Dr. Ada Viewed")
        sched = uid("sched")
        await put(http, f"/v1/schedules/{sched}", daily([ada], datetime.now(UTC) - timedelta(2)))
        site = uid("site")
        tiers = [{"targets": [{"schedule_id": sched}], "escalate_after_s": 600}]
        await put(http, f"/v1/sites/{site}/oncall", {"tiers": tiers})

    page = await signed_in(browser, dashboard, "viewer")
    await page.goto(f"{dashboard}/oncall?sites={site}")
    on_now = page.locator(f"[data-site-id='{site}'] tr[data-tier='1'] td.on-now")
    await expect(on_now).to_have_text("Dr. Ada Viewed")
    await expect(page.locator(f"tr[data-clinician-id='{ada}']")).to_be_visible()
    await expect(page.locator("form")).to_have_count(0)
    # and the edit routes refuse a viewer even when called directly
    r = await page.request.post(
        f"{dashboard}/actions/oncall/schedules/{sched}/overrides",
        form={"clinician_id": ada, "from": "2030-01-01T00:00", "to": "2030-01-02T00:00"},
        headers={"HX-Request": "true"},
    )
    assert r.status == 403
