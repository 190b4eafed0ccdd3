"""Sizing: what the whole stack spends per intake and per check-in, and so how many cores
a load needs (docs/scale-out.md, "Sizing").

The whole stack (intake, scheduling, alerts) runs on a fresh database. It is measured
three times, each a CPU snapshot of every process before and after:

- idle for ``idle_s`` seconds: what the stack spends doing nothing (the workers' fetch
  polling, the timers, the safety lane), a fixed cost per running stack;
- eligible intakes at ``intake_rate``/s for ``seconds``, spread over ten configured sites
  (each proposes a 12-session series, as the mixed load's do), until every effect is in
  place (``Stack.settle``): CPU per intake, the idle rate over that time taken off;
- routine check-ins of the admitted patients at ``checkin_rate``/s the same way.

The load client's own CPU is printed apart: it shares this machine's two cores, a real
network's clients do not. From the two figures and the fixed cost it prints what the
issue-15 mixed target (100 intakes/s + 300 check-ins/s) needs, and the share of it two
cores can carry; ``bench/mixed.py`` tries the share for real.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import aiohttp
import orjson

from bench.cost import _checkins, _snapshot, _steady
from bench.load import open_loop
from bench.scheduling import SITE
from bench.stack import Stack, stack
from tools.factories import intake_body

TARGET_INTAKES = 100.0  # issue 15: the mixed load at 100% of the target
TARGET_CHECKINS = 300.0
CORES = 2


CLIENT = "load client"  # bench/cost.py's snapshot counts this process too: kept apart


def _stack_cpu(st: Stack) -> dict[str, float]:
    """Seconds of CPU so far of every process of the stack, PostgreSQL's and the broker's
    (bench/cost.py's snapshot without the load client)."""
    return {k: v for k, v in _snapshot(st).items() if k != CLIENT}


async def _spent(
    st: Stack, idle: dict[str, float], n: int, load: Callable[[], Awaitable[object]]
) -> tuple[dict[str, float], float]:
    """ms of CPU per item by process for ``load`` (``n`` items) and until the stack
    settled, the idle rate over that time taken off; and the load client's ms per item."""
    await st.settle()
    before, t0 = _snapshot(st), time.monotonic()
    await load()
    await st.settle()
    after, elapsed = _snapshot(st), time.monotonic() - t0
    client_ms = (after.pop(CLIENT) - before.pop(CLIENT)) * 1000 / n
    # a process idle meanwhile comes out a hair either side of 0: counted as 0
    per = {k: max(0.0, (after[k] - before[k] - idle[k] * elapsed) * 1000 / n) for k in after}
    return per, client_ms


def _line(label: str, per: dict[str, float], client_ms: float) -> float:
    total = sum(per.values())
    ranked = sorted(per.items(), key=lambda kv: -kv[1])
    parts = "  ".join(f"{k} {v:.2f}" for k, v in ranked if v >= 0.005)
    print(f"  {label}: {total:.2f} ms CPU each (load client apart: {client_ms:.2f}): {parts}")
    return total


async def section(
    intake_rate: float = 40,
    checkin_rate: float = 200,
    seconds: float = 10,
    idle_s: float = 10,
) -> None:
    print(
        f"Sizing: the whole stack's CPU per intake ({intake_rate:g}/s, each booking a "
        f"series) and per routine check-in ({checkin_rate:g}/s), for {seconds:g} s each:"
    )
    async with stack(("intake", "scheduling", "alerts")) as st:
        sites = [f"sizing-{k}" for k in range(10)]
        async with aiohttp.ClientSession() as s:
            for site in sites:
                async with s.put(f"{st.urls['scheduling']}/v1/sites/{site}", json=SITE) as r:
                    assert r.status == 200, await r.text()
        warm = [orjson.dumps(intake_body(site_id=random.choice(sites))) for _ in range(100)]
        await open_loop(st.urls["intake"], 50, 2, warm)
        await st.settle()

        before = _stack_cpu(st)
        await asyncio.sleep(idle_s)
        idle = {k: (v - before[k]) / idle_s for k, v in _stack_cpu(st).items()}
        fixed = sum(idle.values())
        busiest = sorted(idle.items(), key=lambda kv: -kv[1])[:4]
        print(
            f"  idle: {fixed * 1000:.0f} ms CPU a second ({100 * fixed / CORES:.1f}% of the "
            f"{CORES} cores): " + "  ".join(f"{k} {v * 1000:.0f}" for k, v in busiest)
        )

        n = int(intake_rate * seconds)
        admitted = [intake_body(site_id=sites[i % len(sites)]) for i in range(n)]
        bodies = [orjson.dumps(b) for b in admitted]
        per_intake, client_i = await _spent(
            st, idle, n, lambda: open_loop(st.urls["intake"], intake_rate, seconds, bodies)
        )
        intake_ms = _line("intake (eligible, a series booked)", per_intake, client_i)

        m = int(checkin_rate * seconds)
        steady = {b["patient"]["patient_id"]: _steady() for b in admitted}
        checkins = _checkins(steady, m)
        per_checkin, client_c = await _spent(
            st,
            idle,
            m,
            lambda: open_loop(
                st.urls["intake"], checkin_rate, seconds, checkins, path="/v1/checkins"
            ),
        )
        checkin_ms = _line("routine check-in", per_checkin, client_c)

    need = fixed + (TARGET_INTAKES * intake_ms + TARGET_CHECKINS * checkin_ms) / 1000
    share = (CORES - fixed) / (need - fixed)
    print(
        f"  the mixed target ({TARGET_INTAKES:g} intakes/s + {TARGET_CHECKINS:g} check-ins/s) "
        f"needs {need:.2f} cores busy, its clients apart; {CORES} cores carry at most "
        f"{100 * share:.0f}% of it (bench/mixed.py measures it)"
    )
