"""Access control on the real services: bearer tokens with roles from API_TOKENS_FILE,
401/403 that change nothing, and an audit trail only clinicians can read."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shared.auth import digest
from tests.support.fhir import valid
from tests.support.stack import (
    ARTIFACTS,
    IntakeStack,
    ServiceProcess,
    free_port,
    service_env,
    wait_ready,
)
from tools.factories import intake_body

pytestmark = pytest.mark.integration

TOKENS = {"front-desk": ["intake"], "dr-who": ["clinician"], "wall-screen": ["viewer"]}


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer token-of-{name}-{RUN}"}


RUN = uuid.uuid4().hex[:8]


@dataclass
class Guarded:
    intake: str
    alerts: str
    tokens: Path


@pytest.fixture(scope="module")
async def guarded(database: str, intake: IntakeStack) -> AsyncIterator[Guarded]:
    """A second intake API and an alerts API on the session's database, with tokens."""
    ARTIFACTS.mkdir(exist_ok=True)
    tokens = ARTIFACTS / f"tokens-{RUN}.json"
    tokens.write_text(
        json.dumps(
            {
                "tokens": [
                    {"name": n, "roles": r, "sha256": digest(f"token-of-{n}-{RUN}").hex()}
                    for n, r in TOKENS.items()
                ]
            }
        )
    )
    procs: list[ServiceProcess] = []
    urls = []
    for svc in ("intake", "alerts"):
        port = free_port()
        env = service_env(
            database, **{f"{svc.upper()}_PORT": str(port)}, API_TOKENS_FILE=str(tokens)
        )
        p = ServiceProcess(
            f"{svc}-guarded",
            [f"services.{svc}", "api"],
            env,
            ARTIFACTS / "logs" / f"{svc}-guarded-{RUN}.log",
        )
        p.start()
        procs.append(p)
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url, p)  # ops endpoints need no token
        urls.append(url)
    yield Guarded(urls[0], urls[1], tokens)
    for p in procs:
        p.kill(signal.SIGTERM)


async def test_no_token_or_a_bad_one_is_401_and_stores_nothing(guarded: Guarded) -> None:
    async with httpx.AsyncClient(base_url=guarded.intake, timeout=10) as c:
        body = intake_body()
        r = await c.post("/v1/intakes", json=body)
        assert r.status_code == 401
        assert r.json()["error"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = await c.post("/v1/intakes", json=body, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
        got = await c.get(f"/v1/intakes/{body['intake_id']}", headers=bearer("dr-who"))
        assert got.status_code == 404
        assert (await c.get("/metrics")).status_code == 200


async def test_a_role_that_does_not_allow_the_call_is_403_and_stores_nothing(
    guarded: Guarded,
) -> None:
    async with httpx.AsyncClient(base_url=guarded.intake, timeout=10) as c:
        body = intake_body()
        r = await c.post("/v1/intakes", json=body, headers=bearer("wall-screen"))
        assert r.status_code == 403
        assert "wall-screen" in r.json()["detail"]
        assert (
            await c.get(f"/v1/intakes/{body['intake_id']}", headers=bearer("dr-who"))
        ).status_code == 404
        r = await c.post("/v1/intakes", json=body, headers=bearer("front-desk"))
        assert r.status_code == 201
        # reading is open to every role
        assert (
            await c.get(f"/v1/intakes/{body['intake_id']}", headers=bearer("wall-screen"))
        ).status_code == 200
        # the front desk cannot approve a review
        r = await c.post(
            f"/v1/intakes/{body['intake_id']}/approve",
            json={"by": "x"},
            headers=bearer("front-desk"),
        )
        assert r.status_code == 403


async def test_every_change_is_audited_and_only_clinicians_read_the_trail(guarded: Guarded) -> None:
    site_id = f"site-{uuid.uuid4().hex[:8]}"
    oncall = {"tiers": [{"recipients": [{"name": "Dr. A", "webhook_url": "http://127.0.0.1:9/p"}]}]}
    async with httpx.AsyncClient(base_url=guarded.alerts, timeout=10) as c:
        r = await c.put(f"/v1/sites/{site_id}/oncall", json=oncall, headers=bearer("front-desk"))
        assert r.status_code == 403
        r = await c.put(f"/v1/sites/{site_id}/oncall", json=oncall, headers=bearer("dr-who"))
        assert r.status_code == 200
        assert (await c.get("/v1/audit", headers=bearer("wall-screen"))).status_code == 403
        trail = (await c.get("/v1/audit", headers=bearer("dr-who"))).json()
    mine = [e for e in trail if e["path_params"].get("site_id") == site_id]
    assert len(mine) == 1  # the refused call left no trace but the log line
    entry = mine[0]
    assert entry["actor"] == "dr-who"
    assert entry["method"] == "PUT"
    assert entry["route"] == "/v1/sites/{site_id}/oncall"
    assert entry["status"] == 200
    assert "Dr. A" not in json.dumps(entry)  # ids only, never a body


async def test_the_intake_audit_names_the_new_intake(guarded: Guarded) -> None:
    async with httpx.AsyncClient(base_url=guarded.intake, timeout=10) as c:
        body = intake_body()
        assert (
            await c.post("/v1/intakes", json=body, headers=bearer("front-desk"))
        ).status_code == 201
        trail = (
            await c.get("/v1/audit", params={"actor": "front-desk"}, headers=bearer("dr-who"))
        ).json()
    [entry] = [e for e in trail if e["path_params"].get("intake_id") == body["intake_id"]]
    assert entry["route"] == "/v1/intakes"
    assert entry["path_params"]["patient_id"] == body["patient"]["patient_id"]
    for phi in (body["patient"]["name"], body["patient"]["email"]):
        assert phi not in json.dumps(trail)


async def test_the_dashboard_asks_for_a_token_and_acts_with_it(
    database: str, guarded: Guarded
) -> None:
    from playwright.async_api import async_playwright, expect

    from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, start_dashboard

    url, proc = await start_dashboard(
        database,
        INTAKE_URL=guarded.intake,
        ALERTS_URL=guarded.alerts,
        SCHEDULING_URL=f"http://127.0.0.1:{free_port()}",
        API_TOKENS_FILE=str(guarded.tokens),
    )
    try:
        async with httpx.AsyncClient(timeout=10) as c:
            r = await c.get(f"{url}/partials/board", headers={"HX-Request": "true"})
            assert r.status_code == 401
            assert r.headers["HX-Redirect"].startswith("/signin")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page()
            await page.goto(url)
            await expect(page).to_have_url(f"{url}/signin?next=%2F")
            await page.fill("#token", "not-a-token")
            await page.click("button[type=submit]")
            await expect(page.locator(".message.error")).to_contain_text("not valid")
            await page.fill("#token", f"token-of-wall-screen-{RUN}")
            await page.click("button[type=submit]")
            await expect(page).to_have_url(f"{url}/")
            # the board came from the alerts API with the viewer's token (not "down")
            await expect(page.locator("#board table.board")).to_be_visible()
            await expect(page.locator("[data-down='alerts']")).to_have_count(0)
            await browser.close()
    finally:
        proc.kill(signal.SIGTERM)


async def test_the_fhir_facade_is_for_clinicians_and_refuses_with_operation_outcomes(
    guarded: Guarded,
) -> None:
    async with httpx.AsyncClient(base_url=guarded.intake, timeout=10) as c:
        body = intake_body()
        pid = body["patient"]["patient_id"]
        assert (
            await c.post("/v1/intakes", json=body, headers=bearer("front-desk"))
        ).status_code == 201
        for path in (f"/fhir/r4/Observation?patient={pid}", f"/fhir/r4/Patient/{pid}"):
            r = await c.get(path)
            assert r.status_code == 401
            assert r.headers["content-type"] == "application/fhir+json"
            assert valid(r.json())["issue"][0]["code"] == "login"
            for who in ("front-desk", "wall-screen"):  # reads need the clinician role here
                r = await c.get(path, headers=bearer(who))
                assert r.status_code == 403
                assert valid(r.json())["issue"][0]["code"] == "forbidden"
                assert body["patient"]["name"] not in r.text
            r = await c.get(path, headers=bearer("dr-who"))
            assert r.status_code == 200
            assert valid(r.json())["resourceType"] in ("Bundle", "Patient")
        # the read of the PHI is in the audit trail, by whom, the refused ones are not
        trail = (await c.get("/v1/audit", headers=bearer("dr-who"))).json()
        reads = [e for e in trail if e["path_params"].get("fhir_id") == pid]
        assert [(e["actor"], e["method"], e["route"]) for e in reads] == [
            ("dr-who", "GET", "/fhir/r4/Patient/{fhir_id}")
        ]
        # the CapabilityStatement is open, as FHIR clients read it before signing in
        r = await c.get("/fhir/r4/metadata")
        assert r.status_code == 200
        assert valid(r.json())["resourceType"] == "CapabilityStatement"
    async with httpx.AsyncClient(base_url=guarded.alerts, timeout=10) as c:
        r = await c.get(f"/fhir/r4/Flag?patient={pid}", headers=bearer("wall-screen"))
        assert r.status_code == 403
        r = await c.get(f"/fhir/r4/Flag?patient={pid}", headers=bearer("dr-who"))
        assert r.status_code == 200
        assert valid(r.json())["total"] == 0
