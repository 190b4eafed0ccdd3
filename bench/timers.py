"""Timers figures: the durable check-in timers at 1,000,000 monitored patients, a burst
of deadlines at one instant, idle queries and the timers process's memory.

``n`` monitored patients are seeded server-side (one ``generate_series`` INSERT), then

- a window: ``window`` of them with deadlines spread evenly over ``spread_s`` seconds,
  every one timed from its deadline to its ``checkin.missed`` at a Kafka consumer;
- a burst: ``burst`` more whose deadlines are the same instant (a site's 9:00), timed
  from that instant to each event, the last one included;
- idle: nothing due for hours, the timers process's database queries per second (its
  own counter: every statement the loop sends) and the whole database's transactions;
- the timers process's RSS at start, after the window, after the burst and after idle.

The rest of the ``n`` patients have deadlines spread over the next day (as a daily
check-in's are), so every query runs against a table of ``n`` monitored rows.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer

from bench.cost import _snapshot as cpu_snapshot
from bench.load import line, ms
from bench.stack import Stack, stack
from shared.db import connect_kwargs
from tools.stack import KAFKA, free_port

DAY_S = 86400.0
GRACE_S = 43200.0


async def _fill(conn: asyncpg.Connection, n: int, start: datetime) -> None:
    """``n`` monitored patients ``bench-1`` .. ``bench-n``, deadlines evenly over the day
    from ``start`` (one statement, built by the server)."""
    await conn.execute(
        """
        INSERT INTO alerts.patients (patient_id, site_id, started_at, next_due_at,
                                     deadline_at, updated_at)
        SELECT 'bench-' || g, 'site-' || (g % 20), $2::timestamptz - interval '1 day',
               d - make_interval(secs => $4), d, now()
        FROM generate_series(1, $1) g,
             LATERAL (SELECT $2::timestamptz
                             + make_interval(secs => (g - 1) * $3::float8 / $1)) t(d)
        """,
        n,
        start,
        DAY_S,
        GRACE_S,
    )


async def _move(
    conn: asyncpg.Connection, first: int, count: int, at: datetime, spread_s: float
) -> None:
    """Patients ``bench-first`` .. ``bench-(first+count-1)``: deadlines evenly over
    ``spread_s`` seconds from ``at`` (0: all at ``at``), and the timers told."""
    await conn.execute(
        """
        UPDATE alerts.patients
        SET next_due_at = d - make_interval(secs => $5), deadline_at = d
        FROM generate_series($1::int, $1 + $2 - 1) g,
             LATERAL (SELECT $3::timestamptz
                             + make_interval(secs => (g - $1) * $4::float8 / $2)) t(d)
        WHERE patient_id = 'bench-' || g
        """,
        first,
        count,
        at,
        spread_s,
        GRACE_S,
    )
    await conn.execute("SELECT pg_notify('alerts_timers', '')")


def _rss_mb(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return float("nan")


async def _xacts(conn: asyncpg.Connection) -> int:
    value: int = await conn.fetchval(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database "
        "WHERE datname = current_database()"
    )
    return value


async def _timer_queries(session: aiohttp.ClientSession, url: str) -> float:
    async with session.get(url) as r:
        text = await r.text()
    return sum(
        float(row.rsplit(" ", 1)[1])
        for row in text.splitlines()
        if row.startswith("alerts_timer_queries_total{")
    )


async def _consumer(st: Stack) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        st.topic("checkin.missed"),
        bootstrap_servers=KAFKA,
        auto_offset_reset="latest",
        fetch_max_bytes=32 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    await consumer.seek_to_end()
    return consumer


async def _collect(consumer: AIOKafkaConsumer, want: set[str], timeout_s: float) -> list[float]:
    """Deadline -> receipt of each ``checkin.missed`` for the patients in ``want``."""
    lags: list[float] = []
    end = time.monotonic() + timeout_s
    while want and time.monotonic() < end:
        batch = await consumer.getmany(timeout_ms=200, max_records=20000)
        now = time.time()
        for records in batch.values():
            for rec in records:
                data = orjson.loads(rec.value)["data"]
                if data["patient_id"] in want:
                    want.discard(data["patient_id"])
                    due = datetime.fromisoformat(data["deadline_at"]).timestamp()
                    lags.append(now - due)
    return lags


async def _measured(
    st: Stack, conn: asyncpg.Connection, first: int, count: int, spread_s: float
) -> tuple[list[float], int]:
    """Move ``count`` deadlines into the next ``spread_s`` s (0: one instant, 2 s from now)
    and time each miss; (lags, misses never received)."""
    consumer = await _consumer(st)
    try:
        want = {f"bench-{g}" for g in range(first, first + count)}
        await _move(conn, first, count, datetime.now(UTC) + timedelta(seconds=2), spread_s)
        lags = await _collect(consumer, want, spread_s + 120)
    finally:
        await consumer.stop()
    return lags, count - len(lags)


async def section_timers(
    n: int, spread_s: float, idle_s: float, window: int | None = None, burst: int | None = None
) -> None:
    """The figures of the module docstring; ``window`` and ``burst`` default to ``n // 10``."""
    window = n // 10 if window is None else window
    burst = n // 10 if burst is None else burst
    print(f"Alerts: durable check-in timers, {n:,} monitored patients")
    metrics_port = str(free_port())
    env = {
        "CHECKIN_INTERVAL_S": str(DAY_S),
        "CHECKIN_GRACE_S": str(GRACE_S),
        "ALERTS_TIMERS_METRICS_PORT": metrics_port,
    }
    async with stack(("alerts",), env) as st:
        conn = await asyncpg.connect(st.dsn, **connect_kwargs(st.dsn))
        try:
            t0 = time.monotonic()
            await _fill(conn, n, datetime.now(UTC) + timedelta(hours=2))
            await conn.execute("ANALYZE alerts.patients")
            print(f"  seeded {n:,} patients server-side in {time.monotonic() - t0:.1f} s")
            await conn.execute("SELECT pg_notify('alerts_timers', '')")
            await asyncio.sleep(1.0)
            rss = await _bursts(st, conn, window, burst, spread_s)
            await st.settle()
            await _idle(conn, f"http://127.0.0.1:{metrics_port}/metrics", idle_s)
            rss.append(("after idle", _rss_mb(st.pids["alerts-timers"])))
        finally:
            await conn.close()
    print("  timers process RSS: " + ", ".join(f"{k} {v:.0f} MB" for k, v in rss))


async def _bursts(
    st: Stack, conn: asyncpg.Connection, window: int, burst: int, spread_s: float
) -> list[tuple[str, float]]:
    """The window, then the burst; the timers process's RSS before, between and after."""
    pid = st.pids["alerts-timers"]
    rss = [("start", _rss_mb(pid))]
    lags, lost = await _measured(st, conn, 1, window, spread_s)
    rss.append(("after the window", _rss_mb(pid)))
    _report(f"deadline -> checkin.missed on Kafka ({window:,} over {spread_s:.0f} s)", lags, lost)
    if not burst:
        return rss
    await st.settle()
    before, t0 = cpu_snapshot(st), time.monotonic()
    lags, lost = await _measured(st, conn, window + 1, burst, 0)
    await st.settle()
    span = time.monotonic() - t0
    used = {k: (v - before.get(k, 0.0)) / burst * 1e6 for k, v in cpu_snapshot(st).items()}
    rss.append(("after the burst", _rss_mb(pid)))
    _report(f"burst: {burst:,} deadlines at one instant -> checkin.missed", lags, lost)
    # the whole machine's CPU per miss, every process of the stack, PostgreSQL and the
    # broker (the load client: this process, reading the events), the idle stack's own
    # (about 0.15 s of CPU a second) included: it weighs on a small burst, hardly on
    # 100,000; on two cores the burst's last event comes after about burst x total / 2
    parts = "  ".join(f"{k} {v:.0f}" for k, v in used.items() if v >= 0.5)
    print(
        f"    (max: the last one on Kafka) CPU per miss: timers process "
        f"{used['alerts-timers']:.0f} us, relay {used['alerts-relay']:.0f} us; "
        f"whole machine over {span:.1f} s, idle included, {sum(used.values()):.0f} us: {parts}"
    )
    return rss


async def _idle(conn: asyncpg.Connection, metrics: str, idle_s: float) -> None:
    """Nothing due for hours: the timers loop's own statements (its counter counts every
    one) and the whole database's transactions, over ``idle_s``."""
    async with aiohttp.ClientSession() as session:
        await asyncio.sleep(1.0)
        q0, x0, t0 = await _timer_queries(session, metrics), await _xacts(conn), time.time()
        await asyncio.sleep(idle_s)
        q1, x1, t1 = await _timer_queries(session, metrics), await _xacts(conn), time.time()
    # our own two snapshot queries count as two transactions
    print(
        f"  idle, nothing due for hours: the timers loop {(q1 - q0) / (t1 - t0):.2f} queries/s "
        f"(goal < 1); whole database {(x1 - x0 - 2) / (t1 - t0):.2f} transactions/s "
        f"(every process of the stack) over {t1 - t0:.0f} s"
    )


def _report(label: str, lags: list[float], lost: int) -> None:
    line(
        label,
        lags,
        f"max {ms(max(lags, default=float('nan'))).strip()} received={len(lags):,}"
        f"{f' MISSING={lost:,}' if lost else ''} (goal p99 < 5 s)",
    )
