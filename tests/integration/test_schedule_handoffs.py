"""A schedule's handoffs over HTTP (``GET /v1/schedules/{id}/handoffs``, the dashboard's
on-call page reads it): each instant who is on call changes, from the rotation's handoffs
and from an override's edges, in the schedule's own zone."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.stack import AlertsStack

pytestmark = pytest.mark.integration

NY = ZoneInfo("America/New_York")


@pytest.fixture
async def api(alerts: AlertsStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=alerts.url, timeout=30) as client:
        yield client


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def clinician(api: httpx.AsyncClient, name: str) -> str:
    cid = uid("c")
    body = {
        "name": name,
        "timezone": "America/New_York",
        "contact_methods": [{"id": "mail", "type": "email", "address": f"{cid}@clinic.example"}],
        "notification_rules": [{"contact_method": "mail", "after_s": 0}],
    }
    r = await api.put(f"/v1/clinicians/{cid}", json=body)
    assert r.status_code == 200, r.text
    return cid


async def test_handoffs_list_each_change_of_who_is_on_call_in_the_window(
    api: httpx.AsyncClient,
) -> None:
    a, b, c = [await clinician(api, n) for n in ("Dr. A", "Dr. B", "Dr. C")]
    sid = uid("sched")
    start = date(2027, 3, 1)  # daily at 09:00 New York, across the DST change of 14 March
    schedule = {
        "name": "Daily",
        "timezone": "America/New_York",
        "rotations": [
            {"participants": [a, b], "shift": "daily", "handoff": "09:00", "start": str(start)}
        ],
    }
    assert (await api.put(f"/v1/schedules/{sid}", json=schedule)).status_code == 200
    frm = datetime.combine(date(2027, 3, 13), time(12), NY)
    to = datetime.combine(date(2027, 3, 16), time(0), NY)
    r = await api.get(
        f"/v1/schedules/{sid}/handoffs", params={"from": frm.isoformat(), "to": to.isoformat()}
    )
    assert r.status_code == 200, r.text
    got = [
        (datetime.fromisoformat(h["at"]).astimezone(NY), h["before"], h["after"]) for h in r.json()
    ]
    # the shift starting 09:00 on 13 March is the 13th (a's turn); each 09:00 local, DST or not
    assert [(t.date(), t.time()) for t, _, _ in got] == [
        (date(2027, 3, d), time(9)) for d in (14, 15)
    ]
    assert [(x, y) for _, x, y in got] == [([a], [b]), ([b], [a])]

    # an override standing in for a on the 15th from 12:00 to 18:00: two more changes
    o_from = datetime.combine(date(2027, 3, 15), time(12), NY)
    o_to = o_from + timedelta(hours=6)
    body = {"from": o_from.isoformat(), "to": o_to.isoformat(), "clinician_id": c, "replaces": a}
    assert (await api.post(f"/v1/schedules/{sid}/overrides", json=body)).status_code == 201
    r = await api.get(
        f"/v1/schedules/{sid}/handoffs", params={"from": frm.isoformat(), "to": to.isoformat()}
    )
    changes = [(datetime.fromisoformat(h["at"]), h["before"], h["after"]) for h in r.json()]
    assert changes[2:] == [(o_from, [a], [c]), (o_to, [c], [a])]


async def test_handoffs_default_to_the_next_seven_days(api: httpx.AsyncClient) -> None:
    a, b = [await clinician(api, n) for n in ("Dr. A", "Dr. B")]
    sid = uid("sched")
    schedule = {
        "name": "Daily",
        "timezone": "UTC",
        "rotations": [
            {
                "participants": [a, b],
                "shift": "daily",
                "handoff": "09:00",
                "start": str(date.today() - timedelta(days=3)),
            }
        ],
    }
    assert (await api.put(f"/v1/schedules/{sid}", json=schedule)).status_code == 200
    r = await api.get(f"/v1/schedules/{sid}/handoffs")
    assert r.status_code == 200, r.text
    assert len(r.json()) == 7  # one handoff a day


async def test_an_unknown_schedule_is_404_and_a_bad_instant_422(api: httpx.AsyncClient) -> None:
    assert (await api.get(f"/v1/schedules/{uid('nobody')}/handoffs")).status_code == 404
    r = await api.get(f"/v1/schedules/{uid('s')}/handoffs", params={"from": "yesterday"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"].endswith("from")
