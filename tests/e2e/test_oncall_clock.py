"""On-call rotations through the shared test clock (tests/support/clocked.py): a daily
09:00 handoff in New York across the spring-forward change, an override, the notice an
hour before a shift and the handoff digest when it starts, each seen as the texts the
clinicians get at the local Twilio (tools/fake_twilio).

The clock moves to the next daylight-saving change in New York (up to a year ahead), so
this module runs after every other test of the clocked stack (``clock_jump``,
tests/conftest.py).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.alerts import SUICIDAL
from tests.support.clocked import ClockedStack
from tools.factories import checkin_body, intake_body
from tools.fake_twilio import FakeTwilio

pytestmark = [pytest.mark.integration, pytest.mark.clock_jump]

NY = ZoneInfo("America/New_York")


def next_spring_forward(after: datetime) -> date:
    """The next local date on which New York's clocks go forward."""
    day = after.astimezone(NY).date() + timedelta(days=1)
    for _ in range(400):
        before = datetime.combine(day, time(0), NY).utcoffset()
        after_ = datetime.combine(day, time(12), NY).utcoffset()
        assert before is not None
        assert after_ is not None
        if after_ > before:
            return day
        day += timedelta(days=1)
    raise AssertionError("no daylight-saving change within 400 days")


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), NY)


def phone() -> str:
    return f"+1202555{uuid.uuid4().int % 10000:04d}"


async def clinician(alerts: httpx.AsyncClient, name: str, number: str) -> str:
    cid = f"c-{uuid.uuid4().hex[:8]}"
    r = await alerts.put(
        f"/v1/clinicians/{cid}",
        json={
            "name": name,
            "timezone": "America/New_York",
            "contact_methods": [{"id": "cell", "type": "sms", "address": number}],
            "notification_rules": [{"contact_method": "cell", "after_s": 0}],
        },
    )
    assert r.status_code == 200, r.text
    return cid


async def suicidal_checkin(clocked: ClockedStack, intake: httpx.AsyncClient, site_id: str) -> str:
    now = await clocked.now()
    body = intake_body(site_id=site_id, submitted_at=(now - timedelta(minutes=1)).isoformat())
    r = await intake.post("/v1/intakes", json=body)
    assert r.status_code == 201, r.text
    pid: str = body["patient"]["patient_id"]
    c = checkin_body(pid, SUICIDAL, suicidal_ideation=True, submitted_at=now.isoformat())
    r = await intake.post("/v1/checkins", json=c)
    assert r.status_code == 202, r.text
    return pid


async def test_a_0900_handoff_stays_0900_across_spring_forward_with_overrides_and_notices(
    clocked: ClockedStack, fake_twilio: FakeTwilio
) -> None:
    async with clocked.client("alerts") as alerts, clocked.client("intake") as intake:
        change = next_spring_forward(await clocked.now())
        a_phone, b_phone, c_phone = phone(), phone(), phone()
        a = await clinician(alerts, "Dr. A", a_phone)
        b = await clinician(alerts, "Dr. B", b_phone)
        c = await clinician(alerts, "Dr. C", c_phone)
        sid = f"s-{uuid.uuid4().hex[:8]}"
        # daily from two days before the change: A, B, then A again on the change's day
        r = await alerts.put(
            f"/v1/schedules/{sid}",
            json={
                "name": "NY psychiatry",
                "timezone": "America/New_York",
                "rotations": [
                    {
                        "participants": [a, b],
                        "shift": "daily",
                        "handoff": "09:00",
                        "start": (change - timedelta(days=2)).isoformat(),
                    }
                ],
            },
        )
        assert r.status_code == 200, r.text
        site_id = f"site-{uuid.uuid4().hex[:8]}"
        r = await alerts.put(
            f"/v1/sites/{site_id}/oncall",
            json={"tiers": [{"targets": [{"schedule_id": sid}], "escalate_after_s": 86400}]},
        )
        assert r.status_code == 200, r.text

        # the day of the change, 08:05 EDT: B is on (since yesterday 09:00 EST); A is told
        # an hour ahead that their shift starts at 09:00
        await clocked.advance_to(local(change, 8, 5), margin=timedelta(0))
        upcoming = await fake_twilio.wait_for(
            lambda m: m.to == a_phone and "starts" in m.body, timeout=30
        )
        assert "09:00" in upcoming.body
        first_pid = await suicidal_checkin(clocked, intake, site_id)
        to_b = await fake_twilio.wait_for(
            lambda m: m.to == b_phone and "suicide_risk" in m.body, timeout=30
        )
        assert site_id in to_b.body

        # 09:10 EDT: A took over at 09:00 local (a 23-hour shift for B), not at 10:00
        # EDT, which is 24 hours after B's handoff; A's digest names the open alert
        await clocked.advance_to(local(change, 9, 10), margin=timedelta(0))
        on = (await alerts.get(f"/v1/schedules/{sid}/oncall")).json()["clinician_ids"]
        assert on == [a]
        digest = await fake_twilio.wait_for(
            lambda m: m.to == a_phone and "has started" in m.body, timeout=30
        )
        (first,) = (await alerts.get("/v1/alerts", params={"patient_id": first_pid})).json()
        assert first["alert_id"][:8] in digest.body
        await suicidal_checkin(clocked, intake, site_id)
        await fake_twilio.wait_for(
            lambda m: m.to == a_phone and "suicide_risk" in m.body, timeout=30
        )

        # an override: C stands in for A over lunch, and is paged then
        r = await alerts.post(
            f"/v1/schedules/{sid}/overrides",
            json={
                "from": local(change, 12).isoformat(),
                "to": local(change, 13).isoformat(),
                "clinician_id": c,
                "replaces": a,
            },
        )
        assert r.status_code == 201, r.text
        await clocked.advance_to(local(change, 12, 15), margin=timedelta(0))
        await suicidal_checkin(clocked, intake, site_id)
        to_c = await fake_twilio.wait_for(
            lambda m: m.to == c_phone and "suicide_risk" in m.body, timeout=30
        )
        assert to_c.from_
        pages_to_a = [m for m in fake_twilio.messages(to=a_phone) if "Reply " in m.body]
        assert len(pages_to_a) == 1  # the 09:10 page only (not the digest, not the notice)
