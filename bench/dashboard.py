"""Dashboard figures: each page's first render (server time) with the demo network plus
2,000 extra patients and their ~24,000 appointments, all loaded through the public APIs."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg

from bench.load import line
from bench.stack import stack
from shared.db import connect_kwargs
from tools import demo
from tools.factories import intake_body

WEEK = {d: ["07:00", "21:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}


async def _load(urls: dict[str, str], patients: int) -> tuple[int, list[str]]:
    """Two large extra sites and ``patients`` eligible intakes there (at ~80/s, what the
    scheduling worker sustains); returns (appointments booked, patient ids)."""
    sites = ["bench-east", "bench-west"]
    pids: list[str] = []
    async with aiohttp.ClientSession() as s:
        for site_id, tz in zip(sites, ("America/New_York", "America/Los_Angeles"), strict=True):
            body = {
                "name": site_id,
                "timezone": tz,
                "hours": WEEK,
                "treatment_rooms": 40,
                "therapists": 30,
            }
            async with s.put(f"{urls['scheduling']}/v1/sites/{site_id}", json=body) as r:
                assert r.status == 200, await r.text()
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            body = intake_body(site_id=sites[i % 2])
            pids.append(body["patient"]["patient_id"])
            async with sem, s.post(f"{urls['intake']}/v1/intakes", json=body) as r:
                assert r.status == 201, await r.text()
            await asyncio.sleep(0)

        start = time.monotonic()
        for i in range(patients):
            await one(i)
            lag = start + (i + 1) / 80 - time.monotonic()
            if lag > 0:
                await asyncio.sleep(lag)
        # wait until the worker has proposed every series (or waitlisted the patient)
        deadline = time.monotonic() + 300
        booked = 0
        while time.monotonic() < deadline:
            booked = 0
            for site_id in sites:
                async with s.get(
                    f"{urls['scheduling']}/v1/sites/{site_id}/schedule",
                    params={"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
                ) as r:
                    booked += len(await r.json())
            async with s.get(f"{urls['scheduling']}/v1/waitlist") as r:
                waiting = len(await r.json())
            if booked + waiting * 12 >= patients * 12:
                break
            await asyncio.sleep(1.0)
    return booked, pids


async def _render(url: str, n: int) -> list[float]:
    out = []
    async with aiohttp.ClientSession() as s:
        for _ in range(n):
            t = time.perf_counter()
            async with s.get(url) as r:
                await r.read()
                assert r.status == 200, url
            out.append(time.perf_counter() - t)
    return out


async def section(patients: int, n: int) -> None:
    print(f"Dashboard: first render of each page, demo network + {patients:,} patients")
    # the demo network moves the stack's clock (tools/demo/), so this stack has one
    services = ("intake", "scheduling", "alerts", "dashboard")
    async with stack(services, env_extra={"DEV_CLOCK": "1"}) as st:
        u = st.urls
        summary = await demo.main(u["intake"], u["scheduling"], u["alerts"], echo=lambda _: None)
        booked, pids = await _load(u, patients)
        # A bulk load in seconds outruns autovacuum: refresh the planner's statistics as it
        # would a moment later, so the figures are the pages', not the stale plans'.
        db = await asyncpg.connect(st.dsn, **connect_kwargs(st.dsn))
        try:
            await db.execute("ANALYZE")
        finally:
            await db.close()
        print(
            f"  loaded: demo ({len(summary.outcomes)} patients) + {patients:,} intakes, "
            f"{booked:,} appointments at the two extra sites (then ANALYZE)"
        )
        async with (
            aiohttp.ClientSession() as s,
            s.get(
                f"{u['scheduling']}/v1/sites/bench-east/schedule",
                params={"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
            ) as r,
        ):
            appts: list[dict[str, Any]] = await r.json()
        # the busiest week of the busiest site
        weeks = Counter(
            datetime.fromisoformat(a["start"]).astimezone(UTC).date().isocalendar()[:2]
            for a in appts
        )
        (year, week), count = weeks.most_common(1)[0]
        monday = datetime.fromisocalendar(year, week, 1).date()
        web = u["dashboard"]
        pages = {
            "network overview  /": f"{web}/",
            "alerts board      /partials/board": f"{web}/partials/board",
            f"site week ({count} appts) /sites/…": f"{web}/sites/bench-east?week={monday}",
            "patient           /patients/…": f"{web}/patients/{pids[0]}",
        }
        for label, url in pages.items():
            await _render(url, 3)  # warm-up: connections, template compilation
            lat = await _render(url, n)
            line(label, lat, "(goal p99 < 150 ms)")
