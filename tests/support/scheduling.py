"""Scheduling helpers for tests: a site, a patient's appointments, an induction series."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.eventually import eventually
from tools.factories import intake_body

WEEK = {d: ["08:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


def site_body(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Downtown",
        "timezone": "America/New_York",
        "hours": WEEK,
        "treatment_rooms": 2,
        "therapists": 2,
    }
    body.update(kw)
    return body


async def new_site(sched: httpx.AsyncClient, **kw: Any) -> str:
    site_id = f"site-{uuid.uuid4().hex[:8]}"
    r = await sched.put(f"/v1/sites/{site_id}", json=site_body(**kw))
    assert r.status_code == 200, r.text
    return site_id


async def appointments(sched: httpx.AsyncClient, pid: str) -> list[dict[str, Any]]:
    r = await sched.get(f"/v1/patients/{pid}/appointments")
    assert r.status_code == 200
    result: list[dict[str, Any]] = r.json()
    return result


async def induction(
    sched: httpx.AsyncClient, intake_http: httpx.AsyncClient
) -> tuple[str, list[dict[str, Any]]]:
    """A new site and an eligible patient there; (patient id, the proposed series)."""
    site_id = await new_site(sched)
    body = intake_body(site_id=site_id)
    pid = body["patient"]["patient_id"]
    assert (await intake_http.post("/v1/intakes", json=body)).status_code == 201
    appts = await eventually(
        lambda: appointments(sched, pid), lambda a: len(a) == 12, what="series"
    )
    return pid, appts
