"""What the intake API waited for under load: the CPU, or its database sessions.

``bench/mixed.py`` runs this beside its load. Every ``interval_s`` it reads the intake
API's run-queue accounting from the kernel (``/proc/<pid>/schedstat``: the time the
process ran, and the time it was ready to run but waited for a CPU) and what its
PostgreSQL sessions were doing (``pg_stat_activity``: running, flushing WAL, waiting for
a lock, ...). Over the load it prints one line of each, so a slow run says which of the
two the requests queued behind (docs/performance.md, "What the API waits for under
overload").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

# The intake API's sessions (shared/db.py connect_kwargs names them by schema); the
# relay's lanes are "relay-intake-*".
_SESSIONS = """
    SELECT coalesce(wait_event_type, 'CPU') AS kind, coalesce(wait_event, '') AS event
    FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'interval-intake'
      AND state = 'active'
"""

# pg_stat_activity's names for what matters here, in plain words
_NAMES = {
    ("CPU", ""): "running",
    ("IO", "WALSync"): "flushing WAL",
    ("LWLock", "WALWrite"): "waiting for a WAL write",
    # PostgreSQL serialises the commits of every transaction that sent a NOTIFY (the
    # outbox trigger's wake-up for the relay, shared/migrations) on one lock, held
    # through the commit's flush
    ("Lock", "object"): "waiting for the NOTIFY lock",
    ("Client", "ClientRead"): "waiting for the API",
}


def schedstat(pid: int) -> tuple[int, int] | None:
    """(ns run, ns waited on a run queue) of every thread of ``pid`` so far; None once it
    has gone or where the kernel does not keep them."""
    ran = waited = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            fields = (task / "schedstat").read_text().split()
            ran, waited = ran + int(fields[0]), waited + int(fields[1])
    except (OSError, ValueError, IndexError):
        return None
    return ran, waited


@dataclass
class Waits:
    """What was seen: the API's CPU accounting at the start and the end, and the number
    of its sessions in each state summed over ``samples`` samples."""

    start: tuple[int, int] | None = None
    end: tuple[int, int] | None = None
    elapsed_s: float = 0.0
    samples: int = 0
    sessions: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        out = []
        if self.start is not None and self.end is not None and self.elapsed_s > 0:
            ran, waited = (
                (b - a) / 1e9 / self.elapsed_s for a, b in zip(self.start, self.end, strict=True)
            )
            out.append(
                f"  intake API during the load: ran {100 * ran:.0f}% of a core, and was ready "
                f"but waited for a CPU {100 * waited:.0f}% of the time"
            )
        if self.samples:
            parts = [f"{n / self.samples:.2f} {what}" for what, n in self.sessions.most_common(6)]
            out.append(
                "  its database sessions at any moment, on average: "
                + (", ".join(parts) if parts else "none active")
            )
        return out


@contextlib.asynccontextmanager
async def watching(
    pid: int, dsn: str, connect: dict[str, Any], interval_s: float = 0.1
) -> AsyncIterator[Waits]:
    """Sample while the block runs; the ``Waits`` are complete once it has left."""
    waits = Waits()
    db = await asyncpg.connect(dsn, **connect)
    loop = asyncio.get_running_loop()

    async def sample() -> None:
        while True:
            for row in await db.fetch(_SESSIONS):
                key = (row["kind"], row["event"])
                waits.sessions[_NAMES.get(key, f"{key[0]} {key[1]}".strip())] += 1
            waits.samples += 1
            await asyncio.sleep(interval_s)

    waits.start, t0 = schedstat(pid), loop.time()
    task = asyncio.create_task(sample())
    try:
        yield waits
    finally:
        waits.end, waits.elapsed_s = schedstat(pid), loop.time() - t0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)  # a lost sample is no failure
        await db.close()
