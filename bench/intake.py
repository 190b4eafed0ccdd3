"""Intake's throughput: POST /v1/intakes and POST /v1/checkins in rising steps, from a
cold start (the first requests after the stack is ready) and warm, beside a bare
FastAPI + asyncpg endpoint loaded by the same client (bench/bare.py)."""

from __future__ import annotations

import random
from collections.abc import Callable

import orjson

from bench.bare import bare_endpoint
from bench.load import line, open_loop, pct
from bench.stack import Stack, stack
from tools.factories import checkin_body, intake_body, routine_phq9

RATES = (300, 400, 500, 600, 700, 800, 1000, 1200, 1500)
GOAL_RATE = 600  # issue 15: the highest step with p99 < 100 ms, cold and warm


Bodies = Callable[[int], list[bytes]]


def intakes(n: int) -> list[bytes]:
    return [orjson.dumps(intake_body()) for _ in range(n)]


def checkins_of(patients: list[str]) -> Bodies:
    def bodies(n: int) -> list[bytes]:
        return [
            orjson.dumps(checkin_body(random.choice(patients), routine_phq9())) for _ in range(n)
        ]

    return bodies


async def steps(
    url: str, bodies: Bodies, step_s: float, *, path: str = "/v1/intakes", st: Stack | None = None
) -> int:
    """Rising open-loop steps until one fails (an error, or p99 >= 100 ms); the highest
    step that held. Each step starts once the last one's backlog is published."""
    best = 0
    for rate in RATES:
        lat, errors = await open_loop(url, rate, step_s, bodies(int(rate * step_s)), path=path)
        ok = errors == 0 and pct(lat, 99) < 0.100
        line(f"  step {rate}/s for {step_s:g}s", lat, f"errors={errors} {'ok' if ok else 'over'}")
        if st is not None:
            await st.settle()
        if not ok:
            break
        best = rate
    return best


async def patients(st: Stack, n: int) -> list[str]:
    """``n`` patients admitted through the API, for check-ins."""
    bodies = [intake_body() for _ in range(n)]
    _, errors = await open_loop(st.urls["intake"], 200, n / 200, [orjson.dumps(b) for b in bodies])
    assert errors == 0, f"{errors} intakes refused"
    await st.settle()
    return [b["patient"]["patient_id"] for b in bodies]


async def section(step_s: float) -> None:
    print("Intake API throughput (open-loop steps; p99 < 100 ms and no error to hold):")
    async with stack() as st:
        url = st.urls["intake"]
        print(" POST /v1/intakes, cold (the first requests once the stack is ready):")
        cold = await steps(url, intakes, step_s, st=st)
        print(" POST /v1/intakes, warm:")
        warm = await steps(url, intakes, step_s, st=st)
        ids = await patients(st, 1000)
        print(" POST /v1/checkins (1,000 patients), warm:")
        checkins = await steps(url, checkins_of(ids), step_s, path="/v1/checkins", st=st)
    async with bare_endpoint() as bare_url:
        print(" baseline: bare FastAPI + asyncpg, one INSERT of the body:")
        await steps(bare_url, intakes, 2)  # warm-up
        bare = await steps(bare_url, intakes, step_s)
    print(
        f"  highest sustained: intakes cold {cold}/s, warm {warm}/s; check-ins {checkins}/s "
        f"(goal >= {GOAL_RATE}/s); bare endpoint {bare}/s: intakes at "
        f"{100 * warm / max(bare, 1):.0f}% of it (moonshot >= 50%)"
    )
