"""Start the services as real processes in a throwaway space for a benchmark (the same
starter as the tests: tools/stack.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg

from shared.db import connect_kwargs
from shared.lag_exporter import Exporter, LagSettings
from tools.stack import KAFKA, ROOT, ServiceProcess, create_space, drop_space, free_port, wait_ready

# Processes besides api and relay.
ROLES = {"scheduling": ("worker",), "alerts": ("worker", "timers", "safety")}


@dataclass
class Stack:
    dsn: str
    prefix: str
    urls: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ServiceProcess] = field(default_factory=dict)  # "<service>-<role>"

    @property
    def pids(self) -> dict[str, int]:
        return {n: p.proc.pid for n, p in self.processes.items() if p.proc is not None}

    def topic(self, name: str) -> str:
        return self.prefix + name

    def kill(self, name: str) -> None:
        """SIGKILL one process (as a crash would)."""
        self.processes[name].kill(signal.SIGKILL)

    def restart(self, name: str) -> None:
        self.processes[name].start()

    async def settle(self, timeout: float = 300) -> float:
        """Wait until every outbox of the stack is published and every consumer group has
        read every event (a load measured after an overload step is measured alone, not
        on that step's backlog); the seconds it took."""
        t0 = time.monotonic()
        exporter = Exporter(
            LagSettings(
                kafka_bootstrap_servers=KAFKA,
                kafka_topic_prefix=self.prefix,
                scheduling_consumer_group=f"{self.prefix}scheduling",
                alerts_consumer_group=f"{self.prefix}alerts",
            )
        )
        conn = await asyncpg.connect(self.dsn, **connect_kwargs(self.dsn))
        schemas = [s for s in self.urls if s != "dashboard"]
        try:
            while True:
                unpublished = [
                    await conn.fetchval(
                        f"SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL"
                    )
                    for s in schemas
                ]
                rows = await exporter.collect_and_export() or []
                lag = sum(g.total_lag for g in rows if g.info.members)
                if not any(unpublished) and lag == 0:
                    return time.monotonic() - t0
                if time.monotonic() - t0 > timeout:
                    raise RuntimeError(f"not settled in {timeout} s: {unpublished=} {lag=}")
                await asyncio.sleep(0.5)
        finally:
            await conn.close()
            await exporter.close()


def _roles(svc: str, extra_roles: dict[str, tuple[str, ...]] | None) -> list[str]:
    # the dashboard is one process with no role; each service has api, relay, ...
    if svc == "dashboard":
        return [""]
    return ["api", "relay", *ROLES.get(svc, ()), *(extra_roles or {}).get(svc, ())]


@contextlib.asynccontextmanager
async def stack(
    services: tuple[str, ...] = ("intake",),
    env_extra: dict[str, str] | None = None,
    extra_roles: dict[str, tuple[str, ...]] | None = None,
) -> AsyncIterator[Stack]:
    """Each service's processes (api, relay, and workers/timers, plus ``extra_roles``,
    e.g. the alerts watchdog) on a fresh database and topic prefix."""
    space = await create_space("bench")
    ports = {s: free_port() for s in services}
    env = {
        **os.environ,
        "DATABASE_URL": space.dsn,
        "LOG_LEVEL": "WARNING",
        "KAFKA_TOPIC_PREFIX": space.prefix,
        "DEV_CLOCK": "0",  # benchmarks run on the wall clock, whatever the shell has
        # groups of their own: offsets on bench topics never weigh on the stack's groups
        "SCHEDULING_CONSUMER_GROUP": f"{space.prefix}scheduling",
        "ALERTS_CONSUMER_GROUP": f"{space.prefix}alerts",
        **{f"{s.upper()}_PORT": str(p) for s, p in ports.items()},
        **(env_extra or {}),
    }
    result = Stack(dsn=space.dsn, prefix=space.prefix)
    logs = ROOT / ".state" / "logs"
    try:
        for svc in services:
            roles = _roles(svc, extra_roles)
            for role in roles:
                name = f"{svc}-{role or 'web'}"
                proc = ServiceProcess(
                    name, [f"services.{svc}", *([role] if role else [])], env,
                    logs / f"bench-{name}.log",
                )  # fmt: skip
                result.processes[name] = proc
                proc.start()
            result.urls[svc] = f"http://127.0.0.1:{ports[svc]}"
            await wait_ready(
                result.urls[svc], result.processes[f"{svc}-{_roles(svc, None)[0] or 'web'}"]
            )
        yield result
    finally:
        for p in result.processes.values():  # all at once, then each waited for
            if p.proc is not None and p.proc.poll() is None:
                p.proc.send_signal(signal.SIGTERM)
        for p in result.processes.values():
            p.kill(signal.SIGTERM)
        await drop_space(space)
