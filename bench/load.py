"""Load and figures shared by the bench sections: open-loop intake load, percentiles."""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
import orjson

from tools.factories import intake_body


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(v: float) -> str:
    return f"{v * 1000:7.2f} ms"


async def open_loop(url: str, rate: float, seconds: float) -> tuple[list[float], int]:
    """POST new intakes at ``rate``/s for ``seconds``; (latencies of 2xx, errors)."""
    total = int(rate * seconds)
    bodies = [orjson.dumps(intake_body()) for _ in range(total)]
    latencies: list[float] = []
    errors = 0
    conn = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=conn) as session:
        start = time.perf_counter() + 0.1

        async def one(i: int) -> None:
            nonlocal errors
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                async with session.post(
                    f"{url}/v1/intakes",
                    data=bodies[i],
                    headers={"content-type": "application/json"},
                ) as r:
                    await r.read()
                    if r.status == 201:
                        latencies.append(time.perf_counter() - due)
                    else:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1

        await asyncio.gather(*(one(i) for i in range(total)))
    return latencies, errors


async def open_loop_apart(url: str, rate: float, seconds: float) -> tuple[list[float], int]:
    """``open_loop`` from a process of its own, as outside clients would be: the load's
    own client work never delays the event loop of the process that measures, and at the
    lowest CPU priority (nice 19): on a 2-core box the client must not outrank the stack
    it loads. (The stack's own processes all run at one priority: a niced worker that
    holds a site's or a patient's lock while descheduled holds up everyone waiting on it.)"""
    proc = await asyncio.create_subprocess_exec(
        "nice",
        "-n",
        "19",
        sys.executable,
        "-m",
        "bench.load",
        url,
        str(rate),
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await proc.communicate()
    except asyncio.CancelledError:
        proc.terminate()
        await proc.wait()
        raise
    result = orjson.loads(out)
    return result["latencies"], result["errors"]


def line(label: str, values: list[float], extra: str = "") -> None:
    print(
        f"  {label:<44} p50 {ms(pct(values, 50))}  p99 {ms(pct(values, 99))}  "
        f"n={len(values)} {extra}"
    )


if __name__ == "__main__":  # python -m bench.load URL RATE SECONDS: one open loop, as JSON
    lat, err = asyncio.run(open_loop(sys.argv[1], float(sys.argv[2]), float(sys.argv[3])))
    sys.stdout.buffer.write(orjson.dumps({"latencies": lat, "errors": err}))
