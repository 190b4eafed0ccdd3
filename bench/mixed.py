"""The whole stack under a mixed load: intakes, check-ins (1% with suicidal ideation),
for minutes on this 2-core machine. Prints intake and page latency, lost or duplicated
effects (zero is the goal) and each process's peak memory (VmHWM)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import orjson

from bench.load import CLIENT_NICE, client_first, line, pct
from bench.stack import Stack, stack
from bench.waits import watching
from shared.db import connect_kwargs
from tools.factories import checkin_body, intake_body
from tools.page_receiver import PageReceiver

SUICIDAL = [1, 1, 1, 0, 1, 1, 0, 0, 2]
CATCH_UP_S = 300  # how long after the load every effect may take to appear
KEPT_UP_S = 10  # caught up this soon after the load: the stack kept pace with it
PATIENTS_PER_SITE = 2500  # a 60-room site holds ~4,500 induction series in its 90 days
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)  # a request still queued then is an error
CALM = [1, 1, 1, 1, 0, 0, 0, 0, 0]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MB; NaN once it has gone."""
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def section(seconds: float, intake_rate: float, checkin_rate: float) -> bool:
    """One run at the given rates; True when the stack kept up (no client error, every
    effect in place within ``KEPT_UP_S`` of the load's end)."""
    print(
        f"Mixed load: {intake_rate:g} intakes/s + {checkin_rate:g} check-ins/s "
        f"(1% suicidal ideation) for {seconds:.0f} s, whole stack on this machine"
    )
    env = {"ESCALATE_AFTER_S": "3600", "CHECKIN_INTERVAL_S": "86400"}
    async with (
        PageReceiver() as receiver,
        stack(("intake", "scheduling", "alerts"), env) as st,
    ):
        result = await _run(st, receiver, seconds, intake_rate, checkin_rate)
        peaks = {name: peak_rss_mb(pid) for name, pid in st.pids.items()}
    intake_lat, checkin_lat, page_lat, counts = result
    line("POST /v1/intakes", intake_lat, "(goal p99 < 25 ms at 200/s alone)")
    line("POST /v1/checkins", checkin_lat)
    line("check-in with ideation -> page received", page_lat, "(goal p99 < 100 ms)")
    print("  effects: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(
        "  peak RSS per process (MB, goal < 250): "
        + ", ".join(f"{k} {v:.0f}" for k, v in sorted(peaks.items()))
    )
    kept_up = counts["client errors"] == 0 and 0 <= counts["caught up after (s)"] <= KEPT_UP_S
    print(f"  {'kept up' if kept_up else 'did not keep up'}")
    return kept_up


async def steps(step_s: float, full_s: float, intake_rate: float, checkin_rate: float) -> None:
    """Fractions of the target rate for ``step_s`` each, then ``full_s`` at the highest
    fraction that kept up: on 2 cores the whole stack may not sustain the target, and an
    open-loop run above capacity only measures its own queue."""
    best = 0.0
    for fraction in (0.25, 0.5, 0.75, 1.0):
        ok = await section(step_s, intake_rate * fraction, checkin_rate * fraction)
        if not ok:
            break
        best = fraction
    print(f"  highest fraction of the target load that kept up: {best:.0%}")
    if best and full_s > step_s:
        await section(full_s, intake_rate * best, checkin_rate * best)


@dataclass
class _Load:
    """The open-loop load of one run and what it saw: intakes at their rate spread over
    the sites, check-ins at theirs from patients already accepted (1% ideation)."""

    st: Stack
    session: aiohttp.ClientSession  # the clinics' intakes
    patients: aiohttp.ClientSession  # the patients' check-ins
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    intake_lat: list[float] = field(default_factory=list)
    checkin_lat: list[float] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)  # patient -> ideation sent
    sent_wall: dict[str, float] = field(default_factory=dict)  # the same, wall clock
    accepted: list[str] = field(default_factory=list)
    suicidal: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    async def intake(self, due: float, site: str) -> None:
        body = orjson.dumps(intake_body(site_id=site))
        pid = orjson.loads(body)["patient"]["patient_id"]
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        try:
            async with self.session.post(
                f"{self.st.urls['intake']}/v1/intakes",
                data=body,
                headers={"content-type": "application/json"},
            ) as r:
                await r.read()
                if r.status == 201:
                    self.intake_lat.append(time.perf_counter() - due)
                    self.accepted.append(pid)
                else:
                    self.errors[f"intake {r.status}"] += 1
        except (aiohttp.ClientError, TimeoutError) as e:
            self.errors[f"intake {type(e).__name__}"] += 1

    async def checkin(self, due: float) -> None:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if not self.accepted:
            return
        pid = self.rng.choice(self.accepted)
        ideation = self.rng.random() < 0.01 and pid not in self.sent_at
        body = checkin_body(pid, SUICIDAL if ideation else CALM, suicidal_ideation=ideation)
        if ideation:
            self.sent_at[pid] = time.monotonic()
            self.sent_wall[pid] = time.time()
        try:
            async with self.patients.post(f"{self.st.urls['intake']}/v1/checkins", json=body) as r:
                await r.read()
                if r.status != 202:
                    self.errors[f"check-in {r.status}"] += 1
                    if ideation:  # not sent after all (a calm one leaves it alone)
                        self.sent_at.pop(pid, None)
                else:
                    self.checkin_lat.append(time.perf_counter() - due)
                    if ideation:
                        self.suicidal.append(pid)
        except (aiohttp.ClientError, TimeoutError) as e:
            self.errors[f"check-in {type(e).__name__}"] += 1
            if ideation:
                self.sent_at.pop(pid, None)


async def _sites(s: aiohttp.ClientSession, st: Stack, receiver: PageReceiver, n: int) -> list[str]:
    """Enough sites that none fills up: a full site waitlists its patients, and searching
    a full 90-day calendar measures capacity planning, not the pipeline."""
    sites = [f"mixed-{k}" for k in range(n)]
    hours = {d: ["06:00", "22:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    recipient = {"name": "Dr. M", "webhook_url": receiver.url("/page")}
    oncall = {"tiers": [{"recipients": [recipient], "escalate_after_s": 3600}]}
    for site in sites:
        body: dict[str, object] = {"name": site, "timezone": "UTC", "hours": hours}
        body |= {"treatment_rooms": 60, "therapists": 40}
        async with s.put(f"{st.urls['scheduling']}/v1/sites/{site}", json=body) as r:
            assert r.status == 200
        async with s.put(f"{st.urls['alerts']}/v1/sites/{site}/oncall", json=oncall) as r:
            assert r.status == 200
    return sites


async def _run(
    st: Stack, receiver: PageReceiver, seconds: float, intake_rate: float, checkin_rate: float
) -> tuple[list[float], list[float], list[float], dict[str, int]]:
    total = int(seconds * intake_rate)
    # Two clients, as in a real network: intakes come from the clinics' staff, check-ins
    # from the patients' phones, and a check-in never waits for one of the 512
    # connections that intakes queued at the routine gate hold (shared/web.py). With one
    # shared client, once the intakes in flight filled its connections (at 100/s, when
    # they wait more than 5 s), check-ins, an ideation one among them, waited in the
    # client, and the page latency measured that queue, not the stack. The phones are
    # not a pool of connections either: each is a device of its own, so a check-in is
    # sent when it is due, on a new connection if every open one is busy. With a limit
    # of 512, a moment of slow answers (a few seconds at 300/s fill 512) queued
    # check-ins in the client, up to 1.8 s before the intake API saw them
    # (docs/performance.md, "The load client's own wait").
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512), timeout=REQUEST_TIMEOUT
        ) as s,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=REQUEST_TIMEOUT
        ) as phones,
    ):
        sites = await _sites(s, st, receiver, max(1, -(-total // PATIENTS_PER_SITE)))
        load = _Load(st, s, phones)
        with client_first() as ahead:
            print(
                f"  load client at niceness {CLIENT_NICE}, ahead of the stack (its clients "
                "are elsewhere in a real network)"
                if ahead
                else "  load client at the stack's priority (no privilege to raise it): "
                "once the machine is overloaded its own wait to send counts as the stack's"
            )
            start = time.perf_counter() + 0.2
            tasks = [
                load.intake(start + i / intake_rate, sites[i % len(sites)]) for i in range(total)
            ]
            tasks += [
                load.checkin(start + 1 + i / checkin_rate)
                for i in range(int((seconds - 1) * checkin_rate))
            ]
            # what the intake API waited for meanwhile: the CPU, or its statements
            async with watching(st.pids["intake-api"], st.dsn, connect_kwargs(st.dsn)) as waits:
                await asyncio.gather(*tasks)
    for row in waits.lines():
        print(row)
    page_lat, counts = await _effects(st, receiver, load)
    if load.errors:
        print("  client errors: " + ", ".join(f"{k} {v}" for k, v in load.errors.most_common()))
    return load.intake_lat, load.checkin_lat, page_lat, counts


# Where an ideation check-in's page spent its time, from what the stack stores: the
# check-in row's insert, the safety signal's record of publication, the page's first
# POST (docs/performance.md, "The load client's own wait").
_STAGES = """
    SELECT c.patient_id,
        extract(epoch FROM c.created_at) AS stored,
        (SELECT extract(epoch FROM min(o.published_at)) FROM intake.outbox_published o
         WHERE o.topic = 'safety.signal' AND o.key = c.patient_id) AS relayed,
        (SELECT extract(epoch FROM min(a.started_at)) FROM alerts.alerts al
         JOIN alerts.pages p ON p.alert_id = al.alert_id
         JOIN alerts.page_attempts a ON a.page_id = p.page_id
         WHERE al.patient_id = c.patient_id) AS posted
    FROM intake.checkins c WHERE c.suicidal_ideation AND c.patient_id = ANY($1::text[])
"""


async def _page_stages(db: asyncpg.Connection, load: _Load, pages: dict[str, float]) -> None:
    """Print each stage's p50/p99 over the paged ideation check-ins: before the intake
    API stored it (the client's send, the network, the API's queue), the relay's safety
    lane, the alerts safety lane until its first POST, the POST until received."""
    now_wall, now_mono = time.time(), time.monotonic()
    paged = [p for p in load.suicidal if p in pages]
    stages: dict[str, list[float]] = {
        "sent -> stored": [],
        "stored -> relayed": [],
        "relayed -> POST": [],
        "POST -> received": [],
    }
    for r in await db.fetch(_STAGES, paged):
        pid = r["patient_id"]
        if r["relayed"] is None or r["posted"] is None:
            continue
        received = now_wall - (now_mono - pages[pid])
        points = [load.sent_wall[pid], float(r["stored"]), float(r["relayed"])]
        points += [float(r["posted"]), received]
        for values, (a, b) in zip(stages.values(), itertools.pairwise(points), strict=True):
            values.append(b - a)
    if stages["sent -> stored"]:
        print(
            "  ideation pages, where the time went (p50 / p99 ms): "
            + ", ".join(
                f"{name} {1000 * pct(v, 50):.0f} / {1000 * pct(v, 99):.0f}"
                for name, v in stages.items()
            )
        )


async def _effects(
    st: Stack, receiver: PageReceiver, load: _Load
) -> tuple[list[float], dict[str, int]]:
    """Every effect, once: decision events, series, alerts and pages; the page latencies
    and the counts, waiting up to CATCH_UP_S for the stack to catch up."""
    load_end = time.monotonic()
    deadline = load_end + CATCH_UP_S
    with contextlib.suppress(TimeoutError):
        await receiver.wait_for(
            lambda rx: {r.json["patient_id"] for r in rx.delivered("/page")} >= set(load.suicidal),
            timeout=max(1.0, deadline - time.monotonic()),
        )
    pages: dict[str, float] = {}
    for got in receiver.delivered("/page"):
        pages.setdefault(got.json["patient_id"], got.received_mono)
    page_lat = [pages[p] - load.sent_at[p] for p in load.suicidal if p in pages]
    db = await asyncpg.connect(st.dsn, **connect_kwargs(st.dsn))
    caught_up = -1.0
    try:
        await _page_stages(db, load, pages)
        while time.monotonic() < deadline:
            backlog = await db.fetchval(
                "SELECT (SELECT count(*) FROM intake.outbox WHERE published_at IS NULL)"
                " + (SELECT count(*) FROM alerts.outbox WHERE published_at IS NULL)"
            )
            series = await db.fetchval(
                "SELECT count(DISTINCT patient_id) FROM scheduling.series "
                "WHERE purpose = 'induction'"
            )
            waiting = await db.fetchval("SELECT count(*) FROM scheduling.waitlist")
            done = series + waiting >= len(load.accepted) and len(page_lat) >= len(load.suicidal)
            if backlog == 0 and done:
                caught_up = time.monotonic() - load_end
                break
            await asyncio.sleep(1)
        dup_series = await db.fetchval(
            "SELECT count(*) FROM (SELECT patient_id FROM scheduling.series "
            "WHERE purpose = 'induction' GROUP BY patient_id HAVING count(*) > 1) d"
        )
        alerts = await db.fetchval("SELECT count(*) FROM alerts.alerts WHERE kind = 'suicide_risk'")
        intakes = await db.fetchval("SELECT count(*) FROM intake.intakes")
        reasons = await db.fetch(
            "SELECT reason, count(*) AS n FROM scheduling.waitlist GROUP BY reason ORDER BY n DESC"
        )
    finally:
        await db.close()
    if reasons:
        print("  waitlisted because: " + ", ".join(f"{r['reason']} {r['n']}" for r in reasons))
    return page_lat, {
        "intakes accepted": len(load.accepted),
        "stored": intakes,
        "series proposed": series,
        "waitlisted": waiting,
        "duplicate series": dup_series,
        "ideation check-ins": len(load.suicidal),
        "critical alerts": alerts,
        "paged": len(page_lat),
        "client errors": sum(load.errors.values()),
        "caught up after (s)": round(caught_up),  # -1: not within CATCH_UP_S
    }
