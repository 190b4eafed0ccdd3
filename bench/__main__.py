"""``make bench``: intake latency and throughput beside bare-driver baselines.

Load is open-loop (requests leave on a fixed schedule and latency counts from the
scheduled time), so a slow server cannot hide its queueing by slowing the client.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import alerts, cost, dashboard, intake, mixed, scheduling, sizing, watchdog
from bench.load import line, ms, open_loop, pct
from bench.stack import stack
from shared.db import connect_kwargs
from shared.events import CloudEvent
from shared.kafka import ensure_topics
from tools.factories import intake_body
from tools.stack import BASE_DSN, KAFKA

QUICK = os.environ.get("BENCH_QUICK") == "1"


async def baseline_insert(n: int = 2000) -> list[float]:
    conn = await asyncpg.connect(BASE_DSN, **connect_kwargs(BASE_DSN))
    await conn.execute("CREATE TEMP TABLE b (id text PRIMARY KEY, body jsonb)")
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await conn.execute("INSERT INTO b VALUES ($1, '{}'::jsonb)", uuid.uuid4().hex)
        out.append(time.perf_counter() - t)
    await conn.close()
    return out


async def baseline_kafka(n: int = 300) -> list[float]:
    topic = "_interval.bench"
    await ensure_topics([KAFKA], [topic], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="latest")
    await producer.start()
    await consumer.start()
    await consumer.seek_to_end()
    out = []
    try:
        for _ in range(n):
            marker = uuid.uuid4().bytes
            t = time.perf_counter()
            await producer.send_and_wait(topic, marker)
            while True:
                msg = await consumer.getone()
                if msg.value == marker:
                    break
            out.append(time.perf_counter() - t)
    finally:
        await consumer.stop()
        await producer.stop()
    return out


async def post_to_event(url: str, topic: str, n: int) -> list[float]:
    """Idle latency from sending a POST to the event arriving at a Kafka consumer."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="latest")
    await consumer.start()
    await consumer.seek_to_end()
    out = []
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(n):
                body = intake_body()
                t = time.perf_counter()
                async with session.post(f"{url}/v1/intakes", json=body) as r:
                    assert r.status == 201
                while True:
                    msg = await consumer.getone()
                    if CloudEvent.from_bytes(msg.value).data["intake_id"] == body["intake_id"]:
                        break
                out.append(time.perf_counter() - t)
                await asyncio.sleep(0.02)  # idle between events, by design
    finally:
        await consumer.stop()
    return out


async def drain_time(dsn: str, timeout: float = 120) -> float:
    """Seconds until every accepted intake's event has been published."""
    conn = await asyncpg.connect(dsn, **connect_kwargs(dsn))
    start = time.perf_counter()
    try:
        while await conn.fetchval("SELECT count(*) FROM intake.outbox WHERE published_at IS NULL"):
            if time.perf_counter() - start > timeout:
                raise RuntimeError("the outbox did not drain")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    return time.perf_counter() - start


async def main(sections: list[str]) -> None:
    fixed_s = 10 if QUICK else 30
    print("Interval bench (2-core machine; whole stack local)")
    print("Baselines, measured in this run:")
    ins = await baseline_insert(500 if QUICK else 2000)
    line("bare asyncpg INSERT (autocommit)", ins)
    kaf = await baseline_kafka(100 if QUICK else 300)
    line("bare aiokafka produce(acks=all)->consume", kaf)
    if "intake" in sections:
        await intake_section(ins, kaf, fixed_s)
    if "cost" in sections or "intake" in sections:
        await cost.section(200, 5 if QUICK else 10)
    if "cost" in sections or "mixed" in sections:
        await cost.section_consumers(200, 5 if QUICK else 10)
        await sizing.section(seconds=5 if QUICK else 10)
    if "scheduling" in sections:
        await scheduling_section()
    if "dashboard" in sections:
        await dashboard.section(500 if QUICK else 2000, 50 if QUICK else 200)
    if "alerts" in sections:
        await alerts.section_paging(50 if QUICK else 200)
        await alerts.section_sms(50 if QUICK else 200)
        await alerts.section_outage()
        await watchdog.section_watchdog()
        await alerts.section_timers(
            20_000 if QUICK else 1_000_000, spread_s=30 if QUICK else 60, idle_s=10 if QUICK else 30
        )
    if "mixed" in sections:
        # the target (100 intakes/s + 300 check-ins/s) in steps, then 10 minutes at the
        # highest step the whole stack kept up with on this machine
        await mixed.steps(20 if QUICK else 60, 30 if QUICK else 600, 100, 300)


async def intake_section(ins: list[float], kaf: list[float], fixed_s: int) -> None:
    await intake.section(5 if QUICK else 10)
    async with stack() as st:
        await open_loop(st.urls["intake"], 100, 2)  # warm-up
        lat, errors = await open_loop(st.urls["intake"], 200, fixed_s)
        print("Intake service:")
        line(
            f"POST /v1/intakes at 200/s for {fixed_s}s",
            lat,
            f"errors={errors} (goal p99 < 25 ms; ratio p99/insert-p99 "
            f"{pct(lat, 99) / pct(ins, 99):.1f}x)",
        )
        drained = await drain_time(st.dsn)
        print(f"  outbox backlog after it published in {drained:.2f} s (nothing left behind)")
        e2e = await post_to_event(
            st.urls["intake"], st.topic("intake.screened"), 100 if QUICK else 300
        )
        line(
            "POST -> event at a consumer, idle",
            e2e,
            f"(goal p99 < 30 ms; bare Kafka round trip p99 {ms(pct(kaf, 99)).strip()})",
        )
    print(f"  (median bare insert {statistics.median(ins) * 1e3:.2f} ms)")


# A network's intakes land at its sites: 50/s is a busy network's peak spread over its
# sites (docs/scale-out.md); the one-site steps show what a single site's lock sustains.
SITES = 10


async def scheduling_section() -> None:
    print("Scheduling:")
    scheduling.slot_search(100 if QUICK else 300)
    scheduling.filling_site(1000 if QUICK else 2500)
    async with stack(("intake", "scheduling")) as st:
        await scheduling.series_latency(st, 10, 5)  # warm-up: the worker joins its group
        seconds = 10 if QUICK else 20
        lat, missing = await scheduling.series_latency(st, 50, seconds, sites=SITES)
        line(
            f"intake -> whole series proposed, 50/s over {SITES} sites",
            lat,
            f"missing={missing} (goal p99 < 300 ms)",
        )
        lat, missing = await scheduling.series_latency(st, 50, seconds)
        line(
            "intake -> whole series proposed, 50/s at one site",
            lat,
            f"missing={missing} (every booking in turn under the site's lock)",
        )
        print("  one site, rising rate:")
        best = 0
        for rate in (50, 75, 100, 150, 200):
            lat_r, missing_r = await scheduling.series_latency(st, rate, 5 if QUICK else 10)
            ok = missing_r == 0 and max(lat_r, default=99) < 5.0
            line(
                f"  step {rate}/s",
                lat_r,
                f"missing={missing_r} max {max(lat_r, default=0):.2f}s {'ok' if ok else 'over'}",
            )
            if not ok:
                break
            best = rate
        print(f"  sustained intakes/s with every series proposed and lag < 5 s: {best}/s")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or ["intake", "scheduling", "alerts", "dashboard", "mixed"]))
