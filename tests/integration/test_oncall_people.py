"""On-call people on the real stack (docs/domain.md "On-call people"): clinicians paged by
SMS through a local Twilio (tools/fake_twilio) and by e-mail through a local SMTP server
(tools/mail_sink), schedules and overrides, quiet hours, acknowledging from the page (the
one-use link, the SMS reply code) and the one notice each other person paged gets.

The session's alerts stack (tests/support/stack.py ``alerts``) texts and mails through the
session's ``fake_twilio`` and ``mail_sink``; tiers escalate after 2 s there.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from shared.events import CheckinAssessment, CheckinRecorded, new_event
from tests.support.alerts import SUICIDAL, alerts_of, checkin, new_patient, publish
from tests.support.eventually import eventually
from tests.support.stack import STAFF_NUMBER, AlertsStack
from tools.fake_twilio import FakeTwilio
from tools.mail_sink import MailSink
from tools.page_receiver import PageReceiver

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(alerts: AlertsStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=alerts.url, timeout=30) as client:
        yield client


@pytest.fixture
async def receiver(alerts: AlertsStack) -> AsyncIterator[PageReceiver]:
    async with PageReceiver(signing_secret=alerts.knobs["PAGE_SIGNING_SECRET"]) as r:
        yield r


def phone() -> str:
    """A fresh US number in the 555-01xx fiction range's neighbourhood, E.164."""
    return f"+1202555{uuid.uuid4().int % 10000:04d}"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def clinician(
    api: httpx.AsyncClient,
    *,
    name: str,
    sms: str | None = None,
    email: str | None = None,
    webhook: str | None = None,
    rules: list[tuple[str, int]] | None = None,
    quiet: tuple[str, str] | None = None,
    tz: str = "America/New_York",
) -> str:
    cid = uid("c")
    methods = []
    if sms:
        methods.append({"id": "cell", "type": "sms", "address": sms})
    if email:
        methods.append({"id": "mail", "type": "email", "address": email})
    if webhook:
        methods.append({"id": "hook", "type": "webhook", "address": webhook})
    body = {
        "name": name,
        "timezone": tz,
        "contact_methods": methods,
        "notification_rules": [
            {"contact_method": m, "after_s": s}
            for m, s in (rules or [(m["id"], 0) for m in methods])
        ],
        "quiet_hours": {"start": quiet[0], "end": quiet[1]} if quiet else None,
    }
    r = await api.put(f"/v1/clinicians/{cid}", json=body)
    assert r.status_code == 200, r.text
    return cid


async def site_with(api: httpx.AsyncClient, *tiers: dict[str, Any]) -> str:
    site_id = uid("site")
    r = await api.put(f"/v1/sites/{site_id}/oncall", json={"tiers": list(tiers)})
    assert r.status_code == 200, r.text
    return site_id


def code_of(text: str) -> str:
    found = re.search(r"Reply (\d+a) ", text)
    assert found, text
    return found.group(1)


def link_of(text: str) -> str:
    found = re.search(r"(http://\S+/v1/ack/\S+)", text)
    assert found, text
    return found.group(1)


async def worsening(pid: str, site_id: str) -> None:
    """A check-in that meets the worsening rule (a high alert), straight onto the topic."""
    at = datetime.now(UTC)
    payload = CheckinRecorded(
        checkin_id=str(uuid.uuid4()),
        patient_id=pid,
        site_id=site_id,
        submitted_at=at,
        phq9_total=22,
        phq9_item9_positive=False,
        suicidal_ideation=False,
        assessment=CheckinAssessment(
            response=False,
            remission=False,
            worsening=True,
            worsening_reasons=("phq9 total up 8 from its lowest",),
            baseline_total=20,
            lowest_total=14,
        ),
    )
    await publish(new_event(payload, source="tests", subject=pid, time=at))


# --- bad input -----------------------------------------------------------------------------


async def test_bad_people_are_refused_naming_the_field_and_nothing_is_stored(
    api: httpx.AsyncClient,
) -> None:
    good: dict[str, Any] = {
        "name": "Dr. Rivera",
        "timezone": "America/New_York",
        "contact_methods": [{"id": "cell", "type": "sms", "address": "+12025550123"}],
        "notification_rules": [{"contact_method": "cell", "after_s": 0}],
    }
    cid = uid("c")
    bad_people: list[tuple[dict[str, Any], str]] = [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        (
            {"contact_methods": [{"id": "cell", "type": "sms", "address": "202-555-0123"}]},
            "contact_methods[0].address",
        ),
        (
            {"contact_methods": [{"id": "cell", "type": "sms", "address": "+1202"}]},
            "contact_methods[0].address",
        ),
        (
            {"contact_methods": [{"id": "cell", "type": "email", "address": "not-an-address"}]},
            "contact_methods[0].address",
        ),
        (
            {"contact_methods": [{"id": "cell", "type": "webhook", "address": "ftp://x/y"}]},
            "contact_methods[0].address",
        ),
        (
            {"notification_rules": [{"contact_method": "pager", "after_s": 0}]},
            "notification_rules[0].contact_method",
        ),
        ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "quiet_hours.end"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours.start"),
    ]
    for change, field in bad_people:
        r = await api.put(f"/v1/clinicians/{cid}", json={**good, **change})
        assert r.status_code == 422, (change, r.text)
        assert field in {e["field"] for e in r.json()["errors"]}, (field, r.json())
    assert (await api.get(f"/v1/clinicians/{cid}")).status_code == 404
    r = await api.put(f"/v1/clinicians/{cid}", json=good)
    assert r.status_code == 200, r.text
    assert r.json()["contact_methods"][0]["address"] == "+12025550123"

    sid = uid("s")
    rotation: dict[str, Any] = {
        "participants": [cid],
        "shift": "daily",
        "handoff": "09:00",
        "start": "2026-12-01",
    }
    schedule: dict[str, Any] = {
        "name": "Psychiatry",
        "timezone": "America/New_York",
        "rotations": [rotation],
    }
    bad_schedules: list[tuple[dict[str, Any], str]] = [
        ({"rotations": [{**rotation, "participants": []}]}, "rotations[0].participants"),
        (
            {"rotations": [{**rotation, "participants": [cid, "c-nobody"]}]},
            "rotations[0].participants[1]",
        ),
        ({"rotations": [{**rotation, "handoff": "9am"}]}, "rotations[0].handoff"),
        ({"rotations": [{**rotation, "shift": "hourly"}]}, "rotations[0].shift"),
        ({"timezone": "EST5"}, "timezone"),
    ]
    for change, field in bad_schedules:
        r = await api.put(f"/v1/schedules/{sid}", json={**schedule, **change})
        assert r.status_code == 422, (change, r.text)
        assert field in {e["field"] for e in r.json()["errors"]}, (field, r.json())
    assert (await api.get(f"/v1/schedules/{sid}")).status_code == 404
    assert (await api.put(f"/v1/schedules/{sid}", json=schedule)).status_code == 200

    window = {"from": "2026-12-24T17:00:00-05:00", "to": "2026-12-24T17:00:00-05:00"}
    r = await api.post(
        f"/v1/schedules/{sid}/overrides", json={**window, "clinician_id": cid, "replaces": None}
    )
    assert r.status_code == 422
    assert "to" in {e["field"] for e in r.json()["errors"]}
    ok_window = {**window, "to": "2026-12-25T09:00:00-05:00"}
    r = await api.post(
        f"/v1/schedules/{sid}/overrides", json={**ok_window, "clinician_id": "c-nobody"}
    )
    assert r.status_code == 422
    assert "clinician_id" in {e["field"] for e in r.json()["errors"]}
    assert (await api.get(f"/v1/schedules/{sid}")).json()["overrides"] == []

    site_id = uid("site")
    for tier, field in [
        ({"targets": [{"schedule_id": "s-nobody"}]}, "tiers[0].targets[0].schedule_id"),
        ({"targets": [{"clinician_id": "c-nobody"}]}, "tiers[0].targets[0].clinician_id"),
        ({"targets": []}, "tiers[0].recipients"),
    ]:
        r = await api.put(f"/v1/sites/{site_id}/oncall", json={"tiers": [tier]})
        assert r.status_code == 422, (tier, r.text)
        assert field in {e["field"] for e in r.json()["errors"]}, (field, r.json())
    assert (await api.get(f"/v1/sites/{site_id}/oncall")).status_code == 404


# --- paging people --------------------------------------------------------------------------


async def test_sms_reply_code_acknowledges_and_each_other_person_gets_one_notice(
    api: httpx.AsyncClient,
    intake_http: httpx.AsyncClient,
    alerts: AlertsStack,
    fake_twilio: FakeTwilio,
    mail_sink: MailSink,
    receiver: PageReceiver,
) -> None:
    rivera_phone, chen_mail = phone(), f"{uid('chen')}@clinic.example.org"
    rivera = await clinician(api, name="Dr. Rivera", sms=rivera_phone)
    chen = await clinician(api, name="Dr. Chen", email=chen_mail)
    site_id = await site_with(
        api,
        {
            "targets": [{"clinician_id": rivera}, {"clinician_id": chen}],
            "recipients": [{"name": "Site desk", "webhook_url": receiver.url("/desk")}],
            "escalate_after_s": 3600,
        },
    )
    pid, _ = await new_patient(intake_http, site_id)
    await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)

    text = await fake_twilio.wait_for(to=rivera_phone, timeout=10)
    assert text.from_ == STAFF_NUMBER
    assert "suicide_risk" in text.body
    assert site_id in text.body
    mail = await mail_sink.wait_for(to=chen_mail, timeout=10)
    assert "suicide_risk" in mail.subject
    desk = await receiver.wait_for_request(lambda r: r.path == "/desk", timeout=10, what="desk")
    assert desk.json["ack_url"].startswith(alerts.url + "/v1/ack/")
    (alert,) = await alerts_of(api, pid)

    # a reply with a bad signature, from an unknown number, or with a code of nobody's:
    # a 403 or a polite answer, and nothing changes
    inbound = alerts.url + "/v1/sms/inbound"
    code = code_of(text.body)
    bad = await fake_twilio.reply(inbound, rivera_phone, STAFF_NUMBER, code, sign=False)
    assert bad.status_code == 403
    stranger = await fake_twilio.reply(inbound, phone(), STAFF_NUMBER, code)
    assert stranger.status_code == 200
    assert "not on an on-call roster" in stranger.text
    wrong = await fake_twilio.reply(inbound, rivera_phone, STAFF_NUMBER, "hello")
    assert wrong.status_code == 200
    assert "reply with its code" in wrong.text
    assert (await alerts_of(api, pid))[0]["status"] == "open"

    # the code from Dr. Rivera's number acknowledges as Dr. Rivera
    r = await fake_twilio.reply(
        inbound, rivera_phone, STAFF_NUMBER, f" {code_of(text.body).upper()} "
    )
    assert r.status_code == 200, r.text
    assert "<Message>" in r.text
    assert "acknowledged" in r.text
    acked = (await api.get(f"/v1/alerts/{alert['alert_id']}")).json()
    assert acked["status"] == "acknowledged"
    assert acked["acknowledged_by"] == "Dr. Rivera"

    # the others paged (Dr. Chen by e-mail, the desk's webhook) get one notice each,
    # naming who took it; Dr. Rivera gets none
    notice = await mail_sink.wait_for(
        lambda m: list(m.rcpt_tos) == [chen_mail] and "acknowledged" in m.subject, timeout=10
    )
    assert "Dr. Rivera" in notice.text
    desk_notice = await receiver.wait_for_request(
        lambda r: r.path == "/desk" and r.json.get("notice") == "acknowledged",
        timeout=10,
        what="the desk's notice",
    )
    assert desk_notice.json["acknowledged_by"] == "Dr. Rivera"
    # the same reply again changes nothing and sends nobody a second notice
    again = await fake_twilio.reply(inbound, rivera_phone, STAFF_NUMBER, code)
    assert "Nothing changed" in again.text
    detail = (await api.get(f"/v1/alerts/{alert['alert_id']}")).json()
    notices = [p for p in detail["pages"] if p["reason"] == "ack_notice"]
    assert sorted(p["recipient_name"] for p in notices) == ["Dr. Chen", "Site desk"]
    assert all(p["channel"] in ("email", "webhook") for p in notices)
    assert len(fake_twilio.messages(to=rivera_phone)) == 1  # the page only

    # audited as Dr. Rivera (no bearer token was involved)
    conn = await asyncpg.connect(alerts.dsn)
    try:
        actors = await conn.fetch(
            "SELECT actor, route FROM alerts.audit WHERE path_params->>'alert_id' = $1",
            alert["alert_id"],
        )
    finally:
        await conn.close()
    assert [(a["actor"], a["route"]) for a in actors] == [
        (f"clinician:{rivera}", "/v1/sms/inbound")
    ]


async def test_ack_link_is_single_use_and_gone_once_resolved(
    api: httpx.AsyncClient,
    intake_http: httpx.AsyncClient,
    receiver: PageReceiver,
) -> None:
    site_id = await site_with(
        api,
        {
            "recipients": [
                {"name": "Dr. One", "webhook_url": receiver.url("/one")},
                {"name": "Dr. Two", "webhook_url": receiver.url("/two")},
            ],
            "escalate_after_s": 3600,
        },
    )
    pid, _ = await new_patient(intake_http, site_id)
    await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
    one = await receiver.wait_for_request(lambda r: r.path == "/one", timeout=10, what="page")
    two = await receiver.wait_for_request(lambda r: r.path == "/two", timeout=10, what="page")
    link = one.json["ack_url"]
    assert link != two.json["ack_url"]
    async with httpx.AsyncClient(timeout=10) as http:
        # opening the link in a browser shows it; it does not acknowledge
        shown = await http.get(link)
        assert shown.status_code == 200
        assert "Acknowledge" in shown.text
        assert (await alerts_of(api, pid))[0]["status"] == "open"
        assert (await http.post(link + "x")).status_code == 404
        r = await http.post(link)
        assert r.status_code == 200, r.text
        assert r.json()["acknowledged_by"] == "Dr. One"
        assert (await http.post(link)).status_code == 410
        notice = await receiver.wait_for_request(
            lambda r: r.path == "/two" and r.json.get("notice") == "acknowledged",
            timeout=10,
            what="Dr. Two's notice",
        )
        assert notice.json["acknowledged_by"] == "Dr. One"
        alert_id = r.json()["alert_id"]
        resolved = await api.post(f"/v1/alerts/{alert_id}/resolve", json={"by": "Dr. One"})
        assert resolved.status_code == 200
        assert (await http.post(two.json["ack_url"])).status_code == 410


async def test_quiet_hours_hold_a_worsening_page_but_not_a_suicide_risk_one(
    api: httpx.AsyncClient,
    intake_http: httpx.AsyncClient,
    fake_twilio: FakeTwilio,
    receiver: PageReceiver,
) -> None:
    # quiet hours around now in the clinician's own zone (Tokyo; the schedule is New York's)
    local = datetime.now(ZoneInfo("Asia/Tokyo"))
    quiet = (
        (local - timedelta(hours=1)).strftime("%H:%M"),
        (local + timedelta(hours=1)).strftime("%H:%M"),
    )
    sleepy_phone = phone()
    sleepy = await clinician(api, name="Dr. Sleepy", sms=sleepy_phone, quiet=quiet, tz="Asia/Tokyo")
    site_id = await site_with(
        api,
        {"targets": [{"clinician_id": sleepy}], "escalate_after_s": 3600},
        {"recipients": [{"name": "Backup", "webhook_url": receiver.url("/backup")}]},
    )
    pid, _ = await new_patient(intake_http, site_id)

    # a worsening (high) page: tier 1 is asleep, so it reaches nobody there and tier 2 is
    # paged at once, not after tier 1's hour
    started = time.monotonic()
    await worsening(pid, site_id)
    backup = await receiver.wait_for_request(
        lambda r: r.path == "/backup" and r.json["patient_id"] == pid, timeout=10, what="tier 2"
    )
    assert backup.json["kind"] == "worsening"
    assert backup.received_mono - started < 5
    assert fake_twilio.messages(to=sleepy_phone) == []

    # a suicide-risk (critical) page reaches them in their quiet hours
    await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
    text = await fake_twilio.wait_for(to=sleepy_phone, timeout=10)
    assert "suicide_risk" in text.body
    assert len(fake_twilio.messages(to=sleepy_phone)) == 1


async def test_a_tier_with_nobody_on_shift_is_skipped_within_a_second(
    api: httpx.AsyncClient,
    intake_http: httpx.AsyncClient,
    receiver: PageReceiver,
) -> None:
    nobody = await clinician(api, name="Dr. Later", sms=phone())
    sid = uid("s")
    # a rotation that starts next year: nobody is on shift now
    later = (datetime.now(UTC) + timedelta(days=400)).date().isoformat()
    r = await api.put(
        f"/v1/schedules/{sid}",
        json={
            "name": "Not yet",
            "timezone": "UTC",
            "rotations": [
                {"participants": [nobody], "shift": "weekly", "handoff": "09:00", "start": later}
            ],
        },
    )
    assert r.status_code == 200, r.text
    site_id = await site_with(
        api,
        {"targets": [{"schedule_id": sid}], "escalate_after_s": 3600},
        {"recipients": [{"name": "Backup", "webhook_url": receiver.url("/b")}]},
    )
    now = (await api.get(f"/v1/sites/{site_id}/oncall/now")).json()
    assert now["tiers"][0]["clinician_ids"] == []
    assert [r["name"] for r in now["tiers"][1]["recipients"]] == ["Backup"]
    gaps = (await api.get(f"/v1/sites/{site_id}/oncall/gaps")).json()
    assert gaps
    assert gaps[0]["tier"] == 1

    pid, _ = await new_patient(intake_http, site_id)
    started = time.monotonic()
    await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
    page = await receiver.wait_for_request(
        lambda r: r.path == "/b" and r.json["patient_id"] == pid, timeout=10, what="tier 2"
    )
    assert page.received_mono - started < 1.0, page.received_mono - started
    assert page.json["tier"] == 2


async def test_notification_rules_stop_at_acknowledgement(
    api: httpx.AsyncClient,
    intake_http: httpx.AsyncClient,
    fake_twilio: FakeTwilio,
    mail_sink: MailSink,
) -> None:
    cell, mail = phone(), f"{uid('r')}@clinic.example.org"
    cid = await clinician(
        api, name="Dr. Rules", sms=cell, email=mail, rules=[("cell", 0), ("mail", 300)]
    )
    site_id = await site_with(api, {"targets": [{"clinician_id": cid}], "escalate_after_s": 3600})
    pid, _ = await new_patient(intake_http, site_id)
    await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
    text = await fake_twilio.wait_for(to=cell, timeout=10)
    (alert,) = await alerts_of(api, pid)

    async def pages() -> dict[str, Any]:
        detail = (await api.get(f"/v1/alerts/{alert['alert_id']}")).json()
        return {p["channel"]: p for p in detail["pages"]}

    # the fake records the text before it answers; the 201 is written a moment later
    by_channel = await eventually(
        pages, lambda ps: ps["sms"]["status"] == "delivered", timeout=10, what="sms delivered"
    )
    assert by_channel["email"]["status"] == "pending"  # due 300 s after the SMS
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.post(link_of(text.body))).status_code == 200
    detail = (await api.get(f"/v1/alerts/{alert['alert_id']}")).json()
    email_page = next(p for p in detail["pages"] if p["channel"] == "email")
    assert email_page["status"] == "cancelled"
    assert mail_sink.messages(to=mail) == []


async def test_schedule_oncall_follows_rotation_and_overrides(api: httpx.AsyncClient) -> None:
    a = await clinician(api, name="Dr. A", sms=phone())
    b = await clinician(api, name="Dr. B", sms=phone())
    c = await clinician(api, name="Dr. C", sms=phone())
    sid = uid("s")
    r = await api.put(
        f"/v1/schedules/{sid}",
        json={
            "name": "Daily",
            "timezone": "America/New_York",
            "rotations": [
                {
                    "participants": [a, b],
                    "shift": "daily",
                    "handoff": "09:00",
                    "start": "2027-03-12",
                }
            ],
        },
    )
    assert r.status_code == 200, r.text

    async def on(at: str) -> list[str]:
        r = await api.get(f"/v1/schedules/{sid}/oncall", params={"at": at})
        assert r.status_code == 200, r.text
        ids: list[str] = r.json()["clinician_ids"]
        return ids

    assert await on("2027-03-12T08:59:00-05:00") == []
    assert await on("2027-03-12T09:00:00-05:00") == [a]
    assert await on("2027-03-13T09:00:00-05:00") == [b]
    # New York springs forward on 2027-03-14 at 02:00: the handoff stays 09:00 local
    assert await on("2027-03-14T08:59:00-04:00") == [b]
    assert await on("2027-03-14T09:00:00-04:00") == [a]

    r = await api.post(
        f"/v1/schedules/{sid}/overrides",
        json={
            "from": "2027-03-14T12:00:00-04:00",
            "to": "2027-03-14T13:00:00-04:00",
            "clinician_id": c,
            "replaces": a,
        },
    )
    assert r.status_code == 201, r.text
    override_id = r.json()["override_id"]
    assert await on("2027-03-14T12:30:00-04:00") == [c]
    assert await on("2027-03-14T13:00:00-04:00") == [a]
    assert (await api.delete(f"/v1/schedules/{sid}/overrides/{override_id}")).status_code == 204
    assert await on("2027-03-14T12:30:00-04:00") == [a]
    assert (await api.delete(f"/v1/schedules/{sid}/overrides/{override_id}")).status_code == 404


async def test_a_failed_sms_is_retried_and_every_attempt_is_in_the_page_history(
    api: httpx.AsyncClient,
    intake_http: httpx.AsyncClient,
    fake_twilio: FakeTwilio,
) -> None:
    cell = phone()
    cid = await clinician(api, name="Dr. Retry", sms=cell)
    site_id = await site_with(api, {"targets": [{"clinician_id": cid}], "escalate_after_s": 3600})
    pid, _ = await new_patient(intake_http, site_id)
    fake_twilio.fail_next(1, status=503)  # Twilio is down for the first attempt
    await checkin(intake_http, pid, SUICIDAL, suicidal_ideation=True)
    await fake_twilio.wait_for(to=cell, timeout=15)
    # one CI run found no alert listed at this point, which a local run under load never
    # reproduced; waiting a bounded while says what was seen if it happens again
    (alert,) = await eventually(
        lambda: alerts_of(api, pid),
        lambda found: len(found) == 1,
        timeout=10,
        what="the alert listed once its text had arrived",
    )

    async def sms_page() -> dict[str, Any]:
        detail = (await api.get(f"/v1/alerts/{alert['alert_id']}")).json()
        page: dict[str, Any] = next(p for p in detail["pages"] if p["channel"] == "sms")
        return page

    page = await eventually(sms_page, lambda p: p["status"] == "delivered", what="delivered")
    assert page["clinician_id"] == cid
    assert page["contact_method"] == "cell"
    assert [(a["attempt"], a["http_status"]) for a in page["attempts"]] == [(1, 503), (2, 201)]
    assert page["attempts"][0]["error"] is not None
    assert cell not in (page["attempts"][0]["error"] or "")  # no contact detail in errors
