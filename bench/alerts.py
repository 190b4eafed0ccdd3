"""Alerts figures: check-in -> page latency under load (beside Alertmanager), the safety
lane after a broker outage, and (bench/timers.py) the durable check-in timers."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable

import aiohttp
import orjson

from bench.alertmanager import measure_alertmanager
from bench.load import line, ms, open_loop, open_loop_apart, pct
from bench.stack import Stack, stack
from bench.timers import section_timers as section_timers
from tools.factories import checkin_body, intake_body
from tools.fake_twilio import FakeTwilio
from tools.page_receiver import PageReceiver, Received
from tools.stack import KAFKA, ROOT

SUICIDAL = [1, 1, 1, 0, 1, 1, 0, 0, 2]


async def _patients(session: aiohttp.ClientSession, url: str, site_id: str, n: int) -> list[str]:
    """``n`` patients known to intake (no risk at intake, so no alert yet)."""
    out = []
    for _ in range(n):
        body = intake_body(site_id=site_id)
        async with session.post(f"{url}/v1/intakes", json=body) as r:
            assert r.status == 201, await r.text()
        out.append(body["patient"]["patient_id"])
    return out


async def page_latency(
    st: Stack, receiver: PageReceiver, n: int, background_rate: float, *, alertmanager: bool = True
) -> tuple[list[float], list[float]]:
    """(ours, Alertmanager's) check-in/alert POSTed -> page received, with intakes at
    ``background_rate``/s (0: none) going on meanwhile (their figures are printed)."""
    site_id = f"bench-{uuid.uuid4().hex[:6]}"
    async with aiohttp.ClientSession() as session:
        oncall = {
            "tiers": [
                {
                    "recipients": [{"name": "Dr. Bench", "webhook_url": receiver.url("/page")}],
                    "escalate_after_s": 3600,
                }
            ]
        }
        async with session.put(f"{st.urls['alerts']}/v1/sites/{site_id}/oncall", json=oncall) as r:
            assert r.status == 200, await r.text()
        pids = await _patients(session, st.urls["intake"], site_id, n + 10)
        # warm-up: the first pages open connections and the worker's group settles
        for pid in pids[n:]:
            await _one_page(session, st, receiver, pid)

        ours: list[float] = []
        theirs: list[float] = []
        duration = n * 0.06 + 10
        background = asyncio.create_task(
            open_loop_apart(st.urls["intake"], background_rate, duration)
            if background_rate
            else asyncio.sleep(0, ([], 0))
        )
        try:
            for pid in pids[:n]:
                ours.append(await _one_page(session, st, receiver, pid))
                await asyncio.sleep(0.05)
            if alertmanager:
                theirs = await measure_alertmanager(n, receiver)
            if background_rate:  # it was really that load: the intakes' own figures
                answered, errors = await background
                print(
                    f"    meanwhile {len(answered) + errors} intakes at {background_rate:.0f}/s: "
                    f"p50 {ms(pct(answered, 50)).strip()}, p99 {ms(pct(answered, 99)).strip()}, "
                    f"errors {errors}"
                )
        finally:
            background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await background
    return ours, theirs


async def _one_page(
    session: aiohttp.ClientSession, st: Stack, receiver: PageReceiver, pid: str
) -> float:
    body = orjson.dumps(checkin_body(pid, SUICIDAL, suicidal_ideation=True))
    t0 = time.monotonic()
    async with session.post(
        f"{st.urls['intake']}/v1/checkins",
        data=body,
        headers={"content-type": "application/json"},
    ) as r:
        assert r.status == 202, await r.text()
    got = await receiver.wait_for_request(
        lambda rx: rx.path == "/page" and rx.json.get("patient_id") == pid, timeout=30
    )
    return got.received_mono - t0


async def sustained_rate(st: Stack, steps: tuple[float, ...] = (50, 100, 200, 300, 400)) -> float:
    """The highest intake rate (of ``steps``, 5 s each) the stack sustains: the intake API
    answers with p99 < 100 ms and no error, and the whole stack keeps pace (what the step
    left behind, in outboxes and consumer groups, is cleared within 5 s of its end): "the
    load it sustains" for the paging figures."""
    best = 0.0
    for rate in steps:
        latencies, errors = await open_loop(st.urls["intake"], rate, 5)
        behind = await st.settle()
        ok = not errors and latencies and pct(latencies, 99) < 0.1 and behind <= 5
        print(
            f"    intakes {rate:.0f}/s: p99 {ms(pct(latencies, 99)).strip()} errors={errors}, "
            f"the stack caught up {behind:.1f} s after"
        )
        if not ok:
            break
        best = rate
    return best


async def section_paging(n: int) -> None:
    """The safety lane's figures (docs/domain.md, "Safety signals first"): a check-in with
    suicidal ideation POSTed -> its page received, idle and while the rest of the stack
    runs at 100% and 200% of the intake rate it sustains, beside Alertmanager."""
    print("Alerts: check-in with suicidal ideation POSTed -> page received (the safety lane)")
    async with (
        PageReceiver() as receiver,
        stack(("intake", "scheduling", "alerts"), {"ESCALATE_AFTER_S": "3600"}) as st,
    ):
        theirs = await measure_alertmanager(n, receiver)
        idle, _ = await page_latency(st, receiver, n, 0, alertmanager=False)
        print("  the load the stack sustains (intake p99 < 100 ms, no errors):")
        rate = await sustained_rate(st)
        loads = [(f"{rate:.0f} intakes/s (100%)", rate), (f"{2 * rate:.0f}/s (200%)", 2 * rate)]
        loaded = []
        for label, r in loads:
            await st.settle()  # the load alone: not on the backlog of the step that failed
            ours, _ = await page_latency(st, receiver, n, r, alertmanager=False)
            loaded.append((label, ours))
    line(
        f"Alertmanager 0.25, group_wait 0s: {n} alerts, idle",
        theirs,
        f"max {ms(max(theirs)).strip()}",
    )
    for label, ours in [("idle", idle), *loaded]:
        line(
            f"Interval: {n} pages, {label}",
            ours,
            f"max {ms(max(ours)).strip()} (goal p99 < 100 ms; moonshot 25 ms); "
            f"vs Alertmanager p50 {pct(ours, 50) / pct(theirs, 50):.2f}x, "
            f"p99 {pct(ours, 99) / pct(theirs, 99):.2f}x",
        )
    print(
        "  (ours crosses intake, its outbox and relay, Kafka, the safety lane's consumer and "
        "its first POST; Alertmanager is one process given the alert directly)"
    )


async def _broker(action: str) -> float:
    """Stop or start this checkout's local broker; the seconds it took."""
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        str(ROOT / "deploy" / "bin" / "kafka.sh"),
        action,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert await proc.wait() == 0, f"kafka.sh {action} failed"
    return time.monotonic() - t0


async def section_outage() -> None:
    """docs/domain.md, "Safety signals first": after a broker outage during which the
    safety lane's and the worker's processes crashed and restarted (so they came up with
    no broker), a signal accepted meanwhile pages within seconds of the broker's return."""
    print("Alerts: broker back -> first page, lane and worker restarted during the outage")
    if KAFKA not in ("127.0.0.1:9092", "localhost:9092"):
        print("  skipped: the broker is not this checkout's own (KAFKA_BOOTSTRAP_SERVERS)")
        return
    async with (
        PageReceiver() as receiver,
        stack(("intake", "alerts"), {"ESCALATE_AFTER_S": "3600"}) as st,
        aiohttp.ClientSession() as session,
    ):
        site_id = f"bench-{uuid.uuid4().hex[:6]}"
        oncall = {
            "tiers": [{"recipients": [{"name": "Dr. O", "webhook_url": receiver.url("/page")}]}]
        }
        async with session.put(f"{st.urls['alerts']}/v1/sites/{site_id}/oncall", json=oncall) as r:
            assert r.status == 200, await r.text()
        pids = await _patients(session, st.urls["intake"], site_id, 2)
        await _one_page(session, st, receiver, pids[0])  # warm: the lane pages
        await _broker("stop")
        try:
            for name in ("alerts-safety", "alerts-worker"):
                st.kill(name)
                st.restart(name)  # comes up while the broker is away
            await asyncio.sleep(3)  # they are up, retrying, before the broker returns
            body = orjson.dumps(checkin_body(pids[1], SUICIDAL, suicidal_ideation=True))
            async with session.post(
                f"{st.urls['intake']}/v1/checkins",
                data=body,
                headers={"content-type": "application/json"},
            ) as r:
                assert r.status == 202, await r.text()  # accepted: in intake's outbox
        finally:
            took = await _broker("start")
        back = time.monotonic()
        got = await receiver.wait_for_request(
            lambda rx: rx.path == "/page" and rx.json.get("patient_id") == pids[1], timeout=120
        )
        # kafka.sh start returns after its own readiness round trip (a produce and a
        # consumer group), which can end after the broker already serves the lane
        print(
            f"  broker back (start took {took:.1f} s) -> page: "
            f"{got.received_mono - back:.2f} s (goal < 10 s); "
            f"{got.received_mono - (back - took):.1f} s after the start was issued"
        )


def _page_of(pid: str) -> Callable[[Received], bool]:
    return lambda rx: rx.path == "/page" and rx.json.get("patient_id") == pid


async def section_sms(n: int) -> None:
    """Issue 16's figure: a check-in with suicidal ideation POSTed -> the SMS request at a
    local Twilio (tools/fake_twilio), beside the same page's webhook POST at a local
    receiver, in the same run: one tier naming a clinician paged by SMS at 0 s and a
    static webhook recipient."""
    print("Alerts: check-in with suicidal ideation POSTed -> SMS at Twilio, beside the webhook")
    async with FakeTwilio() as twilio, PageReceiver() as receiver:
        env = {
            "ESCALATE_AFTER_S": "3600",
            "SMS_API_URL": twilio.api_url,
            "SMS_ACCOUNT_SID": twilio.account_sid,
            "SMS_AUTH_TOKEN": twilio.auth_token,
            "SMS_FROM_STAFF": "+15550001000",
        }
        async with stack(("intake", "scheduling", "alerts"), env) as st:
            site_id = f"bench-{uuid.uuid4().hex[:6]}"
            cell = "+12025550199"
            alerts_url = st.urls["alerts"]
            async with aiohttp.ClientSession() as session:
                clinician = {
                    "name": "Dr. Bench",
                    "timezone": "UTC",
                    "contact_methods": [{"id": "cell", "type": "sms", "address": cell}],
                    "notification_rules": [{"contact_method": "cell", "after_s": 0}],
                }
                async with session.put(f"{alerts_url}/v1/clinicians/c-bench", json=clinician) as r:
                    assert r.status == 200, await r.text()
                oncall = {
                    "tiers": [
                        {
                            "targets": [{"clinician_id": "c-bench"}],
                            "recipients": [{"name": "Desk", "webhook_url": receiver.url("/page")}],
                            "escalate_after_s": 3600,
                        }
                    ]
                }
                url = f"{alerts_url}/v1/sites/{site_id}/oncall"
                async with session.put(url, json=oncall) as r:
                    assert r.status == 200, await r.text()
                pids = await _patients(session, st.urls["intake"], site_id, n + 10)
                sms: list[float] = []
                hook: list[float] = []
                for i, pid in enumerate(pids):
                    body = orjson.dumps(checkin_body(pid, SUICIDAL, suicidal_ideation=True))
                    seen = len(twilio.messages(to=cell))
                    t0 = time.monotonic()
                    async with session.post(
                        f"{st.urls['intake']}/v1/checkins",
                        data=body,
                        headers={"content-type": "application/json"},
                    ) as r:
                        assert r.status == 202, await r.text()
                    got = await receiver.wait_for_request(_page_of(pid), timeout=30)
                    texts = await twilio.wait_for_count(seen + 1, to=cell, timeout=30)
                    if i >= 10:  # the first ten warm the paths
                        hook.append(got.received_mono - t0)
                        sms.append(texts[-1].received_mono - t0)
                    await asyncio.sleep(0.05)
    line(f"Interval: {n} SMS at Twilio", sms, "(goal p99 < 150 ms)")
    line(f"Interval: the same {n} pages' webhooks", hook, "")
