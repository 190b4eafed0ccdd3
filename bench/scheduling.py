"""Scheduling figures: the pure slot search, and intake -> series stored, end to end."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as dtime

import aiohttp
from aiokafka import AIOKafkaConsumer

from bench.load import pct
from bench.stack import Stack
from services.scheduling.domain.calendar import Calendar, Known
from services.scheduling.domain.model import (
    STANDARD,
    WEEKDAYS,
    Busy,
    Kind,
    NoFit,
    Preferences,
    Site,
)
from services.scheduling.domain.slots import find_series, find_single
from shared.events import CloudEvent
from tools.factories import intake_body
from tools.stack import KAFKA

DAYS = WEEKDAYS


def busy_site(booked: int, seed: int = 7) -> tuple[Site, list[Busy], datetime]:
    """20 rooms, 10 therapists, ``booked`` appointments spread over the 90-day horizon."""
    site = Site(
        site_id="bench",
        timezone="America/New_York",
        hours=tuple((d, dtime(8), dtime(20)) for d in DAYS[:6]),
        rooms=20,
        therapists=10,
    )
    rng = random.Random(seed)
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    busy = []
    for _ in range(booked):
        day = now + timedelta(days=rng.randrange(1, 95), hours=rng.randrange(0, 12))
        if rng.random() < 0.6:
            busy.append(Busy(f"room-{rng.randrange(1, 21)}", day, day + timedelta(hours=3)))
        else:
            busy.append(Busy(f"therapist-{rng.randrange(1, 11)}", day, day + timedelta(minutes=90)))
    return site, busy, now


def _timed(n: int, search: Callable[[int], object]) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        plan = search(i)
        out.append(time.perf_counter() - start)
        assert not hasattr(plan, "reason"), plan
    return out


def _figures(label: str, out: list[float], goal: str = "") -> None:
    print(
        f"  {label}: p50 {pct(out, 50) * 1e3:.2f} ms  p99 {pct(out, 99) * 1e3:.2f} ms  "
        f"n={len(out)}{goal}"
    )


def slot_search(n: int = 300) -> None:
    site, busy, now = busy_site(5000)
    t = time.perf_counter()
    calendar = Calendar.from_busy(busy)
    build = time.perf_counter() - t
    prefs = [
        Preferences(),
        Preferences(weekdays=frozenset({"mon", "wed", "fri"})),
        Preferences(earliest=dtime(9), latest=dtime(15)),
        Preferences(weekdays=frozenset({"tue", "thu"}), earliest=dtime(9), latest=dtime(13)),
        Preferences(earliest=dtime(11), latest=dtime(17), timezone="America/Chicago"),
    ]

    def moment(i: int) -> datetime:
        return now + timedelta(hours=i)

    def doses(i: int) -> list[datetime]:
        """A patient in a new course: one dose completed yesterday, a maintenance
        pending in 9 days and one more booked in 5 weeks."""
        at = moment(i)
        return [at - timedelta(days=1), at + timedelta(days=9, hours=3), at + timedelta(days=37)]

    def series(i: int, with_doses: bool = False) -> object:
        return find_series(
            site,
            calendar,
            STANDARD,
            prefs[i % len(prefs)],
            moment(i),
            patient_doses=doses(i) if with_doses else (),
        )

    def single(i: int) -> object:
        return find_single(
            site,
            calendar,
            STANDARD,
            prefs[i % len(prefs)],
            moment(i),
            kind=Kind.maintenance,
            not_before=moment(i),
            not_after=moment(i) + timedelta(days=7),
            sequence=1,
            patient_doses=doses(i),
        )

    goal = f" (goal p99 < 5 ms; building the calendar once: {build * 1e3:.1f} ms)"
    where = "6 doses, 20 rooms/10 therapists/5,000 booked, 5 preference sets"
    _figures(f"find_series, {where}", _timed(n, series), goal)
    _figures(
        f"find_series, {where}, a patient with 3 other doses",
        _timed(n, lambda i: series(i, with_doses=True)),
        " (goal p99 < 5 ms)",
    )
    _figures("find_single, worsening within 7 days, 3 other doses", _timed(n, single))


def filling_site(series: int = 2500, every: int = 500) -> None:
    """The search as a site fills: one site like the mixed load's (60 rooms, 40
    therapists, open 06:00-22:00 daily), series after series for patients who prefer
    weekdays 08:00-18:00, each booked before the next search, the calendar's ``Known``
    kept between searches as the worker's cache keeps it. The search starts at the
    first day, so a full calendar is where its cost shows (docs/performance.md)."""
    site = Site(
        site_id="fill",
        timezone="UTC",
        hours=tuple((d, dtime(6), dtime(22)) for d in DAYS),
        rooms=60,
        therapists=40,
    )
    prefs = Preferences(weekdays=frozenset(DAYS[:5]), earliest=dtime(8), latest=dtime(18))
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    known = Known()
    timelines = Calendar().timelines
    window: list[float] = []
    print(f"Slot search filling one site ({series:,} series, 60 rooms, 40 therapists):")
    for i in range(series):
        calendar = Calendar(timelines, known=known)
        t = time.perf_counter()
        plan = find_series(site, calendar, STANDARD, prefs, now + timedelta(seconds=i / 10))
        window.append(time.perf_counter() - t)
        if isinstance(plan, NoFit):
            print(f"  series {i + 1}: no fit ({plan.reason})")
            return
        timelines = calendar.with_booked(plan.sessions).timelines
        if (i + 1) % every == 0:
            _figures(f"series {i + 2 - every:,}-{i + 1:,}", window)
            window = []


SITE = {
    "name": "Bench",
    "timezone": "America/Chicago",
    "hours": {d: ["07:00", "21:00"] for d in DAYS},
    "treatment_rooms": 60,
    "therapists": 40,
}


async def series_latency(
    st: Stack, rate: float, seconds: float, sites: int = 1
) -> tuple[list[float], int]:
    """POST eligible intakes at ``rate``/s, spread round-robin over ``sites`` new sites;
    seconds until all 12 sessions of each were proposed. Bookings at one site take its
    lock in turn (services/scheduling/repository/sites.py, serialized_site); sites do not wait
    on each other."""
    tag = f"bench-{int(time.time())}-{int(rate)}"
    site_ids = [f"{tag}-{n}" for n in range(sites)]
    async with aiohttp.ClientSession() as s:
        for site_id in site_ids:
            async with s.put(f"{st.urls['scheduling']}/v1/sites/{site_id}", json=SITE) as r:
                assert r.status == 200, await r.text()
        consumer = AIOKafkaConsumer(
            st.topic("appointment.proposed"), bootstrap_servers=KAFKA, auto_offset_reset="latest"
        )
        await consumer.start()
        await consumer.seek_to_end()
        sent: dict[str, float] = {}
        counts: dict[str, int] = defaultdict(int)
        done: dict[str, float] = {}
        total = int(rate * seconds)

        async def consume() -> None:
            while len(done) < total:
                batch = await consumer.getmany(timeout_ms=200)
                now = time.perf_counter()
                for msgs in batch.values():
                    for m in msgs:
                        pid = CloudEvent.from_bytes(m.value).subject
                        counts[pid] += 1
                        if counts[pid] == 12 and pid in sent:
                            done[pid] = now - sent[pid]

        reader = asyncio.create_task(consume())
        start = time.perf_counter() + 0.1

        async def one(i: int) -> None:
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            body = intake_body(site_id=site_ids[i % sites])
            sent[body["patient"]["patient_id"]] = due
            async with s.post(f"{st.urls['intake']}/v1/intakes", json=body) as r:
                assert r.status == 201

        await asyncio.gather(*(one(i) for i in range(total)))
        with contextlib.suppress(TimeoutError):  # what did not finish counts as missing
            await asyncio.wait_for(reader, timeout=60)
        await consumer.stop()
    return list(done.values()), total - len(done)


if __name__ == "__main__":  # python -m bench.scheduling: the pure figures alone, no stack
    slot_search()
