"""Start the services as real processes on a throwaway database for a benchmark."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient

from shared.db import connect_kwargs
from shared.events import ALL_TOPICS
from shared.kafka import ensure_topics
from shared.settings import DEFAULT_DATABASE_URL, DEFAULT_KAFKA

ROOT = Path(__file__).resolve().parents[1]
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA)
BASE_DSN = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


# Processes besides api and relay.
ROLES = {"scheduling": ("worker",), "alerts": ("worker", "timers", "safety")}


@dataclass
class Stack:
    dsn: str
    prefix: str
    urls: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)  # "<service>-<role>" -> pid
    # how each process was started ("<service>-<role>" -> (argv, env, log)), to restart it
    commands: dict[str, tuple[list[str], dict[str, str], Path]] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def topic(self, name: str) -> str:
        return self.prefix + name

    def kill(self, name: str) -> None:
        """SIGKILL one process (as a crash would)."""
        proc = self.procs[name]
        proc.kill()
        proc.wait(timeout=20)

    def restart(self, name: str) -> None:
        argv, env, log = self.commands[name]
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out)
        self.procs[name] = proc
        self.pids[name] = proc.pid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _ready(url: str) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not become ready")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def stack(
    services: tuple[str, ...] = ("intake",),
    env_extra: dict[str, str] | None = None,
    extra_roles: dict[str, tuple[str, ...]] | None = None,
) -> AsyncIterator[Stack]:
    """Each service's processes (api, relay, and workers/timers, plus ``extra_roles``,
    e.g. the alerts watchdog) on a fresh database."""
    name = f"care_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(BASE_DSN, **connect_kwargs(BASE_DSN))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = urlunsplit(urlsplit(BASE_DSN)._replace(path=f"/{name}"))
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    topics = [prefix + t for t in ALL_TOPICS]
    await ensure_topics([KAFKA], topics)
    ports = {s: free_port() for s in services}
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "LOG_LEVEL": "WARNING",
        "KAFKA_TOPIC_PREFIX": prefix,
        "DEV_CLOCK": "0",  # benchmarks run on the wall clock, whatever the shell has
        # groups of their own: offsets on bench topics never weigh on the stack's groups
        "SCHEDULING_CONSUMER_GROUP": f"{prefix}scheduling",
        "ALERTS_CONSUMER_GROUP": f"{prefix}alerts",
        **{f"{s.upper()}_PORT": str(p) for s, p in ports.items()},
        **(env_extra or {}),
    }
    logs = ROOT / ".state" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    result = Stack(dsn=dsn, prefix=prefix)
    try:
        for svc in services:
            # the dashboard is one process with no role; each service has api, relay, ...
            roles = (
                [""]
                if svc == "dashboard"
                else ["api", "relay", *ROLES.get(svc, ()), *(extra_roles or {}).get(svc, ())]
            )
            for role in roles:
                proc_name = f"{svc}-{role or 'web'}"
                argv = [sys.executable, "-m", f"services.{svc}", *([role] if role else [])]
                log = logs / f"bench-{proc_name}.log"
                result.commands[proc_name] = (argv, env, log)
                result.restart(proc_name)
                procs.append(result.procs[proc_name])
            result.urls[svc] = f"http://127.0.0.1:{ports[svc]}"
            await _ready(result.urls[svc])
        yield result
    finally:
        procs = list(result.procs.values())  # restarted ones included
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        admin = await asyncpg.connect(BASE_DSN, **connect_kwargs(BASE_DSN))
        for attempt in range(30):
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except asyncpg.InsufficientPrivilegeError:
                # an autovacuum worker (the server's own role) on the database just
                # loaded: ours cannot end it; it finishes within seconds
                if attempt == 29:
                    raise
                await asyncio.sleep(1)
        await admin.close()
        kafka_admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
        await kafka_admin.start()
        with contextlib.suppress(Exception):
            await kafka_admin.delete_topics(topics)
        await kafka_admin.close()
